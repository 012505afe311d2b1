"""The engine interface: options, results, and the public methods that validate every input once, for all engines.

An engine computes named models (:mod:`pyosc.models.registry`) with its own implementation of their equations,
so that a non-Python engine (Julia) needs no Python callbacks inside its solver. Arguments are NumPy arrays,
parameter mappings (name -> array; the models' NamedTuples such as ``XYParams`` are accepted too) and small frozen
option records; results are frozen records of NumPy arrays.

:class:`EquilibriumEngine` (energy models: ``relax``, ``trajectory``, ``ep_step``) and :class:`DynamicsEngine`
(dynamical models: ``integrate``, ``final_state_loss_and_grad``, ``steady_state_loss_and_grad``) check the model,
parameters, arrays and options here, then call the engine's implementation hook of the same name with a leading
underscore (``_relax``, ...), passing validated float64 arrays: an engine implements only the hooks.
:class:`Engine` is both.

Array conventions: phases ``phi0`` have shape ``(samples, inits, N)``, or ``(runs, samples, inits, N)`` when the
parameters carry a leading ``runs`` axis (independent networks computed in one call). Targets have shape
``(samples, n_outputs)`` and are shared by all runs and initial states.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from pyosc.errors import InvalidInputError, as_real_array, check_positive
from pyosc.models import registry
from pyosc.topology import Topology

METHODS = ("newton", "continuation", "ode")

INTEGRATORS = ("tsit5", "dopri5", "dopri8", "kvaerno3", "kvaerno4", "kvaerno5")
"""Time integrators by method name: explicit Runge-Kutta pairs ``"tsit5"`` (Tsitouras 5(4)), ``"dopri5"``,
``"dopri8"`` (Dormand-Prince 5(4), 8(7)) and the stiff (L-stable, implicit ESDIRK) ``"kvaerno3"``, ``"kvaerno4"``,
``"kvaerno5"`` (Kvaerno). Each engine offers some of them (:attr:`BaseEngine.integrators`)."""


def _check_integrator(option: str, name) -> None:
    if name not in INTEGRATORS:
        raise InvalidInputError(f"unknown {option} {name!r}; use one of {INTEGRATORS}")


@dataclass(frozen=True)
class RelaxOptions:
    """How to reach a stable equilibrium (steady state) of the gradient flow d phi/dt = -dF/dphi.

    method
        ``"newton"`` (default): follow the gradient flow with a linearly implicit integrator (Rosenbrock
        steps that use the analytic Hessian, error-controlled, with a trust region on the phase change per
        step) until a convergence certificate proves that Newton's method from the current state ends where
        the flow ends, then take Newton steps. It ends in the basin that the flow reaches from ``phi0`` (to
        the integrator's accuracy, see ``trust`` and ``flow_tol``), in tens of iterations; converged states
        are stable (positive-definite Hessian). ``"continuation"``: the previous default, pseudo-transient
        continuation (implicit-Euler steps whose pseudo-time step grows as the state settles,
        Levenberg-Marquardt damping); every accepted step lowers F and it ends in a stable local minimum,
        but for a few % of random starts not in the flow's basin. ``"ode"``: integrate the flow with a
        time integrator until the steady state; exact trajectory, much slower; converged states are
        stable equilibria too (a state started exactly at a saddle stays there and is flagged unconverged).
    tol
        Steady state: max over free units of ``|d phi/dt|`` (rad per time unit) below ``tol``.
    max_iter
        Safeguard of ``"newton"`` and ``"continuation"``: samples still above ``tol`` after this many
        iterations are flagged.
    trust, flow_tol
        ``"newton"``'s flow phase: the most any free unit's phase may change in one linearly implicit step (rad)
        and the local error allowed per step (rad, max over units; explicit steps: a tenth of it). Smaller values
        follow the flow more closely, at more steps. With the defaults, every one of thousands of random starts
        on XOR and on all-to-all and layered digits networks ends where a tight integration of the flow ends,
        except about 1 in 2,000 on a layered [64, 200, 10] network at initialisation, whose flow passes within
        about 1e-4 rad of a basin boundary (see :func:`pyosc.testing.check_relaxation_follows_the_flow`).
    t_max, integrator, rtol, atol, max_steps
        ``"ode"`` (and :meth:`EquilibriumEngine.trajectory`): safeguard time (flagged if not steady by then),
        integrator name (:data:`INTEGRATORS`), step-size controller tolerances and step budget. An explicit
        integrator's errors of order ``atol`` keep the force near ``atol`` times the stiffness, so ``tol`` must
        be at least 10 x ``atol``.
    shared_steps
        ``"ode"``: integrate all states of a call as one system, with one step-size controller and one
        steady-state event (the slowest state decides), as the XY paper's code does. Faster on CPU;
        with a short ``t_max`` it reproduces that code's fixed-horizon protocol. Default: each state
        is its own problem.
    """

    method: str = "newton"
    tol: float = 1e-10
    max_iter: int = 200
    trust: float = 0.3
    flow_tol: float = 0.01
    t_max: float = 1e4
    integrator: str = "tsit5"
    rtol: float = 1e-8
    atol: float = 1e-8
    max_steps: int = 1_000_000
    shared_steps: bool = False

    @classmethod
    def for_tolerance(cls, method: str = "newton", tol: float = 1e-10, t_max: float = 1e4,
                      shared_steps: bool = False) -> RelaxOptions:
        """Options from the steady-state tolerance alone: ``"ode"`` integrates with rtol = atol = tol / 100
        (its errors must stay well below ``tol``); ``t_max`` and ``shared_steps`` apply to ``"ode"`` only."""
        if method in ("newton", "continuation"):
            return cls(method=method, tol=tol)
        return cls(method=method, tol=tol, rtol=tol / 100, atol=tol / 100, t_max=t_max, shared_steps=shared_steps)

    def __post_init__(self):
        if self.method not in METHODS:
            raise InvalidInputError(f"unknown relaxation method {self.method!r}; use one of {METHODS}")
        _check_integrator("integrator", self.integrator)
        for name in ("tol", "t_max", "rtol", "atol", "trust", "flow_tol"):
            check_positive(name, getattr(self, name))
        if int(self.max_iter) < 1 or int(self.max_steps) < 1:
            raise InvalidInputError("max_iter and max_steps must be >= 1")
        if self.method == "ode" and self.tol < 10 * max(self.atol, self.rtol):
            raise InvalidInputError(f"with method 'ode', tol ({self.tol:g}) must be at least 10 x atol and rtol "
                                    f"({self.atol:g}, {self.rtol:g}): integration errors of that size keep the "
                                    "force from falling further")


@dataclass(frozen=True)
class Nudge:
    """Nudging of the outputs toward targets: F = E + beta * C(phi_out, targets), ``cost`` = ``"log"``."""

    beta: float
    targets: np.ndarray
    cost: str = "log"

    def __post_init__(self):
        if self.cost != "log":
            raise InvalidInputError(f"unknown cost {self.cost!r}; the XY model nudges with 'log'")
        try:
            beta = float(self.beta)
        except (TypeError, ValueError):
            raise InvalidInputError(f"beta must be a real number, got {self.beta!r}") from None
        if not np.isfinite(beta) or beta <= 0:
            raise InvalidInputError(f"beta must be > 0 with the log cost (it diverges for beta < 0), got {self.beta!r}")
        object.__setattr__(self, "beta", beta)
        object.__setattr__(self, "targets", as_real_array("targets", self.targets, ndim=2))


@dataclass(frozen=True)
class IntegrateOptions:
    """How to integrate a dynamical model (``integrate`` and ``final_state_loss_and_grad``).

    method
        Time integrator (:data:`INTEGRATORS`): ``"tsit5"``, ``"dopri5"``, ``"dopri8"`` (explicit) or the stiff
        ``"kvaerno3"``, ``"kvaerno4"``, ``"kvaerno5"`` (Newton-chord stages with tolerances rtol, atol).
    rtol, atol, max_steps
        Adaptive step-size control (error measured in the max norm per trajectory) and step budget;
        a solve that runs out of steps raises :class:`~pyosc.errors.ConvergenceError`.
    dt
        Fixed step size instead of adaptive control (``None``: adaptive).
    saved_states
        Gradients are reverse-mode derivatives of the discrete solver with recursive checkpointing
        (the exact gradient of the computed solution); this is the number of states stored for the reverse
        pass (``None``: the engine's default, about log2(max_steps), with recomputation; ``max_steps``: every
        step is stored and nothing recomputed, fastest, memory proportional to max_steps). The continuous
        adjoint that re-integrates the state backward in time is not offered: self-oscillators contract
        onto their limit cycle (rate gamma), so the backward state grows errors like exp(gamma t1)
        (checked: wrong gradients at gamma t1 = 27).
    """

    method: str = "tsit5"
    rtol: float = 1e-8
    atol: float = 1e-8
    dt: float | None = None
    max_steps: int = 100_000
    saved_states: int | None = None

    def __post_init__(self):
        _check_integrator("integration method", self.method)
        check_positive("rtol", self.rtol)
        check_positive("atol", self.atol)
        if self.dt is not None:
            check_positive("dt", self.dt)
        if int(self.max_steps) < 1:
            raise InvalidInputError(f"max_steps must be >= 1, got {self.max_steps!r}")
        if self.saved_states is not None and not 1 <= int(self.saved_states) <= int(self.max_steps):
            raise InvalidInputError(f"saved_states must be None or in [1, max_steps], got {self.saved_states!r}")


@dataclass(frozen=True)
class SteadyStateOptions:
    """How to find a stable steady state of an autonomous dynamical model (``steady_state_loss_and_grad``).

    The steady state that the dynamics dy/dt = f(y) reach from the initial state: the flow is followed with
    linearly implicit steps (ode23s, a Rosenbrock method with the exact Jacobian J), each accepted when its local
    error estimate is at most ``flow_tol`` and no state component changes by more than ``trust`` (the first step
    is at most ``dt0`` time units), until a certificate shows that Newton's method ends where the flow ends: the
    symmetric part of -J is positive definite with a margin 2 sqrt(2 L |f|) (L an estimate of the Lipschitz
    constant of J from its changes along the path), which makes the flow a contraction on a ball around the state
    holding exactly one equilibrium. Then Newton steps (each at most ``trust``). Converged: max |f| < ``tol``
    within ``max_iter`` steps at a fixed point whose Jacobian has only eigenvalues with negative real part (a
    stable, i.e. physically reached, state).
    """

    tol: float = 1e-10
    max_iter: int = 200
    dt0: float = 10.0
    trust: float = 0.3
    flow_tol: float = 0.01

    def __post_init__(self):
        check_positive("tol", self.tol)
        check_positive("dt0", self.dt0)
        check_positive("trust", self.trust)
        check_positive("flow_tol", self.flow_tol)
        if int(self.max_iter) < 1:
            raise InvalidInputError(f"max_iter must be >= 1, got {self.max_iter!r}")


@dataclass(frozen=True)
class FinalLoss:
    """A loss on the output phases at the final time, averaged over samples and initial states.

    ``targets``: (samples, n_out) target phases (rad) of the units ``outputs`` (indices);
    ``kind``: ``"distance"`` = mean over outputs of (1 - cos(phi - tau)) / 2, in [0, 1], or
    ``"log"`` = -sum over outputs of log(1 + cos(phi - tau)) (Wang et al.'s cost).
    """

    targets: np.ndarray
    outputs: tuple[int, ...] = (-1,)
    kind: str = "distance"

    def __post_init__(self):
        if self.kind not in ("distance", "log"):
            raise InvalidInputError(f"unknown loss kind {self.kind!r}; use 'distance' or 'log'")
        targets = as_real_array("targets", self.targets, ndim=2)
        outputs = tuple(int(o) for o in np.atleast_1d(self.outputs))
        if targets.shape[1] != len(outputs):
            raise InvalidInputError(f"targets must have one column per output unit ({len(outputs)}), "
                                    f"got shape {targets.shape}")
        object.__setattr__(self, "targets", targets)
        object.__setattr__(self, "outputs", outputs)


@dataclass(frozen=True, eq=False)
class Equilibrium:
    """Result of a relaxation. ``phi``: phases (same shape as ``phi0``); ``converged``: bool per
    state, True if the steady-state test passed before the safeguard; ``force``: final max
    ``|d phi/dt|`` per state; ``work``: iterations (newton) or time reached (ode) per state."""

    phi: np.ndarray
    converged: np.ndarray
    force: np.ndarray
    work: np.ndarray


@dataclass(frozen=True, eq=False)
class EPStep:
    """One equilibrium-propagation evaluation: ``gradient`` maps each parameter name of the model to
    (dE/dtheta|nudged - dE/dtheta|free) / beta averaged over samples and initial states (per run: same shape
    as the parameter), couplings per pair (both entries of W); ``free`` and ``nudged``: the two equilibria."""

    gradient: dict[str, np.ndarray]
    free: Equilibrium
    nudged: Equilibrium


def _check_options(options, cls) -> None:
    if not isinstance(options, cls):
        raise InvalidInputError(f"options must be a pyosc.engines.base.{cls.__name__}, got {type(options).__name__}")


class BaseEngine(ABC):
    """What every engine declares: its ``name``, the ``models`` it implements (names in
    :mod:`pyosc.models.registry`) and the ``integrators`` it offers (names in :data:`INTEGRATORS`)."""

    name: str
    models: frozenset[str]
    integrators: tuple[str, ...]

    def _model(self, model: str, kind: str) -> registry.Model:
        """The registry entry of ``model``, checked to be of ``kind`` and implemented here."""
        spec = registry.get_model(model)
        if spec.kind != kind:
            use = ("relax, trajectory or ep_step" if spec.kind == "energy"
                   else "integrate, final_state_loss_and_grad or steady_state_loss_and_grad")
            article = "an" if spec.kind == "energy" else "a"
            raise InvalidInputError(f"{model!r} is {article} {spec.kind} model: use {use}")
        if model not in self.models:
            raise InvalidInputError(f"engine {self.name!r} does not implement model {model!r}; it has "
                                    f"{sorted(self.models)}")
        return spec

    def _integrator(self, option: str, name: str) -> None:
        if name not in self.integrators:
            raise InvalidInputError(f"{option}={name!r} is not available in engine {self.name!r}; it has "
                                    f"{self.integrators}")


class EquilibriumEngine(BaseEngine):
    """Relaxation of energy models (``"xy"``, ``"onn"``) to stable equilibria, trajectories of their gradient
    flow, and equilibrium-propagation steps."""

    def relax(self, model: str, params, phi0: np.ndarray, topology: Topology, nudge: Nudge | None = None,
              options: RelaxOptions = RelaxOptions()) -> Equilibrium:
        """Relax every state of ``phi0`` to a stable equilibrium; clamped (input) units stay fixed."""
        p, phi0, targets, beta = self._equilibrium_inputs(model, params, phi0, topology, nudge, options)
        return self._relax(model, p, phi0, topology, targets, beta, options)

    def trajectory(self, model: str, params, phi0: np.ndarray, topology: Topology, times: np.ndarray,
                   nudge: Nudge | None = None, options: RelaxOptions = RelaxOptions()) -> np.ndarray:
        """Integrate the flow from ``phi0`` (clamped units fixed) with ``options.integrator``, ``rtol``, ``atol``
        and ``max_steps``, and return the states at ``times``: shape ``phi0.shape[:-1] + (len(times), N)``."""
        times = as_real_array("times", times, ndim=1)
        if times.size == 0 or np.any(np.diff(times) <= 0) or times[0] < 0:
            raise InvalidInputError("times must be non-empty, non-negative and strictly increasing")
        p, phi0, targets, beta = self._equilibrium_inputs(model, params, phi0, topology, nudge, options, flow=True)
        return self._trajectory(model, p, phi0, topology, times, targets, beta, options)

    def ep_step(self, model: str, params, phi0: np.ndarray, topology: Topology, nudge: Nudge,
                options: RelaxOptions = RelaxOptions()) -> EPStep:
        """Free relaxation from ``phi0``, nudged relaxation from the free equilibrium, EP gradient."""
        if nudge is None:
            raise InvalidInputError("ep_step needs a Nudge (beta > 0 and targets)")
        p, phi0, targets, beta = self._equilibrium_inputs(model, params, phi0, topology, nudge, options)
        return self._ep_step(model, p, phi0, topology, targets, beta, options)

    def ep_step_program(self, model: str, params, topology: Topology, options: RelaxOptions = RelaxOptions(), *,
                        stacked: bool = False) -> Callable | None:
        """The EP step as a pure JAX function for callers that compile it into larger programs (a training
        iteration with its update, a whole training loop), or None where the engine has none (then use
        :meth:`ep_step`).

        The function maps ``(params, phi0, targets, beta)`` (a dict of JAX arrays like ``params``, initial states
        ``([runs,] samples, inits, N)``, targets ``(samples, n_out)``, beta > 0) to ``(gradient, free, nudged)``:
        the gradient as a dict and the equilibria as (phi, converged, force, work) tuples, as in :meth:`ep_step`;
        ``stacked``: the parameters carry a leading runs axis. Nothing is validated inside the function: ``params``
        (their names, shapes and couplings) and the options are checked here, once; callers keep the parameters
        finite and symmetric and pass initial states of the checked shape."""
        n_runs = None if not stacked else np.shape(params["W"])[0]
        lead = () if n_runs is None else (n_runs,)
        self._equilibrium_inputs(model, params, np.zeros(lead + (1, 1, topology.n_units)), topology, None, options)
        return self._ep_step_program(model, topology, options, stacked)

    def _ep_step_program(self, model: str, topology: Topology, options: RelaxOptions, stacked: bool
                         ) -> Callable | None:
        """:meth:`ep_step_program` after validation; engines that compile with JAX override it."""
        return None

    def _equilibrium_inputs(self, model, params, phi0, topology, nudge, options, flow: bool = False):
        """Validated (params, phi0, targets, beta); targets are zeros and beta 0.0 without a nudge. ``flow``: for
        a trajectory of the flow (an integrator, no energy needed), else for ``options.method``."""
        spec = self._model(model, "energy")
        _check_options(options, RelaxOptions)
        if flow or options.method == "ode":
            self._integrator("RelaxOptions.integrator", options.integrator)
        needs_energy = not flow and options.method in ("newton", "continuation")
        if not isinstance(topology, Topology):
            raise InvalidInputError(f"topology must be a pyosc.topology.Topology, got {type(topology).__name__}")
        p, runs = registry.validate_params(model, params, topology.n_units)
        for name in spec.couplings:  # the relaxations use only the topology's couplings
            if np.any(p[name][..., ~topology.coupling_mask] != 0):
                raise InvalidInputError(f"{name} couples units that the topology {topology.name} leaves uncoupled")
        if needs_energy and spec.energy_obstacle is not None and (reason := spec.energy_obstacle(p)):
            raise InvalidInputError(reason)
        lead = (runs,) if runs else ()
        phi0 = as_real_array("phi0", phi0, shape=lead + (None, None, topology.n_units))
        n_samples = phi0.shape[-3]
        if phi0.size == 0:
            raise InvalidInputError(f"phi0 must hold at least one sample and one initial state, got shape {phi0.shape}")
        if nudge is None:
            return p, phi0, np.zeros((n_samples, topology.n_outputs)), 0.0
        if not isinstance(nudge, Nudge):
            raise InvalidInputError(f"nudge must be a pyosc.engines.base.Nudge or None, got {type(nudge).__name__}")
        if nudge.targets.shape != (n_samples, topology.n_outputs):
            raise InvalidInputError(f"targets must have shape (samples, n_outputs) = "
                                    f"{(n_samples, topology.n_outputs)}, got {nudge.targets.shape}")
        return p, phi0, nudge.targets, nudge.beta

    @abstractmethod
    def _relax(self, model: str, params: dict[str, np.ndarray], phi0: np.ndarray, topology: Topology,
               targets: np.ndarray, beta: float, options: RelaxOptions) -> Equilibrium:
        """:meth:`relax` on validated inputs; ``beta`` = 0.0 means no nudge."""

    @abstractmethod
    def _trajectory(self, model: str, params: dict[str, np.ndarray], phi0: np.ndarray, topology: Topology,
                    times: np.ndarray, targets: np.ndarray, beta: float, options: RelaxOptions) -> np.ndarray:
        """:meth:`trajectory` on validated inputs."""

    @abstractmethod
    def _ep_step(self, model: str, params: dict[str, np.ndarray], phi0: np.ndarray, topology: Topology,
                 targets: np.ndarray, beta: float, options: RelaxOptions) -> EPStep:
        """:meth:`ep_step` on validated inputs (``beta`` > 0)."""


class DynamicsEngine(BaseEngine):
    """Integration of dynamical models (``"optomech-*"``) and gradients of losses on their final or steady states.

    ``params``: name -> array (optionally with a leading ``runs`` axis); ``y0``:
    ``([runs,] samples, inits, N, state_size)``; ``inputs``: (samples, n_inputs) input phases driving the first
    units (``None``: no inputs).
    """

    def integrate(self, model: str, params: Mapping[str, np.ndarray], y0: np.ndarray, times: np.ndarray, *,
                  inputs: np.ndarray | None = None, options: IntegrateOptions = IntegrateOptions()) -> np.ndarray:
        """Integrate a dynamical model (e.g. ``"optomech-averaged"``) from ``y0`` (at t = 0) and return the states
        at ``times``: shape ``y0.shape[:-2] + (len(times), N, state_size)``. A trajectory that fails (step budget,
        non-finite state) raises :class:`~pyosc.errors.ConvergenceError`."""
        p, y0, x = self._dynamics_inputs(model, params, y0, inputs, options, IntegrateOptions)
        times = as_real_array("times", times, ndim=1)
        if times.size == 0 or times[0] < 0 or np.any(np.diff(times) <= 0) or times[-1] <= 0:
            raise InvalidInputError("times must be non-empty, non-negative, strictly increasing and end after 0")
        return self._integrate(model, p, y0, times, x, options)

    def final_state_loss_and_grad(self, model: str, params: Mapping[str, np.ndarray], y0: np.ndarray, t1: float,
                                  loss: FinalLoss, *, inputs: np.ndarray | None = None,
                                  options: IntegrateOptions = IntegrateOptions()) -> tuple[np.ndarray, dict]:
        """Loss on the output phases at time ``t1`` and its gradient with respect to every entry of ``params``,
        through the solve. Returns ``(loss, grads)``: loss a float (array ``(runs,)`` with a runs axis) and
        grads a dict shaped like ``params`` without the model's fixed tables (matrix entries each on their own,
        not per pair)."""
        p, y0, x = self._dynamics_inputs(model, params, y0, inputs, options, IntegrateOptions)
        t1 = check_positive("t1", t1)
        self._check_loss(loss, y0)
        return self._final_state_loss_and_grad(model, p, y0, t1, loss, x, options)

    def steady_state_loss_and_grad(self, model: str, params: Mapping[str, np.ndarray], y0: np.ndarray,
                                   loss: FinalLoss, *, inputs: np.ndarray | None = None,
                                   options: SteadyStateOptions = SteadyStateOptions()
                                   ) -> tuple[np.ndarray, dict, np.ndarray]:
        """Loss on the output phases at the stable steady state reached from ``y0`` (an autonomous model such as
        ``"optomech-averaged"``), and its gradient by the implicit-function theorem: with f(y*, p) = 0,
        dL/dp = -lambda^T df/dp where J^T lambda = dL/dy at y* (one linear solve per state, no trajectory
        stored). A state that reaches no stable fixed point (it keeps drifting, e.g. unlocked oscillators)
        counts with the mean cost of a uniformly random output and contributes no gradient. Returns
        ``(loss, grads, converged)``, ``converged`` a bool array ``([runs,] samples, inits)``."""
        if not self._model(model, "dynamics").autonomous:
            raise InvalidInputError(f"{model!r} is driven explicitly in time and has no steady states; "
                                    "use an autonomous (averaged or phase) model")
        p, y0, x = self._dynamics_inputs(model, params, y0, inputs, options, SteadyStateOptions)
        self._check_loss(loss, y0)
        return self._steady_state_loss_and_grad(model, p, y0, loss, x, options)

    def _dynamics_inputs(self, model, params, y0, inputs, options, options_type):
        """Validated (params, y0, inputs); inputs (samples, 0) when there are none."""
        spec = self._model(model, "dynamics")
        _check_options(options, options_type)
        if isinstance(options, IntegrateOptions):
            self._integrator("IntegrateOptions.method", options.method)
        y0 = as_real_array("y0", y0, ndim=(4, 5))
        if y0.shape[-1] != spec.state_size:
            raise InvalidInputError(f"y0 must end in the state axis of size {spec.state_size} for {model!r}, "
                                    f"got shape {y0.shape}")
        p, runs = registry.validate_params(model, params, y0.shape[-2])
        if y0.ndim != (5 if runs else 4) or (runs and y0.shape[0] != runs):
            lead = f"({runs}, " if runs else "("
            raise InvalidInputError(f"y0 must have shape {lead}samples, inits, N, {spec.state_size}) for these "
                                    f"params, got {y0.shape}")
        if y0.size == 0:
            raise InvalidInputError(f"y0 must hold at least one sample and one initial state, got shape {y0.shape}")
        n_samples = y0.shape[-4]
        x = np.zeros((n_samples, 0)) if inputs is None else as_real_array("inputs", inputs, ndim=2)
        if x.shape[0] != n_samples or x.shape[1] > y0.shape[-2]:
            raise InvalidInputError(f"inputs must have shape (samples={n_samples}, n_inputs <= N={y0.shape[-2]}), "
                                    f"got {x.shape}")
        return p, y0, x

    @staticmethod
    def _check_loss(loss: FinalLoss, y0: np.ndarray) -> None:
        if not isinstance(loss, FinalLoss):
            raise InvalidInputError(f"loss must be a pyosc.engines.base.FinalLoss, got {type(loss).__name__}")
        n_units = y0.shape[-2]
        if any(not -n_units <= o < n_units for o in loss.outputs):
            raise InvalidInputError(f"outputs must index the {n_units} units, got {loss.outputs}")
        if loss.targets.shape[0] != y0.shape[-4]:
            raise InvalidInputError(f"targets must have one row per sample ({y0.shape[-4]}), "
                                    f"got {loss.targets.shape}")

    @abstractmethod
    def _integrate(self, model: str, params: dict[str, np.ndarray], y0: np.ndarray, times: np.ndarray,
                   inputs: np.ndarray, options: IntegrateOptions) -> np.ndarray:
        """:meth:`integrate` on validated inputs."""

    @abstractmethod
    def _final_state_loss_and_grad(self, model: str, params: dict[str, np.ndarray], y0: np.ndarray, t1: float,
                                   loss: FinalLoss, inputs: np.ndarray,
                                   options: IntegrateOptions) -> tuple[np.ndarray, dict]:
        """:meth:`final_state_loss_and_grad` on validated inputs."""

    @abstractmethod
    def _steady_state_loss_and_grad(self, model: str, params: dict[str, np.ndarray], y0: np.ndarray,
                                    loss: FinalLoss, inputs: np.ndarray,
                                    options: SteadyStateOptions) -> tuple[np.ndarray, dict, np.ndarray]:
        """:meth:`steady_state_loss_and_grad` on validated inputs."""


class Engine(EquilibriumEngine, DynamicsEngine):
    """An engine for both kinds of models. Implementation: :class:`~pyosc.engines.jax.engine.JaxEngine`."""
