"""The Julia engine: :class:`JuliaEngine`, the hooks of :class:`~pyosc.engines.base.Engine` computed by the Julia
package PyoscEngine (OrdinaryDiffEq.jl, SciMLSensitivity.jl) through :mod:`~pyosc.engines.julia.bridge`.

Options map to the Julia keywords as follows (:func:`relax_keywords`, :func:`flow_keywords`,
:func:`integrate_keywords`, :func:`steady_keywords`): ``RelaxOptions.integrator`` and ``IntegrateOptions.method``
become ``solver`` (same names: ``"tsit5"`` -> ``Tsit5()``, ``"kvaerno5"`` -> ``Kvaerno5()``, ...),
``IntegrateOptions.dt=None`` becomes ``dt=0.0`` (adaptive steps); every other field keeps its name. Two options have
no Julia counterpart and are refused with :class:`~pyosc.errors.InvalidInputError`: ``RelaxOptions.shared_steps``
with ``method="ode"`` (every state is its own ODE here) and ``IntegrateOptions.saved_states`` other than ``None``
(gradients are ForwardDiff through the solve for small problems, else a continuous adjoint (GaussAdjoint) over the
stored dense forward solution: there is no checkpoint count to set).

Each network (one entry of a leading ``runs`` axis) is one Julia call; its (samples, inits) states are one threaded
batch in Julia. Results are NumPy copies (:func:`~pyosc.engines.julia.arrays.from_julia`). A trajectory that fails
(step budget, non-finite state) raises :class:`~pyosc.errors.ConvergenceError`, in ``trajectory`` as in
``integrate`` and ``final_state_loss_and_grad``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, is_dataclass

import numpy as np

from pyosc.engines.base import (
    INTEGRATORS,
    Engine,
    EPStep,
    Equilibrium,
    FinalLoss,
    IntegrateOptions,
    RelaxOptions,
    SteadyStateOptions,
)
from pyosc.engines.julia import arrays, bridge
from pyosc.errors import ConvergenceError, InvalidInputError
from pyosc.topology import Topology

MODELS = ("xy", "onn", "optomech-micro", "optomech-averaged", "optomech-phase")
"""The models of PyoscEngine (``PHASE_PARAMS`` and ``DYNAMICS`` in ``julia/PyoscEngine/src/models.jl``)."""


def flow_keywords(options: RelaxOptions) -> dict:
    """Julia keywords of ``trajectory``: ``solver``, ``rtol``, ``atol``, ``max_steps``."""
    return dict(solver=options.integrator, rtol=float(options.rtol), atol=float(options.atol),
                max_steps=int(options.max_steps))


def relax_keywords(options: RelaxOptions) -> dict:
    """Julia keywords of ``relax`` and ``ep_step``."""
    if options.method == "ode" and options.shared_steps:
        raise InvalidInputError("RelaxOptions.shared_steps is not available in engine 'julia': it integrates every "
                                "state as its own ODE; use shared_steps=False or engine 'jax'")
    return dict(method=options.method, tol=float(options.tol), max_iter=int(options.max_iter),
                t_max=float(options.t_max), **flow_keywords(options))


def integrate_keywords(options: IntegrateOptions) -> dict:
    """Julia keywords of ``integrate`` and ``final_state_loss_and_grad``."""
    if options.saved_states is not None:
        raise InvalidInputError("IntegrateOptions.saved_states has no meaning in engine 'julia' (its gradients use "
                                "forward mode or a continuous adjoint over the dense forward solution, no "
                                "checkpoints); leave it None")
    return dict(solver=options.method, rtol=float(options.rtol), atol=float(options.atol),
                max_steps=int(options.max_steps), dt=0.0 if options.dt is None else float(options.dt))


def steady_keywords(options: SteadyStateOptions) -> dict:
    """Julia keywords of ``steady_state_loss_and_grad``."""
    return dict(tol=float(options.tol), max_iter=int(options.max_iter), dt0=float(options.dt0))


def _stack(items: list):
    """Per-run results stacked along a new leading axis: arrays, dicts of them, tuples and result records."""
    first = items[0]
    if isinstance(first, dict):
        return {k: _stack([i[k] for i in items]) for k in first}
    if isinstance(first, tuple):
        return tuple(_stack(list(z)) for z in zip(*items, strict=True))
    if is_dataclass(first):
        return type(first)(*(_stack([getattr(i, f.name) for i in items]) for f in fields(first)))
    return np.stack(items)


def _by_run(fn: Callable, params: dict[str, np.ndarray], batch: np.ndarray, stacked: bool):
    """``fn(params, batch)`` for one network, or for each run of a leading runs axis, stacked."""
    if not stacked:
        return fn(params, batch)
    return _stack([fn({k: v[r] for k, v in params.items()}, batch[r]) for r in range(batch.shape[0])])


def network_args(phi0: np.ndarray, topology: Topology, targets: np.ndarray) -> tuple:
    """The arguments ``phi0, clamped, outputs, targets`` of the phase-model entry points, for phi0 (S, M, N), as
    they cross the bridge (also what the golden vectors record)."""
    return (arrays.to_julia(arrays.states(phi0)), np.ascontiguousarray(topology.clamped, dtype=bool),
            arrays.indices(topology.output_units), arrays.to_julia(arrays.per_state(targets, phi0.shape[1])))


def _equilibrium(result, shape: tuple[int, ...]) -> Equilibrium:
    phi, converged, force, work = result
    per_state = shape[:-1]
    return Equilibrium(arrays.from_julia(phi).reshape(shape), arrays.from_julia(converged, bool).reshape(per_state),
                       arrays.from_julia(force).reshape(per_state), arrays.from_julia(work).reshape(per_state))


def dynamics_args(y0: np.ndarray, inputs: np.ndarray) -> tuple:
    """The arguments ``y0, inputs`` of the dynamics entry points, for y0 (S, M, N, d), as they cross the bridge."""
    return arrays.to_julia(arrays.states(y0)), arrays.to_julia(arrays.per_state(inputs, y0.shape[1]))


def loss_args(y0: np.ndarray, loss: FinalLoss) -> tuple:
    """The arguments ``targets, outputs`` of the loss entry points, as they cross the bridge."""
    return arrays.to_julia(arrays.per_state(loss.targets, y0.shape[1])), arrays.indices(loss.outputs)


def _require(ok, what: str, options: IntegrateOptions | RelaxOptions) -> None:
    ok = arrays.from_julia(ok, bool)
    if not ok.all():
        raise ConvergenceError(f"{int(ok.size - ok.sum())} {what} failed (step budget max_steps={options.max_steps} "
                               "or a non-finite state); raise max_steps or loosen rtol/atol")


class JuliaEngine(Engine):
    """Every registered model, computed in Julia. Creating it starts Julia (:func:`bridge.start`)."""

    name = "julia"
    models = frozenset(MODELS)
    integrators = INTEGRATORS

    def __init__(self) -> None:
        bridge.start()

    def _relax(self, model, params, phi0, topology, targets, beta, options):
        kw = relax_keywords(options)

        def one(p, phi):
            result = bridge.call("relax", model, p, *network_args(phi, topology, targets), float(beta), **kw)
            return _equilibrium(result, phi.shape)

        return _by_run(one, params, phi0, phi0.ndim == 4)

    def _trajectory(self, model, params, phi0, topology, times, targets, beta, options):
        kw = flow_keywords(options)

        def one(p, phi):
            phis, ok = bridge.call("trajectory", model, p, *network_args(phi, topology, targets), float(beta),
                                   np.ascontiguousarray(times), **kw)
            _require(ok, "trajectories", options)
            return arrays.from_julia(phis).reshape(phi.shape[:-1] + (times.size, phi.shape[-1]))

        return _by_run(one, params, phi0, phi0.ndim == 4)

    def _ep_step(self, model, params, phi0, topology, targets, beta, options):
        kw = relax_keywords(options)

        def one(p, phi):
            gradient, free, nudged = bridge.call("ep_step", model, p, *network_args(phi, topology, targets),
                                                 float(beta), **kw)
            return EPStep(arrays.params_from_julia(gradient), _equilibrium(free, phi.shape),
                          _equilibrium(nudged, phi.shape))

        return _by_run(one, params, phi0, phi0.ndim == 4)

    def _integrate(self, model, params, y0, times, inputs, options):
        kw = integrate_keywords(options)

        def one(p, y):
            ys, ok = bridge.call("integrate", model, p, *dynamics_args(y, inputs), np.ascontiguousarray(times), **kw)
            _require(ok, "trajectories", options)
            return arrays.from_julia(ys).reshape(y.shape[:2] + (times.size,) + y.shape[2:])

        return _by_run(one, params, y0, y0.ndim == 5)

    def _final_state_loss_and_grad(self, model, params, y0, t1, loss, inputs, options):
        kw = integrate_keywords(options)

        def one(p, y):
            value, gradient, ok = bridge.call("final_state_loss_and_grad", model, p, *dynamics_args(y, inputs),
                                              *loss_args(y, loss), float(t1), kind=loss.kind, **kw)
            _require(ok, "trajectories", options)
            return np.asarray(float(value)), arrays.params_from_julia(gradient)

        return _by_run(one, params, y0, y0.ndim == 5)

    def _steady_state_loss_and_grad(self, model, params, y0, loss, inputs, options):
        kw = steady_keywords(options)

        def one(p, y):
            value, gradient, converged = bridge.call("steady_state_loss_and_grad", model, p,
                                                     *dynamics_args(y, inputs), *loss_args(y, loss), kind=loss.kind,
                                                     **kw)
            return (np.asarray(float(value)), arrays.params_from_julia(gradient),
                    arrays.from_julia(converged, bool).reshape(y.shape[:2]))

        return _by_run(one, params, y0, y0.ndim == 5)
