"""The JAX engine's dynamics: integration of dynamical network models and gradients of final-state and
steady-state losses (JAX/diffrax, float64).

The models are the named right-hand sides of :mod:`pyosc.models.optomech` (``"optomech-micro"``,
``"optomech-averaged"``, ``"optomech-phase"``; table :data:`pyosc.models.optomech.DYNAMICS`, parameters and
state sizes in :mod:`pyosc.models.registry`), pure functions of (time, state, params, inputs).
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

Steady states (autonomous models): the flow followed with linearly implicit (Rosenbrock) steps that use the Jacobian
from forward-mode autodiff until a convergence certificate, then Newton (:class:`~pyosc.engines.base.SteadyStateOptions`):
the steady state the dynamics reach from each initial state; then the implicit-function gradient at the fixed point:
one transposed linear solve per state instead of a reverse pass through a trajectory.

:func:`integrate`, :func:`final_state_loss_and_grad` and :func:`steady_state_loss_and_grad` take validated float64
arrays (see :class:`~pyosc.engines.base.DynamicsEngine`); :func:`loss_fn`, :func:`steady_loss_fn` and
:func:`steady_states_fn` are the traced functions they compile, for benchmarks and custom transformations.
"""
from __future__ import annotations

from functools import lru_cache

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from pyosc.engines.base import FinalLoss, IntegrateOptions, SteadyStateOptions
from pyosc.engines.jax.batching import flat_states
from pyosc.engines.jax.options import split, view
from pyosc.engines.jax.solvers import IMPLICIT, SOLVERS
from pyosc.errors import ConvergenceError
from pyosc.models import optomech, registry, xy

COSTS = {"distance": xy.distance, "log": xy.log_cost}
"""The output costs of :class:`~pyosc.engines.base.FinalLoss` by ``kind``."""


def _max_norm(y) -> jnp.ndarray:
    """Max norm over every leaf of a state pytree."""
    return jnp.max(jnp.stack([jnp.max(jnp.abs(leaf)) for leaf in jax.tree_util.tree_leaves(y)]))


def _solver(options: IntegrateOptions):
    cls = SOLVERS[options.method]
    if options.method in IMPLICIT:
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
    adjoint = diffrax.RecursiveCheckpointAdjoint(options.saved_states)
    saveat = diffrax.SaveAt(t1=True) if ts is None else diffrax.SaveAt(ts=ts)
    sol = diffrax.diffeqsolve(term, solver, 0.0, t1, dt0, y0, args=(p, x), saveat=saveat,
                              stepsize_controller=controller, adjoint=adjoint, max_steps=options.max_steps,
                              throw=False)
    return sol.ys, sol.result == diffrax.RESULTS.successful


def _flat(y0, x):
    """(S, M, N, d), (S, n_in) -> (S*M, N, d), (S*M, n_in)."""
    s, m = y0.shape[:2]
    return y0.reshape((s * m,) + y0.shape[2:]), jnp.repeat(x, m, axis=0)


STATIC = ("method", "max_steps", "saved_states")
"""The fields of :class:`~pyosc.engines.base.IntegrateOptions` that shape a compiled program; ``rtol``, ``atol`` and
``dt`` are traced arguments (:mod:`.options`; :class:`~pyosc.engines.base.SteadyStateOptions` has only numbers)."""


@lru_cache(maxsize=32)
def _trajectory_fn(model: str, key: tuple, stacked: bool):
    dyn = optomech.DYNAMICS[model]

    def run(p, y0, x, ts, numbers):
        s, m = y0.shape[:2]
        flat, xf = _flat(y0, x)
        ys, ok = jax.vmap(lambda y, xi: _solve(dyn, p, xi, y, ts[-1], ts, view(key, numbers)))(flat, xf)
        return ys.reshape((s, m) + ys.shape[1:]), ok

    return jax.jit(jax.vmap(run, in_axes=(0, 0, None, None, None)) if stacked else run)


def loss_fn(model: str, options: IntegrateOptions, outputs: tuple[int, ...], kind: str):
    """The traced loss ``(params, tables, y0, inputs, targets, t1) -> (loss, all_trajectories_succeeded)``
    for one run; ``tables`` (the model's fixed data arrays) get no gradient."""
    dyn = optomech.DYNAMICS[model]
    out = np.asarray(outputs)

    def loss(p, tables, y0, x, targets, t1):
        p = {**p, **tables}
        s, m = y0.shape[:2]
        flat, xf = _flat(y0, x)
        y1, ok = jax.vmap(lambda y, xi: _solve(dyn, p, xi, y, t1, None, options))(flat, xf)
        phi = dyn.phase(t1, y1[:, -1], p)[:, out].reshape(s, m, out.size)
        return jnp.mean(COSTS[kind](phi, targets[:, None, :])), jnp.all(ok)

    return loss


@lru_cache(maxsize=32)
def _loss_grad_fn(model: str, key: tuple, outputs: tuple[int, ...], kind: str, stacked: bool):
    def fn(p, tables, y0, x, targets, t1, numbers):
        loss = loss_fn(model, view(key, numbers), outputs, kind)
        return jax.value_and_grad(loss, has_aux=True)(p, tables, y0, x, targets, t1)

    return jax.jit(jax.vmap(fn, in_axes=(0, 0, 0, None, None, None, None)) if stacked else fn)


_D = 1.0 / (2.0 + np.sqrt(2.0))  # ode23s (Shampine & Reichelt 1997): W = I - h D J
_E32 = 6.0 + np.sqrt(2.0)


def _steady_state(f, y0, options: SteadyStateOptions):
    """The stable steady state that the flow dy/dt = f(y) reaches from the flat state y0: (y*, Jacobian at y*,
    converged). See :class:`~pyosc.engines.base.SteadyStateOptions`.

    Flow mode: ode23s steps (W = I - h D J, one LU factorisation per step, three solves), accepted when the local
    error estimate is at most ``flow_tol`` and no component changes by more than ``trust``. After each accepted step
    the certificate: with L an estimate of the Lipschitz constant of J (the largest ||J(y') - J(y)||_F / |y' - y|
    seen along the path, times 2), if the symmetric part of -J is positive definite beyond c = 2 sqrt(2 L |f|), the
    flow is a contraction on the ball B(y, 2 |f| / sqrt(2 L |f|)) around the state, which holds exactly one
    equilibrium, the one Newton's method converges to from y (Kantorovich): Newton mode, with steps no longer than
    ``trust`` (else back to the flow)."""
    n = y0.size
    eye = jnp.eye(n)
    norm = lambda r: jnp.max(jnp.abs(r))
    norm2 = lambda r: jnp.sqrt(jnp.sum(r * r))
    jac = jax.jacfwd(f)

    def body(s):
        y, r, J, dt, mode, lip, k = s
        newton = mode == 1
        h = jnp.where(newton, 1.0, dt)
        lu = jax.scipy.linalg.lu_factor(jnp.where(newton, -J, eye - h * _D * J))
        solve = lambda b: jax.scipy.linalg.lu_solve(lu, b)
        k1 = solve(r)
        r1 = f(y + jnp.where(newton, k1, 0.5 * h * k1))
        k2 = solve(r1 - k1) + k1
        dy = jnp.where(newton, k1 + solve(r1), h * k2)  # Newton mode: a Newton step and a chord step
        y_new = y + dy
        r_new = f(y_new)
        err = norm(h * (k1 - 2 * k2 + solve(r_new - _E32 * (k2 - r1) - 2 * (k1 - r)))) / 6
        big = norm(dy)
        finite = jnp.all(jnp.isfinite(r_new)) & jnp.isfinite(err)
        ok = finite & (big <= options.trust) & (newton | (err <= options.flow_tol))
        J_new = jac(jnp.where(ok, y_new, y))
        lip = jnp.where(ok, jnp.maximum(lip, 2 * jnp.sqrt(jnp.sum((J_new - J) ** 2)) / jnp.maximum(norm2(dy), 1e-300)),
                        lip)
        y, r, J = jnp.where(ok, y_new, y), jnp.where(ok, r_new, r), jnp.where(ok, J_new, J)
        c = 2 * jnp.sqrt(2 * lip * norm2(r))
        sym = -0.5 * (J + J.T) - c * eye
        certified = ok & (lip > 0) & jnp.all(jnp.isfinite(jnp.linalg.cholesky(sym)))
        mode = jnp.where(newton, jnp.where(ok, 1, 0), jnp.where(certified, 1, 0))
        fac = jnp.clip(0.9 * (options.flow_tol / jnp.maximum(err, 1e-300)) ** (1 / 3), 0.2, 5.0)
        fac = jnp.minimum(fac, 0.8 * options.trust / jnp.maximum(big, 1e-300))
        fac = jnp.where(finite, jnp.where(ok, fac, jnp.minimum(fac, 0.5)), 0.25)
        dt = jnp.where(newton, dt, jnp.minimum(h * fac, 1e12))
        return y, r, J, dt, mode, lip, k + 1

    def cond(s):
        return (s[6] < options.max_iter) & (norm(s[1]) > options.tol)

    r0 = f(y0)
    dt0 = jnp.minimum(jnp.asarray(options.dt0, y0.dtype), 0.5 * options.trust / jnp.maximum(norm(r0), 1e-300))
    y, r, _, _, _, _, _ = jax.lax.while_loop(cond, body, (y0, r0, jac(y0), dt0, 0, jnp.zeros((), y0.dtype), 0))
    J = jac(y)
    stable = jnp.max(jnp.real(jnp.linalg.eigvals(J))) < 0
    return y, J, (norm(r) <= options.tol) & stable


def _flat_rhs(dyn: optomech.Dynamics, tables, shape, x):
    """The right-hand side for one state of ``shape`` with inputs x, as a function of (flat state, params)."""
    return lambda y, q: dyn.rhs(0.0, y.reshape(shape), {**q, **tables}, x).ravel()


def steady_states_fn(model: str, options: SteadyStateOptions):
    """The traced ``(params, tables, y0, inputs) -> (states, converged)`` of one run: the stable steady states
    reached from y0 (samples, inits, N, d), without gradients (the forward solve of the steady-state adjoint)."""
    dyn = optomech.DYNAMICS[model]

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
    dyn = optomech.DYNAMICS[model]
    out = np.asarray(outputs)

    def one(p, tables, y0, x, target):
        f = _flat_rhs(dyn, tables, y0.shape, x)
        y, jac, ok = _steady_state(lambda y: f(y, p), y0.ravel(), options)
        cost = lambda y: COSTS[kind](dyn.phase(0.0, y.reshape(y0.shape), {**p, **tables})[out], target)
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
def _steady_fn(model: str, outputs: tuple[int, ...], kind: str, stacked: bool):
    def fn(p, tables, y0, x, targets, numbers):
        return steady_loss_fn(model, view((), numbers), outputs, kind)(p, tables, y0, x, targets)

    return jax.jit(jax.vmap(fn, in_axes=(0, 0, 0, None, None, None)) if stacked else fn)


def _split(model: str, params: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """(trainable, tables) as jnp arrays: the model's tables get no gradient."""
    tables = registry.get_model(model).tables
    p = {k: jnp.asarray(v) for k, v in params.items()}
    return {k: v for k, v in p.items() if k not in tables}, {k: p[k] for k in tables}


def integrate(model: str, params: dict[str, np.ndarray], y0: np.ndarray, times: np.ndarray, inputs: np.ndarray,
              options: IntegrateOptions) -> np.ndarray:
    """:meth:`~pyosc.engines.base.DynamicsEngine.integrate` on validated inputs."""
    p = {k: jnp.asarray(v) for k, v in params.items()}
    key, numbers = split(options, STATIC)
    ys, ok = _trajectory_fn(model, key, y0.ndim == 5)(p, *flat_states(y0, 2, inputs), jnp.asarray(times), numbers)
    if not np.all(np.asarray(ok)):
        raise ConvergenceError(f"{int(np.size(ok) - np.sum(ok))} trajectories failed (step budget max_steps="
                               f"{options.max_steps} or a non-finite state); raise max_steps or loosen rtol/atol")
    return np.asarray(ys).reshape(y0.shape[:-2] + (times.size,) + y0.shape[-2:])


def final_state_loss_and_grad(model: str, params: dict[str, np.ndarray], y0: np.ndarray, t1: float, loss: FinalLoss,
                              inputs: np.ndarray, options: IntegrateOptions) -> tuple[np.ndarray, dict]:
    """:meth:`~pyosc.engines.base.DynamicsEngine.final_state_loss_and_grad` on validated inputs."""
    key, numbers = split(options, STATIC)
    fn = _loss_grad_fn(model, key, loss.outputs, loss.kind, y0.ndim == 5)
    trainable, tables = _split(model, params)
    (value, ok), grad = fn(trainable, tables, *flat_states(y0, 2, inputs, loss.targets), t1, numbers)
    if not np.all(np.asarray(ok)):
        raise ConvergenceError(f"a trajectory failed (step budget max_steps={options.max_steps} or a non-finite "
                               "state); raise max_steps or loosen rtol/atol")
    return np.asarray(value), {k: np.asarray(v) for k, v in grad.items()}


def steady_state_loss_and_grad(model: str, params: dict[str, np.ndarray], y0: np.ndarray, loss: FinalLoss,
                               inputs: np.ndarray, options: SteadyStateOptions) -> tuple[np.ndarray, dict, np.ndarray]:
    """:meth:`~pyosc.engines.base.DynamicsEngine.steady_state_loss_and_grad` on validated inputs."""
    fn = _steady_fn(model, loss.outputs, loss.kind, y0.ndim == 5)
    trainable, tables = _split(model, params)
    value, grad, ok = fn(trainable, tables, *flat_states(y0, 2, inputs, loss.targets), split(options, ())[1])
    return np.asarray(value), {k: np.asarray(v) for k, v in grad.items()}, np.asarray(ok).reshape(y0.shape[:-2])
