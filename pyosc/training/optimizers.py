"""First-order optimizers on parameter collections: NamedTuples/tuples or dicts of NumPy arrays.

Both act in place-free style: ``state = opt.init(params)``, then ``params, state = opt.update(params, grads, state)``
(``factor=`` multiplies the learning rate of that step, for schedules).
Arrays may carry a leading ``runs`` axis; every entry is updated independently, so runs never mix.
``lr_scale`` multiplies the step of named parameters (NamedTuple fields or dict keys); others use 1.
``update`` uses plain arithmetic only, so it also runs on JAX arrays inside a compiled program (the step count
of Adam's state may then be a traced integer).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from pyosc.errors import InvalidInputError, check_positive


def _map(fn: Callable, params, *others):
    """``fn(name, leaf, *other_leaves)`` leafwise, returning a collection of the same kind as ``params``
    (names: dict keys, NamedTuple fields, ``None`` for plain tuples)."""
    if isinstance(params, dict):
        return {k: fn(k, v, *(o[k] for o in others)) for k, v in params.items()}
    names = getattr(params, "_fields", (None,) * len(params))
    values = [fn(k, v, *o) for k, v, *o in zip(names, params, *others)]
    return type(params)(*values) if hasattr(params, "_fields") else tuple(values)


def check_scale_names(lr_scale: dict[str, float], params) -> None:
    """Every key of ``lr_scale`` must name a parameter of ``params`` (dict keys or NamedTuple fields): a misspelt
    name would otherwise leave its parameter at the plain learning rate without a word."""
    names = list(params) if isinstance(params, dict) else list(getattr(params, "_fields", ()))
    unknown = sorted(set(lr_scale) - set(names))
    if unknown:
        raise InvalidInputError(f"lr_scale names unknown parameter(s) {unknown}; the parameters are {sorted(names)}")


@dataclass(frozen=True)
class SGD:
    """theta <- theta - learning_rate * scale * grad (the papers' plain gradient descent)."""

    learning_rate: float
    lr_scale: dict[str, float] = field(default_factory=dict)

    def __hash__(self):  # a key of cached compiled programs (lr_scale is a dict)
        return hash((type(self), self.learning_rate, tuple(sorted(self.lr_scale.items()))))

    def init(self, params) -> Any:
        check_scale_names(self.lr_scale, params)
        return None

    def update(self, params, grads, state, factor=1.0):
        step = lambda k, p, g: p - factor * self.learning_rate * self.lr_scale.get(k, 1.0) * g
        return _map(step, params, grads), state


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba 2015) with bias correction. State ``(t, m, v)``: step count and the moment
    collections (same kind as the parameters)."""

    learning_rate: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    lr_scale: dict[str, float] = field(default_factory=dict)

    def __hash__(self):  # a key of cached compiled programs (lr_scale is a dict)
        return hash((type(self), self.learning_rate, self.beta1, self.beta2, self.eps,
                     tuple(sorted(self.lr_scale.items()))))

    def init(self, params):
        check_scale_names(self.lr_scale, params)
        zeros = _map(lambda k, p: np.zeros_like(p), params)
        return (0, zeros, zeros)

    def update(self, params, grads, state, factor=1.0):
        t, m, v = state
        t += 1
        m = _map(lambda k, mi, g: self.beta1 * mi + (1 - self.beta1) * g, m, grads)
        v = _map(lambda k, vi, g: self.beta2 * vi + (1 - self.beta2) * g * g, v, grads)
        c1, c2 = 1 - self.beta1 ** t, 1 - self.beta2 ** t  # bias corrections

        def step(k, p, mi, vi):
            rate = factor * self.learning_rate * self.lr_scale.get(k, 1.0)
            return p - rate * (mi / c1) / ((vi / c2) ** 0.5 + self.eps)

        new = _map(step, params, m, v)
        return new, (t, m, v)


def unit_rate(opt: SGD | Adam) -> SGD | Adam:
    """``opt`` with learning rate 1: the rule a compiled loop applies with the learning rate as a traced ``factor``
    (rate x 1.0 x scale is the same number as the optimizer's own factor x rate x scale)."""
    return replace(opt, learning_rate=1.0)


def state_arrays(state) -> dict[str, np.ndarray]:
    """An optimizer state as named arrays for a checkpoint: Adam's moments as ``"m/<name>"``, ``"v/<name>"``
    (its step count is the caller's to store); nothing for SGD."""
    if state is None:
        return {}
    named = lambda c: c if isinstance(c, dict) else c._asdict()
    return {f"{kind}/{k}": np.asarray(a) for kind, m in zip("mv", state[1:]) for k, a in named(m).items()}


def state_from_arrays(template, step: int, arrays: dict[str, np.ndarray]):
    """Inverse of :func:`state_arrays`: ``template`` is ``opt.init(params)`` (gives the collection kind)."""
    if template is None:
        return None
    return (step, *(_map(lambda k, _, kind=kind: arrays[f"{kind}/{k}"], m) for kind, m in zip("mv", template[1:])))


def make_optimizer(name: str, learning_rate: float, lr_scale: dict[str, float] | None = None):
    """``"sgd"`` or ``"adam"`` with the given learning rate and optional per-parameter factors (names checked against
    the parameters at ``init``)."""
    learning_rate = check_positive("learning_rate", learning_rate)
    if lr_scale is not None and not isinstance(lr_scale, Mapping):
        raise InvalidInputError(f"lr_scale must be a mapping of parameter name -> factor, got {lr_scale!r}")
    scale = dict(lr_scale or {})
    for k, s in scale.items():
        if not isinstance(k, str):
            raise InvalidInputError(f"lr_scale keys must be parameter names (strings), got {k!r}")
        check_positive(f"lr_scale[{k!r}]", s)
    if name == "sgd":
        return SGD(learning_rate, scale)
    if name == "adam":
        return Adam(learning_rate, lr_scale=scale)
    raise InvalidInputError(f"unknown optimizer {name!r}; use 'sgd' or 'adam'")
