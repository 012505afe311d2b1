"""Integration of dynamical network models and gradients of final-state losses through the solve (JAX/diffrax).

The models are the named right-hand sides of :mod:`pyosc.models.optomech` (``"optomech-micro"``,
``"optomech-averaged"``, ``"optomech-phase"``), pure functions of (time, state, params, inputs).
Every trajectory (run x sample x initial state) is its own ODE with its own adaptive steps, error
measured in the max norm; all are vmapped in one compiled call (a batch-wide ODE would let the
slowest trajectory set every step, and would make the implicit solvers' Jacobians batch-sized).

Gradients: the loss L = mean over samples and initial states of a cost of the output phases at t1 is
differentiated with respect to every parameter array by reverse mode through the solver
(:class:`diffrax.RecursiveCheckpointAdjoint`, recursive checkpointing: the exact derivative of the
computed solution; see :class:`~pyosc.engines.base.IntegrateOptions` for why the continuous
backsolve adjoint is not used). Parameters
with a leading ``runs`` axis give one loss and one gradient per run. A model's tables (fixed data
such as the averaged model's amplitude table) get no gradient: per-trajectory cotangents of
thousand-entry tables would dominate the cost of the reverse pass.

Steady states (autonomous models): pseudo-transient continuation (:class:`~pyosc.engines.base.SteadyStateOptions`)
with the Jacobian from forward-mode autodiff, then the implicit-function gradient at the fixed point: one
transposed linear solve per state instead of a reverse pass through a trajectory.

:class:`JaxDynamicsMixin` gives the engine methods ``integrate``, ``final_state_loss_and_grad`` and
``steady_state_loss_and_grad``; :func:`loss_and_grad` and :func:`steady_state_loss_and_grad` are the same as
plain functions of NumPy arrays.
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from pyosc.engines.base import FinalLoss, IntegrateOptions, SteadyStateOptions
from pyosc.errors import (
    ConvergenceError,
    InvalidInputError,
    as_real_array,
    check_positive,
)
from pyosc.models import optomech

IMPLICIT = ("Kvaerno3", "Kvaerno4", "Kvaerno5")
DEFAULT_OPTIONS = IntegrateOptions()
DEFAULT_STEADY = SteadyStateOptions()


def _max_norm(y) -> jnp.ndarray:
    """Max norm over every leaf of a state pytree."""
    return jnp.max(jnp.stack([jnp.max(jnp.abs(leaf)) for leaf in jax.tree_util.tree_leaves(y)]))


def _solver(options: IntegrateOptions):
    cls = getattr(diffrax, options.solver)
    if options.solver in IMPLICIT:
        return cls(root_finder=diffrax.VeryChord(rtol=options.rtol, atol=options.atol, norm=_max_norm))
    return cls()


def _solve(dyn: optomech.Dynamics, p, x, y0, t1, ts, options: IntegrateOptions):
    """One trajectory from y0 (N, d) with inputs x (n_in,): states at ``ts`` (or at t1 if ``ts`` is None)."""
    term = diffrax.ODETerm(lambda t, y, args: dyn.rhs(t, y, args[0], args[1]))
    if options.dt is None:
        controller = diffrax.PIDController(rtol=options.rtol, atol=options.atol, norm=_max_norm)
        dt0 = None
    else:
        controller, dt0 = diffrax.ConstantStepSize(), options.dt
    solver = _solver(options)
    adjoint = diffrax.RecursiveCheckpointAdjoint(options.checkpoints)
    saveat = diffrax.SaveAt(t1=True) if ts is None else diffrax.SaveAt(ts=ts)
    sol = diffrax.diffeqsolve(term, solver, 0.0, t1, dt0, y0, args=(p, x), saveat=saveat,
                              stepsize_controller=controller, adjoint=adjoint, max_steps=options.max_steps,
                              throw=False)
    return sol.ys, sol.result == diffrax.RESULTS.successful


def _flat(y0, x):
    """(S, M, N, d), (S, n_in) -> (S*M, N, d), (S*M, n_in)."""
    s, m = y0.shape[:2]
    return y0.reshape((s * m,) + y0.shape[2:]), jnp.repeat(x, m, axis=0)


def _cost(phi, targets, kind: str):
    d = phi - targets
    if kind == "distance":
        return 0.5 * jnp.mean(1.0 - jnp.cos(d), axis=-1)
    return -jnp.sum(jnp.log1p(jnp.cos(d)), axis=-1)


@lru_cache(maxsize=32)
def _trajectory_fn(model: str, options: IntegrateOptions, stacked: bool):
    dyn = optomech.get_model(model)

    def run(p, y0, x, ts):
        s, m = y0.shape[:2]
        flat, xf = _flat(y0, x)
        ys, ok = jax.vmap(lambda y, xi: _solve(dyn, p, xi, y, ts[-1], ts, options))(flat, xf)
        return ys.reshape((s, m) + ys.shape[1:]), ok

    return jax.jit(jax.vmap(run, in_axes=(0, 0, None, None)) if stacked else run)


def loss_fn(model: str, options: IntegrateOptions, outputs: tuple[int, ...], kind: str):
    """The traced loss ``(params, tables, y0, inputs, targets, t1) -> (loss, all_trajectories_succeeded)``
    for one run; ``tables`` (the model's fixed data arrays) get no gradient."""
    dyn = optomech.get_model(model)
    out = np.asarray(outputs)

    def loss(p, tables, y0, x, targets, t1):
        p = {**p, **tables}
        s, m = y0.shape[:2]
        flat, xf = _flat(y0, x)
        y1, ok = jax.vmap(lambda y, xi: _solve(dyn, p, xi, y, t1, None, options))(flat, xf)
        phi = dyn.phase(t1, y1[:, -1], p)[:, out].reshape(s, m, out.size)
        return jnp.mean(_cost(phi, targets[:, None, :], kind)), jnp.all(ok)

    return loss


@lru_cache(maxsize=32)
def _loss_grad_fn(model: str, options: IntegrateOptions, outputs: tuple[int, ...], kind: str, stacked: bool):
    fn = jax.value_and_grad(loss_fn(model, options, outputs, kind), has_aux=True)
    return jax.jit(jax.vmap(fn, in_axes=(0, 0, 0, None, None, None)) if stacked else fn)


def prepare(model: str, params: Mapping, y0, inputs):
    """Validate and convert: (params as jnp arrays, y0, inputs, runs) with ``runs = 0`` when unstacked."""
    dyn = optomech.get_model(model)
    y0 = as_real_array("y0", y0, ndim=(4, 5))
    if y0.shape[-1] != dyn.state_size:
        raise InvalidInputError(f"y0 must end in the state axis of size {dyn.state_size} for {model!r}, "
                                f"got shape {y0.shape}")
    p, runs = optomech.validate_params(model, params, y0.shape[-2])
    want_nd = 5 if runs else 4
    if y0.ndim != want_nd or (runs and y0.shape[0] != runs):
        lead = f"({runs}, " if runs else "("
        raise InvalidInputError(f"y0 must have shape {lead}samples, inits, N, {dyn.state_size}) for these params, "
                                f"got {y0.shape}")
    n_samples = y0.shape[-4]
    x = np.zeros((n_samples, 0)) if inputs is None else as_real_array("inputs", inputs, ndim=2)
    if x.shape[0] != n_samples or x.shape[1] > y0.shape[-2]:
        raise InvalidInputError(f"inputs must have shape (samples={n_samples}, n_inputs <= N={y0.shape[-2]}), "
                                f"got {x.shape}")
    return {k: jnp.asarray(v) for k, v in p.items()}, jnp.asarray(y0), jnp.asarray(x), runs


def integrate(model: str, params: Mapping, y0, times, *, inputs=None,
              options: IntegrateOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """States at ``times`` (from t = 0): shape ``y0.shape[:-2] + (len(times), N, state_size)``."""
    p, y0j, x, runs = prepare(model, params, y0, inputs)
    times = as_real_array("times", times, ndim=1)
    if times.size == 0 or times[0] < 0 or np.any(np.diff(times) <= 0) or times[-1] <= 0:
        raise InvalidInputError("times must be non-empty, non-negative, strictly increasing and end after 0")
    ys, ok = _trajectory_fn(model, options, bool(runs))(p, y0j, x, jnp.asarray(times))
    if not np.all(np.asarray(ok)):
        raise ConvergenceError(f"{int(np.size(ok) - np.sum(ok))} trajectories failed (step budget max_steps="
                               f"{options.max_steps} or a non-finite state); raise max_steps or loosen rtol/atol")
    return np.asarray(ys)


def _check_loss(spec: FinalLoss, y0) -> None:
    n_units = y0.shape[-2]
    if any(not -n_units <= o < n_units for o in spec.outputs):
        raise InvalidInputError(f"outputs must index the {n_units} units, got {spec.outputs}")
    if spec.targets.shape[0] != y0.shape[-4]:
        raise InvalidInputError(f"targets must have one row per sample ({y0.shape[-4]}), got {spec.targets.shape}")


def loss_and_grad(model: str, params: Mapping, y0, t1: float, targets, *, outputs=(-1,), kind: str = "distance",
                  inputs=None, options: IntegrateOptions = DEFAULT_OPTIONS) -> tuple[np.ndarray, dict]:
    """``loss, grad = loss_and_grad(...)``: final-state loss and its gradient, NumPy in and out.

    ``y0``: ([runs,] samples, inits, N, state_size); ``targets``: (samples, n_out) phases of the units
    ``outputs``; ``inputs``: (samples, n_in) phases of the input drives. The loss is the mean over samples
    and initial states of the ``kind`` cost (:class:`~pyosc.engines.base.FinalLoss`); ``grad`` maps every
    parameter name except the model's fixed tables to d loss / d param (per run when params are stacked).
    """
    spec = FinalLoss(targets, outputs, kind)
    t1 = check_positive("t1", t1)
    p, y0j, x, runs = prepare(model, params, y0, inputs)
    _check_loss(spec, y0j)
    fn = _loss_grad_fn(model, options, spec.outputs, spec.kind, bool(runs))
    tables = optomech.get_model(model).tables
    trainable = {k: v for k, v in p.items() if k not in tables}
    (loss, ok), grad = fn(trainable, {k: p[k] for k in tables}, y0j, x, jnp.asarray(spec.targets), t1)
    if not np.all(np.asarray(ok)):
        raise ConvergenceError(f"a trajectory failed (step budget max_steps={options.max_steps} or a non-finite "
                               "state); raise max_steps or loosen rtol/atol")
    return np.asarray(loss), {k: np.asarray(v) for k, v in grad.items()}


def _steady_state(f, y0, options: SteadyStateOptions):
    """Pseudo-transient continuation of dy/dt = f(y) from the flat state y0: (y*, Jacobian at y*, converged)."""
    eye = jnp.eye(y0.size)
    norm = lambda r: jnp.max(jnp.abs(r))

    def body(s):
        y, r, dt, k = s
        y_new = y + jnp.linalg.solve(eye / dt - jax.jacfwd(f)(y), r)
        r_new = f(y_new)
        ok = jnp.all(jnp.isfinite(r_new)) & (norm(r_new) < 10 * norm(r))
        grow = jnp.clip(norm(r) / jnp.maximum(norm(r_new), 1e-300), 0.1, 10.0)
        return (jnp.where(ok, y_new, y), jnp.where(ok, r_new, r), jnp.minimum(jnp.where(ok, dt * grow, dt / 4), 1e12),
                k + 1)

    def cond(s):
        return (s[3] < options.max_iter) & (norm(s[1]) > options.tol)

    y, r, _, _ = jax.lax.while_loop(cond, body, (y0, f(y0), jnp.asarray(options.dt0, y0.dtype), 0))
    jac = jax.jacfwd(f)(y)
    stable = jnp.max(jnp.real(jnp.linalg.eigvals(jac))) < 0
    return y, jac, (norm(r) <= options.tol) & stable


def _flat_rhs(dyn: optomech.Dynamics, tables, shape, x):
    """The right-hand side for one state of ``shape`` with inputs x, as a function of (flat state, params)."""
    return lambda y, q: dyn.rhs(0.0, y.reshape(shape), {**q, **tables}, x).ravel()


def steady_states_fn(model: str, options: SteadyStateOptions = DEFAULT_STEADY):
    """The traced ``(params, tables, y0, inputs) -> (states, converged)`` of one run: the stable steady states
    reached from y0 (samples, inits, N, d), without gradients (the forward solve of the steady-state adjoint)."""
    dyn = optomech.get_model(model)

    def run(p, tables, y0, x):
        def one(y, xi):
            f = _flat_rhs(dyn, tables, y.shape, xi)
            return _steady_state(lambda v: f(v, p), y.ravel(), options)

        flat, xf = _flat(y0, x)
        y, _, ok = jax.vmap(one)(flat, xf)
        return y.reshape(y0.shape), ok.reshape(y0.shape[:2])

    return run


def _chance_cost(kind: str, n_out: int) -> float:
    """Mean cost of uniformly random output phases: what a state that never settles is worth."""
    return 0.5 if kind == "distance" else n_out * np.log(2.0)  # E[log(1 + cos)] = -log 2


def steady_loss_fn(model: str, options: SteadyStateOptions, outputs: tuple[int, ...], kind: str):
    """The traced ``(params, tables, y0, inputs, targets) -> (loss, grads, converged)`` for one run."""
    dyn = optomech.get_model(model)
    out = np.asarray(outputs)

    def one(p, tables, y0, x, target):
        f = _flat_rhs(dyn, tables, y0.shape, x)
        y, jac, ok = _steady_state(lambda y: f(y, p), y0.ravel(), options)
        cost = lambda y: _cost(dyn.phase(0.0, y.reshape(y0.shape), {**p, **tables})[out], target, kind)
        c, dc = jax.value_and_grad(cost)(y)
        lam = jnp.linalg.solve(jac.T, dc)
        (g,) = jax.vjp(lambda q: f(y, q), p)[1](-lam)
        return c, jax.tree_util.tree_map(lambda a: jnp.where(ok, a, 0.0), g), ok  # no NaN from unsettled states

    def loss(p, tables, y0, x, targets):
        s, m = y0.shape[:2]
        flat, xf = _flat(y0, x)
        c, g, ok = jax.vmap(one, in_axes=(None, None, 0, 0, 0))(p, tables, flat, xf, jnp.repeat(targets, m, axis=0))
        w = ok / ok.size
        mean = jnp.sum(jnp.where(ok, c, _chance_cost(kind, out.size))) / ok.size
        grads = jax.tree_util.tree_map(lambda a: jnp.tensordot(w, a, axes=1), g)
        return mean, grads, ok.reshape(s, m)

    return loss


@lru_cache(maxsize=32)
def _steady_fn(model: str, options: SteadyStateOptions, outputs: tuple[int, ...], kind: str, stacked: bool):
    fn = steady_loss_fn(model, options, outputs, kind)
    return jax.jit(jax.vmap(fn, in_axes=(0, 0, 0, None, None)) if stacked else fn)


def steady_state_loss_and_grad(model: str, params: Mapping, y0, targets, *, outputs=(-1,), kind: str = "distance",
                               inputs=None, options: SteadyStateOptions = DEFAULT_STEADY):
    """``loss, grad, converged``: loss at the stable steady states reached from ``y0`` and its implicit-function
    gradient (see :meth:`~pyosc.engines.base.Engine.steady_state_loss_and_grad`), NumPy in and out."""
    spec = FinalLoss(targets, outputs, kind)
    dyn = optomech.get_model(model)
    if not dyn.autonomous:
        raise InvalidInputError(f"{model!r} is driven explicitly in time and has no steady states; "
                                "use an averaged or phase model")
    p, y0j, x, runs = prepare(model, params, y0, inputs)
    _check_loss(spec, y0j)
    tables = {k: p[k] for k in dyn.tables}
    trainable = {k: v for k, v in p.items() if k not in dyn.tables}
    loss, grad, ok = _steady_fn(model, options, spec.outputs, spec.kind, bool(runs))(
        trainable, tables, y0j, x, jnp.asarray(spec.targets))
    return np.asarray(loss), {k: np.asarray(v) for k, v in grad.items()}, np.asarray(ok)


class JaxDynamicsMixin:
    """Engine methods for dynamical models (see :class:`~pyosc.engines.base.Engine`)."""

    def integrate(self, model, params, y0, times, *, inputs=None, options=DEFAULT_OPTIONS):
        return integrate(model, params, y0, times, inputs=inputs, options=options)

    def final_state_loss_and_grad(self, model, params, y0, t1, loss, *, inputs=None, options=DEFAULT_OPTIONS):
        if not isinstance(loss, FinalLoss):
            raise InvalidInputError(f"loss must be a pyosc.engines.base.FinalLoss, got {type(loss).__name__}")
        return loss_and_grad(model, params, y0, t1, loss.targets, outputs=loss.outputs, kind=loss.kind,
                             inputs=inputs, options=options)

    def steady_state_loss_and_grad(self, model, params, y0, loss, *, inputs=None, options=DEFAULT_STEADY):
        if not isinstance(loss, FinalLoss):
            raise InvalidInputError(f"loss must be a pyosc.engines.base.FinalLoss, got {type(loss).__name__}")
        return steady_state_loss_and_grad(model, params, y0, loss.targets, outputs=loss.outputs, kind=loss.kind,
                                          inputs=inputs, options=options)
