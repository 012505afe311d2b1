"""Gradients through dynamics and at steady states, for parameters that enter a model through a map.

Physical parameters are often functions of unconstrained raw parameters (bounded couplings k tanh(w), positive
drives f sigmoid(v), ...). :func:`raw_loss_and_grad` evaluates the engine's loss and gradient with respect to the
model parameters (through the solve to ``t1``, or by the implicit-function theorem at the stable steady state)
and pulls the gradient back to the raw parameters with the vector-Jacobian product of that map.
"""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from pyosc.engines.base import Engine, FinalLoss, IntegrateOptions, SteadyStateOptions
from pyosc.errors import InvalidInputError

GRADIENTS = ("dynamics", "steady-state")


def raw_loss_and_grad(engine: Engine, model: str, build: Callable, raw, y0: np.ndarray, loss: FinalLoss, *,
                      inputs: np.ndarray, gradient: str, t1: float, integrate: IntegrateOptions,
                      steady: SteadyStateOptions) -> tuple[np.ndarray, tuple, np.ndarray | None]:
    """``(loss, gradient with respect to raw, converged)``.

    ``build(raw) -> {name: array}`` maps the raw parameters (a NamedTuple of arrays) to the model's parameters (a
    traceable JAX function); ``gradient`` is ``"dynamics"`` (loss of the state at ``t1``, reverse mode through the
    solver; ``converged`` is None) or ``"steady-state"`` (loss at the stable steady states; ``converged`` per
    state, unsettled states count as random outputs without gradient). Parameters the engine gives no gradient
    (fixed data tables) get a zero cotangent.
    """
    if gradient not in GRADIENTS:
        raise InvalidInputError(f"gradient must be one of {GRADIENTS}, got {gradient!r}")
    p, vjp = jax.vjp(build, type(raw)(*(jnp.asarray(r) for r in raw)))
    p_np = {k: np.asarray(v) for k, v in p.items()}
    converged = None
    if gradient == "dynamics":
        value, grads = engine.final_state_loss_and_grad(model, p_np, y0, t1, loss, inputs=inputs, options=integrate)
    else:
        value, grads, converged = engine.steady_state_loss_and_grad(model, p_np, y0, loss, inputs=inputs,
                                                                    options=steady)
    (g_raw,) = vjp({k: jnp.asarray(grads[k]) if k in grads else jnp.zeros_like(v) for k, v in p.items()})
    return np.asarray(value), type(raw)(*(np.asarray(a) for a in g_raw)), converged
