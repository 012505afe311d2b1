"""The engine interface: relaxation to equilibrium and equilibrium-propagation steps.

An engine integrates a named model (``"xy"``) with its own implementation of that model's
equations, so that a non-Python engine (Julia) needs no Python callbacks inside its solver. All
arguments and results are arrays (NumPy in, NumPy out) plus small frozen option records.

Array conventions: phases ``phi0`` have shape ``(samples, inits, N)``, or ``(runs, samples, inits, N)``
when the parameters carry a leading ``runs`` axis (independent networks relaxed in one call).
Targets have shape ``(samples, n_outputs)`` and are shared by all runs and initial states.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from pyosc.errors import InvalidInputError, as_real_array, check_positive
from pyosc.topology import Topology

METHODS = ("newton", "ode")


@dataclass(frozen=True)
class RelaxOptions:
    """How to reach a stable equilibrium (steady state) of the gradient flow d phi/dt = -dF/dphi.

    method
        ``"newton"``: pseudo-transient continuation, i.e. implicit-Euler steps of the gradient flow
        whose pseudo-time step grows as the state settles (Levenberg-Marquardt damping with the
        analytic Hessian). Every accepted step lowers F; it ends in a local minimum, usually the
        one the exact flow reaches, in tens of iterations. ``"ode"``: integrate the flow with a
        diffrax solver until the steady state; exact trajectory, much slower.
    tol
        Steady state: max over free units of ``|d phi/dt|`` (rad per time unit) below ``tol``.
    max_iter
        Safeguard of ``"newton"``: samples still above ``tol`` after this many iterations are flagged.
    t_max, solver, rtol, atol, max_steps
        ``"ode"``: safeguard time (flagged if not steady by then), diffrax solver name, step-size
        controller tolerances and step budget. An explicit solver's errors of order ``atol`` keep
        the force near ``atol`` times the stiffness, so ``tol`` must be at least 10 x ``atol``.
    shared_steps
        ``"ode"``: integrate all states of a call as one system, with one step-size controller and one
        steady-state event (the slowest state decides), as the XY paper's code does. Faster on CPU;
        with a short ``t_max`` it reproduces that code's fixed-horizon protocol. Default: each state
        is its own problem.
    """

    method: str = "newton"
    tol: float = 1e-10
    max_iter: int = 200
    t_max: float = 1e4
    solver: str = "Tsit5"
    rtol: float = 1e-8
    atol: float = 1e-8
    max_steps: int = 1_000_000
    shared_steps: bool = False

    @classmethod
    def for_tolerance(cls, method: str = "newton", tol: float = 1e-10, t_max: float = 1e4,
                      shared_steps: bool = False) -> RelaxOptions:
        """Options from the steady-state tolerance alone: ``"ode"`` integrates with rtol = atol = tol / 100
        (its errors must stay well below ``tol``); ``t_max`` and ``shared_steps`` apply to ``"ode"`` only."""
        if method == "newton":
            return cls(tol=tol)
        return cls(method=method, tol=tol, rtol=tol / 100, atol=tol / 100, t_max=t_max, shared_steps=shared_steps)

    def __post_init__(self):
        if self.method not in METHODS:
            raise InvalidInputError(f"unknown relaxation method {self.method!r}; use one of {METHODS}")
        for name in ("tol", "t_max", "rtol", "atol"):
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


class Equilibrium(NamedTuple):
    """Result of a relaxation. ``phi``: phases (same shape as ``phi0``); ``converged``: bool per
    state, True if the steady-state test passed before the safeguard; ``force``: final max
    ``|d phi/dt|`` per state; ``work``: iterations (newton) or time reached (ode) per state."""

    phi: np.ndarray
    converged: np.ndarray
    force: np.ndarray
    work: np.ndarray


class EPStep(NamedTuple):
    """One equilibrium-propagation evaluation: ``gradient`` = (dE/dtheta|nudged - dE/dtheta|free)/beta
    averaged over samples and initial states (per run); the two equilibria; the free-phase distance."""

    gradient: Any
    free: Equilibrium
    nudged: Equilibrium


SOLVERS = ("Tsit5", "Dopri5", "Dopri8", "Kvaerno3", "Kvaerno4", "Kvaerno5")


@dataclass(frozen=True)
class IntegrateOptions:
    """How to integrate a dynamical model (``integrate`` and ``final_state_loss_and_grad``).

    solver
        ``"Tsit5"``, ``"Dopri5"``, ``"Dopri8"`` (explicit) or the stiff (L-stable, implicit ESDIRK)
        ``"Kvaerno3"``, ``"Kvaerno4"``, ``"Kvaerno5"`` (Newton-chord stages with tolerances rtol, atol).
    rtol, atol, max_steps
        Adaptive step-size control (error measured in the max norm per trajectory) and step budget;
        a solve that runs out of steps raises :class:`~pyosc.errors.ConvergenceError`.
    dt
        Fixed step size instead of adaptive control (``None``: adaptive).
    checkpoints
        Gradients are reverse-mode derivatives of the discrete solver with recursive checkpointing
        (the exact gradient of the computed solution); this is the number of stored states (``None``:
        diffrax's default, about log2(max_steps), with recomputation; ``max_steps``: every step is
        stored and nothing recomputed, fastest, memory proportional to max_steps). The continuous
        adjoint that re-integrates the state backward in time is not offered: self-oscillators contract
        onto their limit cycle (rate gamma), so the backward state grows errors like exp(gamma t1)
        (checked: wrong gradients at gamma t1 = 27).
    """

    solver: str = "Tsit5"
    rtol: float = 1e-8
    atol: float = 1e-8
    dt: float | None = None
    max_steps: int = 100_000
    checkpoints: int | None = None

    def __post_init__(self):
        if self.solver not in SOLVERS:
            raise InvalidInputError(f"unknown solver {self.solver!r}; use one of {SOLVERS}")
        check_positive("rtol", self.rtol)
        check_positive("atol", self.atol)
        if self.dt is not None:
            check_positive("dt", self.dt)
        if int(self.max_steps) < 1:
            raise InvalidInputError(f"max_steps must be >= 1, got {self.max_steps!r}")
        if self.checkpoints is not None and not 1 <= int(self.checkpoints) <= int(self.max_steps):
            raise InvalidInputError(f"checkpoints must be None or in [1, max_steps], got {self.checkpoints!r}")


@dataclass(frozen=True)
class SteadyStateOptions:
    """How to find a stable steady state of an autonomous dynamical model (``steady_state_loss_and_grad``).

    Pseudo-transient continuation: implicit-Euler steps (I / dt - J) dy = f(y) of the flow dy/dt = f(y)
    whose pseudo-time step dt starts at ``dt0`` (time units) and grows as the residual falls (switched
    evolution relaxation: dt * |f_old| / |f_new|, between dt / 10 and 10 dt), so the early steps follow the
    dynamics into a basin and the last ones are Newton steps. A step whose residual grows more than
    tenfold is rejected (dt / 4). Converged: max |f| < ``tol`` within ``max_iter`` steps at a fixed point
    whose Jacobian has only eigenvalues with negative real part (a stable, i.e. physically reached, state).
    """

    tol: float = 1e-10
    max_iter: int = 200
    dt0: float = 10.0

    def __post_init__(self):
        check_positive("tol", self.tol)
        check_positive("dt0", self.dt0)
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


class Engine(ABC):
    """Integration and sensitivities of named models. Subclasses: :class:`~pyosc.engines.jax_engine.JaxEngine`."""

    name: str

    @abstractmethod
    def relax(self, model: str, params, phi0: np.ndarray, topology: Topology, nudge: Nudge | None = None,
              options: RelaxOptions = RelaxOptions()) -> Equilibrium:
        """Relax every state of ``phi0`` to a stable equilibrium; clamped (input) units stay fixed."""

    @abstractmethod
    def trajectory(self, model: str, params, phi0: np.ndarray, topology: Topology, times: np.ndarray,
                   nudge: Nudge | None = None, options: RelaxOptions = RelaxOptions()) -> np.ndarray:
        """Integrate the gradient flow and return the states at ``times``: shape ``(..., len(times), N)``."""

    @abstractmethod
    def ep_step(self, model: str, params, phi0: np.ndarray, topology: Topology, nudge: Nudge,
                options: RelaxOptions = RelaxOptions()) -> EPStep:
        """Free relaxation from ``phi0``, nudged relaxation from the free equilibrium, EP gradient."""

    @abstractmethod
    def integrate(self, model: str, params: Mapping[str, np.ndarray], y0: np.ndarray, times: np.ndarray, *,
                  inputs: np.ndarray | None = None, options: IntegrateOptions = IntegrateOptions()) -> np.ndarray:
        """Integrate a dynamical model (e.g. ``"optomech-averaged"``) from ``y0`` and return the states at ``times``.

        ``params``: name -> array (optionally with a leading ``runs`` axis); ``y0``:
        ``([runs,] samples, inits, N, state_size)``; ``inputs``: (samples, n_inputs) input phases
        driving the first units. Result: ``y0.shape[:-2] + (len(times), N, state_size)``.
        """

    @abstractmethod
    def final_state_loss_and_grad(self, model: str, params: Mapping[str, np.ndarray], y0: np.ndarray, t1: float,
                                  loss: FinalLoss, *, inputs: np.ndarray | None = None,
                                  options: IntegrateOptions = IntegrateOptions()) -> tuple[np.ndarray, dict]:
        """Loss on the output phases at time ``t1`` and its gradient with respect to every entry of ``params``,
        through the solve. Returns ``(loss, grads)``: loss a float (array ``(runs,)`` with a runs axis) and
        grads a dict shaped like ``params`` (without the model's fixed data tables)."""

    @abstractmethod
    def steady_state_loss_and_grad(self, model: str, params: Mapping[str, np.ndarray], y0: np.ndarray,
                                   loss: FinalLoss, *, inputs: np.ndarray | None = None,
                                   options: SteadyStateOptions = SteadyStateOptions()) -> tuple[np.ndarray, dict, np.ndarray]:
        """Loss on the output phases at the stable steady state reached from ``y0`` (an autonomous model such as
        ``"optomech-averaged"``), and its gradient by the implicit-function theorem: with f(y*, p) = 0,
        dL/dp = -lambda^T df/dp where J^T lambda = dL/dy at y* (one linear solve per state, no trajectory
        stored). A state that reaches no stable fixed point (it keeps drifting, e.g. unlocked oscillators)
        counts with the mean cost of a uniformly random output and contributes no gradient. Returns
        ``(loss, grads, converged)``, ``converged`` a bool array ``([runs,] samples, inits)``."""


_ENGINES = {"jax": ("pyosc.engines.jax_engine", "JaxEngine")}


def get_engine(name: str | Engine = "jax") -> Engine:
    """Engine by name (``"jax"``); an :class:`Engine` instance is returned unchanged."""
    if isinstance(name, Engine):
        return name
    if name not in _ENGINES:
        raise InvalidInputError(f"unknown engine {name!r}; available: {sorted(_ENGINES)}")
    import importlib

    module, cls = _ENGINES[name]
    return getattr(importlib.import_module(module), cls)()
