"""First-order optimizers on tuples of NumPy arrays (one array per parameter kind).

Both act in place-free style: ``state = opt.init(params)``, then ``params, state = opt.update(params, grads, state)``.
Arrays may carry a leading ``runs`` axis; every entry is updated independently, so runs never mix.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pyosc.errors import InvalidInputError, check_positive


@dataclass(frozen=True)
class SGD:
    """theta <- theta - learning_rate * grad (the XY paper's plain gradient descent)."""

    learning_rate: float

    def init(self, params) -> Any:
        return None

    def update(self, params, grads, state):
        return type(params)(*(p - self.learning_rate * g for p, g in zip(params, grads))), state


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba 2015) with bias correction."""

    learning_rate: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def init(self, params):
        zeros = tuple(np.zeros_like(p) for p in params)
        return (0, zeros, zeros)

    def update(self, params, grads, state):
        t, m, v = state
        t += 1
        m = tuple(self.beta1 * mi + (1 - self.beta1) * g for mi, g in zip(m, grads))
        v = tuple(self.beta2 * vi + (1 - self.beta2) * g * g for vi, g in zip(v, grads))
        scale = self.learning_rate * np.sqrt(1 - self.beta2 ** t) / (1 - self.beta1 ** t)
        new = type(params)(*(p - scale * mi / (np.sqrt(vi) + self.eps) for p, mi, vi in zip(params, m, v)))
        return new, (t, m, v)


def make_optimizer(name: str, learning_rate: float):
    """``"sgd"`` or ``"adam"`` with the given learning rate."""
    learning_rate = check_positive("learning_rate", learning_rate)
    if name == "sgd":
        return SGD(learning_rate)
    if name == "adam":
        return Adam(learning_rate)
    raise InvalidInputError(f"unknown optimizer {name!r}; use 'sgd' or 'adam'")
