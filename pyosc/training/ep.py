"""Equilibrium propagation (Scellier & Bengio 2017) for the energy models of the engines (``"xy"``, ``"onn"``).

One iteration, for every independent run at once (:class:`EPTrainer`):
  1. draw a batch of initial states (inputs clamped) and targets (``sample``);
  2. free phase: relax E to a stable equilibrium phi_free;
  3. nudged phase: relax F = E + beta C from phi_free (C the log cost), optionally kicked by N(0, kick^2) on the
     free units first (see :mod:`pyosc.training.memory` for why);
  4. gradient g = (dE/dtheta|nudged - dE/dtheta|free) / beta, averaged over samples and initial states (per
     coupling pair), masked to the trainable entries, and an optimizer step.

The estimate of step 4 differs from the exact gradient by O(beta) (``estimator="one-sided"``). With
``estimator="richardson"`` a second nudged relaxation at 2 beta (from the free equilibrium) cancels that term:
g = 2 g(beta) - g(2 beta) = (4 dE/dtheta|beta - dE/dtheta|2beta - 3 dE/dtheta|free) / (2 beta), error O(beta^2)
(Richardson extrapolation). Symmetric nudging +-beta (Laborieux et al. 2021) removes the same term, but needs a
cost that stays finite under a negative nudge, which the log cost is not.

:func:`train_ep` trains XY networks on phase datasets as in arXiv 2402.08579: ``n_inits`` random initial phases
U(-pi, pi) per sample (fresh every iteration), the distance (Eq. 3 / n_out) recorded at the free equilibria before
the update, the accuracy evaluated every ``eval_every`` iterations from fresh random initial states.

:func:`implicit_gradient` gives the exact gradient dC/dtheta at free equilibria from the implicit-function theorem,
the reference the EP gradient approaches as beta -> 0.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from pyosc.data.datasets import PhaseDataset, accuracy, class_balanced_batch, decode_classes
from pyosc.engines import get_engine
from pyosc.engines.base import Engine, EPStep, Equilibrium, Nudge, RelaxOptions
from pyosc.errors import InvalidInputError, as_real_array
from pyosc.models import onn, xy
from pyosc.results import checkpoint_group, provenance
from pyosc.topology import Topology
from pyosc.training.loop import (
    Progress,
    Trainer,
    as_progress,
    check_count,
    evaluation_iterations,
    history_coords,
    run,
    seed_streams,
)
from pyosc.training.optimizers import make_optimizer, state_arrays, state_from_arrays, unit_rate
from pyosc.validation import SEED, check

ESTIMATORS = ("one-sided", "richardson")
"""EP gradient estimates: (dE/dtheta|beta - dE/dtheta|0) / beta, error O(beta); 2 g(beta) - g(2 beta), error O(beta^2)."""

# per energy model: parameter record, dE/dtheta at phases, and the velocity d phi / dt
_MODELS = {"xy": (xy.XYParams, xy.energy_param_grad, lambda phi, p: -xy.energy_grad_phi(phi, p)),
           "onn": (onn.ONNParams, onn.energy_param_grad, onn.velocity)}


def as_param_dict(params) -> dict[str, np.ndarray]:
    """Parameters as a dict of float64 arrays (from a mapping or a model's parameter NamedTuple)."""
    items = params._asdict() if hasattr(params, "_asdict") else params
    if not isinstance(items, Mapping):
        raise InvalidInputError(f"params must be a mapping of name -> array, got {type(params).__name__}")
    return {k: as_real_array(k, v, finite=False) for k, v in items.items()}


def _check_estimator(estimator) -> None:
    if estimator not in ESTIMATORS:
        raise InvalidInputError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")


def _model(model: str):
    if model not in _MODELS:
        raise InvalidInputError(f"model must be one of {sorted(_MODELS)} (energy models), got {model!r}")
    return _MODELS[model]


def ep_step(engine: Engine, model: str, params: Mapping, phi0: np.ndarray, topology: Topology, nudge: Nudge,
            options: RelaxOptions, *, kick: float = 0.0, rng: np.random.Generator | None = None,
            estimator: str = "one-sided") -> EPStep:
    """Free relaxation from ``phi0``, nudged relaxation from the free equilibrium (plus N(0, kick^2) on the free
    units when ``kick`` > 0, drawn from ``rng``), EP gradient per pair averaged over samples and initial states.
    ``estimator="richardson"``: also a relaxation nudged by 2 beta, gradient 2 g(beta) - g(2 beta) (see the module
    docstring); ``nudged`` is the equilibrium at beta."""
    _check_estimator(estimator)
    if not kick:
        step = engine.ep_step(model, params, phi0, topology, nudge, options)
        if estimator == "one-sided":
            return step
        twice = engine.ep_step(model, params, step.free.phi, topology, Nudge(2 * nudge.beta, nudge.targets), options)
        return EPStep(_extrapolated(step.gradient, twice.gradient), step.free, step.nudged)
    record, param_grad, _ = _model(model)
    params = as_param_dict(params)
    p = record(**{k: jnp.asarray(v) for k, v in params.items()})
    free = engine.relax(model, params, phi0, topology, options=options)
    g_free = param_grad(jnp.asarray(free.phi), p)

    def nudged_gradient(beta):
        start = free.phi + kick * rng.standard_normal(free.phi.shape) * (~topology.clamped)
        nudged = engine.relax(model, params, start, topology, Nudge(beta, nudge.targets), options)
        g_nudged = param_grad(jnp.asarray(nudged.phi), p)
        return {k: np.asarray((b - a) / beta) for k, a, b in zip(p._fields, g_free, g_nudged)}, nudged

    grad, nudged = nudged_gradient(nudge.beta)
    if estimator == "richardson":
        grad = _extrapolated(grad, nudged_gradient(2 * nudge.beta)[0])
    return EPStep(grad, free, nudged)


def _extrapolated(at_beta: Mapping, at_twice_beta: Mapping) -> dict:
    """Richardson extrapolation 2 g(beta) - g(2 beta) of two one-sided EP gradients (NumPy or JAX arrays)."""
    return {k: 2 * g - at_twice_beta[k] for k, g in at_beta.items()}


def implicit_gradient(model: str, params, topology: Topology, phi_free: np.ndarray, targets: np.ndarray
                      ) -> dict[str, np.ndarray]:
    """Exact dC/dtheta (C the log cost) at free equilibria ``phi_free`` (samples, inits, N) of one network,
    averaged over states, by the implicit-function theorem.

    With f the velocity on the free units and J = df/dphi there, dC/dtheta = -lambda^T df/dtheta where
    J^T lambda = dC/dphi (for a gradient flow J = -H, the Hessian). Through the full velocity field, so it stays
    exact when an ONN's H has even parts (where EP's energy formula is biased). Couplings per pair (both entries
    of W), as in the models' ``energy_param_grad``.
    """
    record, _, _ = _model(model)
    p = record(**{k: jnp.asarray(v) for k, v in as_param_dict(params).items()})
    free = tuple(int(i) for i in np.flatnonzero(~topology.clamped))
    phi = jnp.asarray(phi_free).reshape(-1, topology.n_units)
    tg = jnp.repeat(jnp.asarray(targets), phi_free.shape[1], axis=0)
    grad = {k: np.asarray(v) for k, v in _implicit_gradient(model, free, tuple(topology.output_units), p, phi,
                                                             tg)._asdict().items()}
    grad["W"] = grad["W"] + grad["W"].T
    return grad


@partial(jax.jit, static_argnums=(0, 1, 2))
def _implicit_gradient(model: str, free: tuple[int, ...], out: tuple[int, ...], p, phi, tg):
    """:func:`implicit_gradient` on flat states phi (B, N), targets tg (B, n_out): one compiled program."""
    _, _, velocity = _MODELS[model]
    free, out = np.asarray(free, dtype=int), np.asarray(out, dtype=int)
    dC = jnp.zeros_like(phi).at[:, out].set(xy.log_cost_grad(phi[:, out], tg))
    J = jax.vmap(jax.jacfwd(lambda f: velocity(f, p)))(phi)[:, free][:, :, free]
    lam = jnp.zeros_like(phi).at[:, free].set(jnp.linalg.solve(jnp.swapaxes(J, 1, 2), dC[:, free][..., None])[..., 0])
    return jax.grad(lambda q: -jnp.sum(velocity(phi, q) * lam) / phi.shape[0])(p)


class EPTrainer(Trainer):
    """EP on ``model`` (see the module docstring) with pluggable parts:

    ``sample(rng) -> (phi0, targets, batch)``: initial states ``([runs,] samples, inits, N)``, targets
    ``(samples, n_out)`` and whatever ``record`` needs; ``record(step, batch) -> {name: array ([runs,])}``: metrics
    of an iteration, stored per run and iteration; ``evaluate(params, rng) -> {name: array ([runs,])}``: metrics
    at the evaluation iterations. ``trainable`` maps parameter names to masks (broadcast against the gradient);
    other parameters stay fixed. ``snapshots``: iterations whose parameters are kept (``n_iterations``: final).
    ``schedule(iteration) -> factor`` multiplies the learning rate (None: constant). ``estimator``: the EP gradient
    estimate (:data:`ESTIMATORS`, see the module docstring).

    ``device_sample(key, data) -> (phi0, targets, batch)``, a JAX function of a random key and of the arrays
    ``sample_data``, replaces ``sample``: the key of iteration k is ``fold_in(key(seed), k)``, so the draws depend
    on (seed, k) alone. With it, ``scan`` > 1 compiles up to ``scan`` whole iterations (sampling, relaxations,
    update, ``record``, which must then use ``jax.numpy``) into one ``lax.scan`` per host call; the history is the
    same for every ``scan``. The compiled programs are cached: trainers of the same network, options, optimizer,
    ``device_sample`` and ``record`` reuse them (pass instances of frozen dataclasses with ``__call__``, which compare
    by value, as :func:`train_ep` does; two closures never compare equal).

    Where the engine offers its EP step as a program (:meth:`~pyosc.engines.base.EquilibriumEngine.ep_step_program`,
    the JAX engine) and there is no kick, an iteration is one compiled program: free and nudged relaxations,
    gradient, mask and optimizer update, with the parameters and the optimizer state kept on the device between
    iterations (:attr:`params` copies them out). Otherwise it calls :meth:`ep_step` and updates on the host.
    """

    def __init__(self, name: str, engine: Engine, model: str, topology: Topology, params: Mapping, *, beta: float,
                 relax: RelaxOptions, optimizer: str, learning_rate: float, n_iterations: int, evaluations: list[int],
                 seed: int, trainable: Mapping[str, np.ndarray], sample: Callable, record: Callable,
                 evaluate: Callable | None = None, kick: float = 0.0, snapshots: tuple[int, ...] = (),
                 schedule: Callable[[int], float] | None = None, device_sample: Callable | None = None,
                 sample_data=None, scan: int = 0, estimator: str = "one-sided"):
        _check_estimator(estimator)
        self.name, self.engine, self.model, self.topology = name, engine, model, topology
        self._params = as_param_dict(params)
        self.beta, self.relax, self.kick, self.estimator = beta, relax, kick, estimator
        self.opt = make_optimizer(optimizer, learning_rate)
        self.opt_state = self.opt.init(self._params)
        self.n_iterations, self.evaluations, self.snapshot_iterations = n_iterations, evaluations, snapshots
        self.rng, self.eval_rng = seed_streams(seed)
        self.trainable = trainable
        self.sample, self.record, self.evaluate_fn = sample, record, evaluate
        self.schedule = schedule
        self.records: dict[str, np.ndarray] = {}
        self.scores: dict[str, np.ndarray] = {}
        self.snapshots: list[dict[str, np.ndarray]] = []
        self.iteration = 0  # the iteration being trained (set by step)
        program = None if kick else engine.ep_step_program(model, self._params, topology, relax,
                                                           stacked=n_runs_of(self._params) is not None)
        self._iterate = None if program is None else _compiled_iteration(program, unit_rate(self.opt), beta,
                                                                                  estimator)
        self._masks = {k: jnp.asarray(v) for k, v in trainable.items()}
        self.device_sample, self.sample_data = device_sample, sample_data
        self.scan, self._key = check_count("scan", scan, 0), jax.random.key(seed)
        if (device_sample is not None or scan) and program is None:
            raise InvalidInputError(f"device sampling and scan need an engine that compiles the EP step (engine "
                                    f"{engine.name!r} does not) and no kick")
        if scan and (device_sample is None or schedule is not None):
            raise InvalidInputError("scan needs device_sample (the initial states are drawn on the device) and a "
                                    "constant learning rate")
        self._chunk = None if scan <= 1 else _compiled_chunk(program, unit_rate(self.opt), beta, estimator,
                                                                         device_sample, record)

    def _factor(self, iteration: int) -> float:
        return 1.0 if self.schedule is None else float(self.schedule(iteration))

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The current parameters as NumPy arrays."""
        return {k: np.asarray(v) for k, v in self._params.items()}

    def _store(self, table: dict, size: int, index: int, values: Mapping) -> None:
        for k, v in values.items():
            v = np.asarray(v)
            if k not in table:
                table[k] = np.zeros(v.shape + (size,), dtype=v.dtype)
            table[k][..., index] = v

    def step(self, iteration: int) -> dict[str, float]:
        self.iteration = iteration  # samplers may draw per epoch (see pyosc.experiments.mnist)
        if iteration in self.snapshot_iterations:
            self.snapshots.append(self.params)
        if self.device_sample is None:
            phi0, targets, batch = self.sample(self.rng)
        else:
            phi0, targets, batch = self.device_sample(jax.random.fold_in(self._key, iteration), self.sample_data)
        if self._iterate is None:
            step = ep_step(self.engine, self.model, self._params, phi0, self.topology, Nudge(self.beta, targets),
                           self.relax, kick=self.kick, rng=self.rng, estimator=self.estimator)
            grads = {k: g * self.trainable[k] if k in self.trainable else np.zeros_like(g)
                     for k, g in step.gradient.items()}
            self._params, self.opt_state = self.opt.update(self._params, grads, self.opt_state,
                                                           factor=self._factor(iteration))
        else:
            lead = np.shape(self._params["W"])[:-2]
            phi0 = as_real_array("phi0", phi0, shape=lead + (None, None, self.topology.n_units))
            targets = Nudge(self.beta, targets).targets
            if targets.shape != (phi0.shape[-3], self.topology.n_outputs):
                raise InvalidInputError(f"targets must have shape {(phi0.shape[-3], self.topology.n_outputs)}, "
                                        f"got {targets.shape}")
            state = jax.tree_util.tree_map(jnp.asarray, (self._params, self.opt_state))
            rate = self._factor(iteration) * self.opt.learning_rate
            self._params, self.opt_state, grads, free, nudged = self._iterate(*state, self._masks, phi0, targets,
                                                                              rate)
            as_numpy = lambda eq: Equilibrium(*(np.asarray(a) for a in eq))
            step = EPStep({k: np.asarray(v) for k, v in grads.items()}, as_numpy(free), as_numpy(nudged))
        metrics = self.record(step, batch)
        self._store(self.records, self.n_iterations, iteration, metrics)
        return {k: float(np.mean(v)) for k, v in metrics.items()}

    def advance(self, first: int, stop: int) -> tuple[int, dict[str, float]]:
        if self._chunk is None:
            return super().advance(first, stop)
        self.iteration = first
        if first in self.snapshot_iterations:
            self.snapshots.append(self.params)
        count = min([stop, first + self.scan] + [s for s in self.snapshot_iterations if s > first]) - first
        state = jax.tree_util.tree_map(jnp.asarray, (self._params, self.opt_state))
        self._params, self.opt_state, metrics = self._chunk(*state, self._masks, self.sample_data, self._key, first,
                                                            self.opt.learning_rate, count)
        metrics = {k: np.asarray(v) for k, v in metrics.items()}
        for i in range(count):
            self._store(self.records, self.n_iterations, first + i, {k: v[i] for k, v in metrics.items()})
        return first + count, {k: float(np.mean(v[-1])) for k, v in metrics.items()}

    def evaluate(self, index: int, iteration: int) -> dict[str, float]:
        scores = self.evaluate_fn(self.params, self.eval_rng)
        self._store(self.scores, len(self.evaluations), index, scores)
        return {k: float(np.mean(v)) for k, v in scores.items()}

    def parameters_finite(self) -> bool:
        return bool(_all_finite(self._params))

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        arrays = {f"param/{k}": v for k, v in self.params.items()}
        arrays.update({f"state/{k}": v for k, v in state_arrays(self.opt_state).items()})
        arrays.update({f"record/{k}": v for k, v in self.records.items()})
        arrays.update({f"score/{k}": v for k, v in self.scores.items()})
        for i, snap in enumerate(self.snapshots):
            arrays.update({f"snapshot{i}/{k}": v for k, v in snap.items()})
        meta = {"n_snapshots": len(self.snapshots), "opt_t": None if self.opt_state is None else int(self.opt_state[0]),
                "rng": self.rng.bit_generator.state, "eval_rng": self.eval_rng.bit_generator.state}
        return meta, arrays

    def restore(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        params = checkpoint_group(arrays, "param")
        if {k: v.shape for k, v in params.items()} != {k: np.shape(v) for k, v in self._params.items()}:
            raise InvalidInputError("the checkpoint does not match these parameters' names or shapes")
        self._params = params
        self.opt_state = state_from_arrays(self.opt_state, meta["opt_t"], checkpoint_group(arrays, "state"))
        self.records, self.scores = checkpoint_group(arrays, "record"), checkpoint_group(arrays, "score")
        self.snapshots = [checkpoint_group(arrays, f"snapshot{i}") for i in range(meta["n_snapshots"])]
        self.rng.bit_generator.state = meta["rng"]
        self.eval_rng.bit_generator.state = meta["eval_rng"]

    def snapshot_parameters(self) -> list[dict[str, np.ndarray]]:
        """The kept parameters, in the order of ``snapshots`` (the final ones included when asked for)."""
        return self.snapshots + ([self.params] if self.n_iterations in self.snapshot_iterations else [])


def _iteration(program: Callable, opt, beta: float, estimator: str) -> Callable:
    """``(params, opt_state, masks, phi0, targets, rate) -> (params, opt_state, gradient, free, nudged)``, one EP
    iteration as a JAX function from an engine's EP step ``program`` at nudging strength ``beta`` and the update of
    ``opt`` (a :func:`~pyosc.training.optimizers.unit_rate` optimizer) with learning rate ``rate``; ``masks``: the
    trainable entries per parameter name (other parameters stay fixed). ``rate`` is traced (a sweep over learning
    rates or a schedule compiles once); ``beta`` is a constant of the program. ``estimator``: one of
    :data:`ESTIMATORS` (``"richardson"``: a second EP step nudged by 2 beta starts from the free equilibria, whose
    relaxation then takes no more than a check)."""

    def iterate(params, opt_state, masks, phi0, targets, rate):
        grad, free, nudged = program(params, phi0, targets, beta)
        if estimator == "richardson":
            grad = _extrapolated(grad, program(params, free[0], targets, 2 * beta)[0])
        masked = {k: g * masks[k] if k in masks else jnp.zeros_like(g) for k, g in grad.items()}
        params, opt_state = opt.update(params, masked, opt_state, factor=rate)
        return params, opt_state, grad, free, nudged

    return iterate


@jax.jit
def _all_finite(tree) -> jnp.ndarray:
    """Whether every entry of the arrays of ``tree`` is finite (one compiled program per tree of shapes)."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree_util.tree_leaves(tree)]))


@lru_cache(maxsize=32)
def _compiled_iteration(program: Callable, opt, beta: float, estimator: str) -> Callable:
    """:func:`_iteration`, compiled (cached per program, optimizer, beta and estimator)."""
    return jax.jit(_iteration(program, opt, beta, estimator))


@lru_cache(maxsize=32)
def _compiled_chunk(program: Callable, opt, beta: float, estimator: str, device_sample: Callable, record: Callable
                    ) -> Callable:
    """``(params, opt_state, masks, data, key, first, rate, count) -> (params, opt_state, metrics)``: the
    iterations ``first .. first + count - 1`` (each drawing from its own key, as :meth:`EPTrainer.step` does)
    compiled into one ``lax.scan``; metrics stacked along a leading iteration axis."""
    iterate = _iteration(program, opt, beta, estimator)

    def chunk(params, opt_state, masks, data, key, first, rate, count):
        def body(carry, iteration):
            phi0, targets, batch = device_sample(jax.random.fold_in(key, iteration), data)
            params, opt_state, grad, free, nudged = iterate(*carry, masks, phi0, targets, rate)
            return (params, opt_state), record(EPStep(grad, Equilibrium(*free), Equilibrium(*nudged)), batch)

        (params, opt_state), metrics = jax.lax.scan(body, (params, opt_state), first + jnp.arange(count))
        return params, opt_state, metrics

    return jax.jit(chunk, static_argnums=7)


# --- XY networks on phase datasets -------------------------------------------------------------------------

@dataclass(frozen=True)
class EPConfig:
    """Settings of an EP training run on a phase dataset (angles in rad, times in units of the flow's time).

    ``batch_per_class=None`` uses the whole training set every iteration (XOR); an integer draws that many samples
    per class with replacement (the paper's digits batches: 30 -> 300). ``snapshots``: iterations at which the
    parameters are kept (before that iteration's update; ``n_iterations`` means the final parameters). With more
    than one output the history also holds the confusion matrices on the evaluation data at these snapshots.

    ``scan`` = 0: initial states drawn on the host (NumPy, from ``seed``), one compiled iteration per host call.
    ``scan`` = k >= 1 (full-batch training, ``batch_per_class=None``): initial states drawn on the device from
    (seed, iteration) and up to k iterations compiled into one program between host calls (progress, checkpoints,
    evaluations); every k >= 1 gives the same history (a different random stream from ``scan`` = 0).
    """

    beta: float = 0.1
    learning_rate: float = 0.1
    optimizer: str = "sgd"
    n_iterations: int = 1000
    n_inits: int = 1
    batch_per_class: int | None = None
    eval_every: int = 0
    snapshots: tuple[int, ...] = ()
    seed: int = 0
    relax: RelaxOptions = field(default_factory=RelaxOptions)
    scan: int = 0
    estimator: str = "one-sided"

    def __post_init__(self):
        Nudge(self.beta, np.zeros((1, 1)))  # validates beta
        _check_estimator(self.estimator)
        make_optimizer(self.optimizer, self.learning_rate)
        check_count("n_iterations", self.n_iterations)
        check_count("n_inits", self.n_inits)
        check_count("eval_every", self.eval_every, 0)
        check("seed", self.seed, SEED)
        check_count("scan", self.scan, 0)
        if self.scan and self.batch_per_class is not None:
            raise InvalidInputError("scan needs full-batch training (batch_per_class=None)")
        if self.batch_per_class is not None:
            check_count("batch_per_class", self.batch_per_class)
        if not isinstance(self.relax, RelaxOptions):
            raise InvalidInputError(f"relax must be a RelaxOptions, got {type(self.relax).__name__}")
        snapshots = tuple(sorted({check_count("snapshots", i, 0) for i in self.snapshots}))
        if any(i > self.n_iterations for i in snapshots):
            raise InvalidInputError(f"snapshots must lie in 0..n_iterations, got {self.snapshots}")
        object.__setattr__(self, "snapshots", snapshots)

    def to_dict(self) -> dict:
        return asdict(self)


def random_phases(rng: np.random.Generator, x: np.ndarray, n_inits: int, n_units: int, n_runs: int | None) -> np.ndarray:
    """Initial states U(-pi, pi) with the inputs ``x`` (samples, n_inputs) clamped in the first units.

    Shape ``([runs,] samples, n_inits, n_units)``.
    """
    lead = () if n_runs is None else (n_runs,)
    phi = rng.uniform(-np.pi, np.pi, lead + (x.shape[0], n_inits, n_units))
    phi[..., : x.shape[1]] = x[:, None, :]
    return phi


def check_dataset(data: PhaseDataset, topology: Topology, name: str) -> None:
    """Shapes match the topology and targets lie on the +-pi/2 encoding."""
    if data.x.ndim != 2 or data.x.shape[1] != topology.n_inputs:
        raise InvalidInputError(f"{name}.x must have shape (samples, {topology.n_inputs}) for {topology.name}, "
                                f"got {data.x.shape}")
    if data.x.shape[0] == 0:
        raise InvalidInputError(f"{name} holds no samples")
    if data.y.shape != (data.x.shape[0], topology.n_outputs):
        raise InvalidInputError(f"{name}.y must have shape ({data.x.shape[0]}, {topology.n_outputs}), got {data.y.shape}")
    if not np.all(np.isfinite(data.x)):
        raise InvalidInputError(f"{name}.x contains NaN or infinite phases")
    if not np.all(np.isclose(np.abs(data.y), np.pi / 2)):
        raise InvalidInputError(f"{name}.y must hold target phases +pi/2 or -pi/2 (the encoding), got values in "
                                f"[{np.nanmin(data.y):.3g}, {np.nanmax(data.y):.3g}]")


def n_runs_of(params: Mapping) -> int | None:
    """The length of the leading runs axis of XY/ONN parameters, None without one."""
    return params["W"].shape[0] if np.ndim(params["W"]) == 3 else None


def predict_phases(engine: Engine, params, topology: Topology, x: np.ndarray, rng: np.random.Generator,
                   options: RelaxOptions, n_inits: int = 1):
    """Free equilibria from random initial states: output phases ``([runs,] samples, inits, n_out)`` and convergence."""
    params = as_param_dict(params)
    phi0 = random_phases(rng, x, n_inits, topology.n_units, n_runs_of(params))
    eq = engine.relax("xy", params, phi0, topology, options=options)
    return eq.phi[..., topology.output_units], eq.converged


@dataclass(frozen=True)
class _FullBatch:
    """Device sampler of :func:`train_ep`: initial states U(-pi, pi) with the inputs ``data["x"]`` clamped, the
    targets, and the targets as the batch for :class:`_Distance`. A frozen dataclass (hashable by value), so that
    trainers of the same shapes share their compiled programs."""

    lead: tuple[int, ...]
    n_inits: int
    n_units: int

    def __call__(self, key, data):
        x, y = data["x"], data["y"]
        phi = jax.random.uniform(key, self.lead + (x.shape[0], self.n_inits, self.n_units), minval=-np.pi,
                                 maxval=np.pi)
        return phi.at[..., : x.shape[1]].set(x[:, None, :]), y, y


@dataclass(frozen=True)
class _Distance:
    """Record of :func:`train_ep` per iteration and run: distance of the free equilibria to the targets (mean over
    samples and inits) and the states that missed the tolerance (``jax.numpy``: also inside a compiled scan)."""

    outputs: tuple[int, ...]

    def __call__(self, step: EPStep, targets) -> dict:
        return _distance_record(step.free.phi, step.free.converged, step.nudged.converged, targets, self.outputs)


@partial(jax.jit, static_argnums=4)  # one program, also where the host calls it (not one per operation)
def _distance_record(phi, free_converged, nudged_converged, targets, outputs: tuple[int, ...]) -> dict:
    distance = jnp.mean(xy.distance(phi[..., list(outputs)], targets[:, None, :]), axis=(-2, -1))
    unconverged = jnp.sum(~free_converged, axis=(-2, -1)) + jnp.sum(~nudged_converged, axis=(-2, -1))
    return {"distance": jnp.atleast_1d(distance), "unconverged": jnp.atleast_1d(unconverged)}


def train_ep(topology: Topology, train: PhaseDataset, params, config: EPConfig = EPConfig(), *,
             test: PhaseDataset | None = None, engine: str | Engine | None = None, progress: bool | Progress = True,
             checkpoint: str | os.PathLike | None = None, checkpoint_seconds: float = 120.0) -> xr.Dataset:
    """Train an XY network by equilibrium propagation; returns the history as an ``xarray.Dataset``.

    ``params`` (``XYParams`` or a mapping W, h, psi) may carry a leading ``runs`` axis: all runs train in one
    vectorised call, each with its own random initial states. Couplings outside ``topology`` stay zero; input
    biases and input-input couplings never change. Checkpoints, resume and Ctrl-C: :func:`pyosc.training.loop.run`.
    """
    engine = get_engine(engine)
    if not isinstance(config, EPConfig):
        raise InvalidInputError(f"config must be an EPConfig, got {type(config).__name__}")
    check_dataset(train, topology, "train")
    if test is not None:
        check_dataset(test, topology, "test")
    params = as_param_dict(xy.validate_params(xy.XYParams(**as_param_dict(params)), topology.n_units))
    if np.any(params["W"][..., ~topology.coupling_mask] != 0):
        raise InvalidInputError(f"W has couplings on pairs that {topology.name} does not couple")
    runs = n_runs_of(params)
    eval_data = test if test is not None else train
    unit_mask = (~topology.clamped).astype(float)

    def sample(rng):
        idx = (np.arange(train.x.shape[0]) if config.batch_per_class is None
               else class_balanced_batch(train.labels, config.batch_per_class, rng))
        return random_phases(rng, train.x[idx], config.n_inits, topology.n_units, runs), train.y[idx], train.y[idx]

    def evaluate(p, rng):
        out, _ = predict_phases(engine, p, topology, eval_data.x, rng, config.relax)
        return {"accuracy": np.atleast_1d(accuracy(out, eval_data))}

    trainer = EPTrainer(f"EP {topology.name}", engine, "xy", topology, params, beta=config.beta, relax=config.relax,
                        optimizer=config.optimizer, learning_rate=config.learning_rate,
                        n_iterations=config.n_iterations,
                        evaluations=evaluation_iterations(config.n_iterations, config.eval_every), seed=config.seed,
                        trainable={"W": topology.trainable_coupling_mask.astype(float), "h": unit_mask,
                                   "psi": unit_mask},
                        sample=sample, record=_Distance(tuple(topology.output_units.tolist())), evaluate=evaluate,
                        snapshots=config.snapshots,
                        device_sample=_FullBatch(() if runs is None else (runs,), config.n_inits, topology.n_units)
                        if config.scan else None,
                        sample_data={"x": jnp.asarray(train.x), "y": jnp.asarray(train.y)} if config.scan else None,
                        scan=config.scan,
                        estimator=config.estimator)
    elapsed = run(trainer, {"topology": topology.name, **config.to_dict()}, checkpoint=checkpoint,
                  checkpoint_seconds=checkpoint_seconds,
                  progress=as_progress(progress, trainer.name, lambda m: {"distance": f"{m['distance']:.2e}"}))
    ds = xy_history(trainer, topology, config, runs, elapsed, train.name, eval_data.name)
    if ds.sizes.get("snapshot") and topology.n_outputs > 1:
        ds["confusion"] = snapshot_confusion(ds, eval_data, topology, engine=engine, options=config.relax,
                                             seed=config.seed)
    return ds


def with_run_axis(a, runs: int | None) -> np.ndarray:
    """Parameters of one network get a leading run axis of length 1."""
    return np.asarray(a) if runs else np.asarray(a)[None]


_XY_VARIABLES = {"W": (("unit", "unit_"), "couplings W_ij (per unit of the flow's time)", "1"),
                 "h": (("unit",), "bias amplitudes h_i (per unit of the flow's time)", "1"),
                 "psi": (("unit",), "bias phases psi_i", "rad")}


def unit_roles(topology: Topology) -> np.ndarray:
    """'input', 'hidden' or 'output' per unit."""
    n_hidden = topology.n_units - topology.n_inputs - topology.n_outputs
    return np.array(["input"] * topology.n_inputs + ["hidden"] * n_hidden + ["output"] * topology.n_outputs)


def xy_history(trainer: EPTrainer, topology: Topology, config: EPConfig, runs: int | None, elapsed: float,
               train_name: str, eval_name: str) -> xr.Dataset:
    """The history of :func:`train_ep` with dims, coordinates, units and the full configuration."""
    n, r = topology.n_units, runs or 1
    zeros = lambda dtype=float: np.zeros((r, config.n_iterations), dtype=dtype)
    distance = trainer.records.get("distance", zeros())
    unconverged = trainer.records.get("unconverged", zeros(np.int64))
    acc = trainer.scores.get("accuracy", np.zeros((r, len(trainer.evaluations))))
    data = {
        "distance": (("run", "iteration"), distance,
                     {"long_name": "mean distance 1/(2 n_out) sum_k [1 - cos(phi_k - tau_k)] at the free equilibria",
                      "units": "1"}),
        "unconverged": (("run", "iteration"), unconverged,
                        {"long_name": "states (free + nudged) that missed the steady-state tolerance", "units": "1"}),
        "accuracy": (("run", "evaluation"), acc, {"long_name": f"accuracy on {eval_name}", "units": "1"}),
        "role": (("unit",), unit_roles(topology), {"long_name": "role of the unit in the network"}),
    }
    for name, (dims, long_name, unit) in _XY_VARIABLES.items():
        data[name] = (("run",) + dims, with_run_axis(trainer.params[name], runs),
                      {"long_name": f"final {long_name}", "units": unit})
    snaps = trainer.snapshot_parameters()
    if snaps:
        for name, (dims, long_name, unit) in _XY_VARIABLES.items():
            stack = np.stack([with_run_axis(p[name], runs) for p in snaps], axis=1)
            data[f"{name}_snapshot"] = (("run", "snapshot") + dims, stack,
                                        {"long_name": f"{long_name} at the snapshot iteration", "units": unit})
    coords = history_coords(r, config.n_iterations, trainer.evaluations)
    coords.update(unit=("unit", np.arange(n), {"long_name": "unit index", "units": "1"}),
                  unit_=("unit_", np.arange(n), {"long_name": "unit index (second of a pair)", "units": "1"}))
    if snaps:
        coords["snapshot"] = ("snapshot", np.asarray(config.snapshots, dtype=np.int64),
                              {"long_name": "iteration whose parameters were kept (before its update)", "units": "1"})
    return xr.Dataset(data, coords=coords, attrs={
        "title": f"equilibrium propagation, XY model, {topology.name}", "model": "xy", "trainer": "ep",
        "topology": topology.name, "n_trainable": topology.n_trainable, "engine": trainer.engine.name,
        "train_data": train_name, "eval_data": eval_name, "wall_time_s": elapsed, "config": config.to_dict(),
        **provenance()})


# --- confusion matrices -------------------------------------------------------------------------------------

def confusion_matrix(true_labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[i, j] = samples of class i predicted as j."""
    true_labels, predicted = np.asarray(true_labels), np.asarray(predicted)
    if true_labels.shape != predicted.shape:
        raise InvalidInputError(f"true_labels and predicted differ in shape: {true_labels.shape} vs {predicted.shape}")
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (true_labels, predicted), 1)
    return counts


def xy_confusion(history: xr.Dataset, data: PhaseDataset, topology: Topology, snapshot: int | None = None,
                 run: int = 0, seed: int = 0, engine: str | Engine | None = None,
                 options: RelaxOptions | None = None) -> np.ndarray:
    """Confusion matrix of an XY history's parameters (final, or at ``snapshot`` iteration) on ``data``, from one
    random initial state per sample (``seed``), relaxed with ``options`` (default: ``RelaxOptions()``)."""
    sel = {"run": run} if snapshot is None else {"run": run, "snapshot": snapshot}
    suffix = "" if snapshot is None else "_snapshot"
    params = {n: history[n + suffix].sel(sel).values for n in _XY_VARIABLES}
    out, _ = predict_phases(get_engine(engine), params, topology, data.x, np.random.default_rng(seed),
                            options or RelaxOptions())
    return confusion_matrix(data.labels, decode_classes(out[:, 0, :]), topology.n_outputs)


def snapshot_confusion(history: xr.Dataset, data: PhaseDataset, topology: Topology, **kwargs) -> xr.DataArray:
    """Confusion matrices at every snapshot of every run (``kwargs`` as in :func:`xy_confusion`):
    dims ``(run, snapshot, true_class, predicted_class)``, counts of ``data``'s samples."""
    counts = [[xy_confusion(history, data, topology, snapshot=int(s), run=r, **kwargs)
               for s in history.snapshot.values] for r in range(history.sizes["run"])]
    classes = np.arange(topology.n_outputs)
    return xr.DataArray(np.asarray(counts, dtype=np.int64), dims=("run", "snapshot", "true_class", "predicted_class"),
                        coords={"snapshot": history.snapshot, "true_class": classes, "predicted_class": classes},
                        attrs={"long_name": f"confusion counts on {history.attrs.get('eval_data', 'the data')}",
                               "units": "1"})

