"""Equilibrium propagation (Scellier & Bengio 2017) for XY networks, as in arXiv 2402.08579.

One iteration, for every independent run at once:
  1. draw ``n_inits`` random initial phases U(-pi, pi) per sample (fresh every iteration), inputs clamped;
  2. free phase: relax E to a stable equilibrium phi_free;
  3. nudged phase: relax F = E + beta C from phi_free (C the log cost);
  4. gradient g = (dE/dtheta|nudged - dE/dtheta|free) / beta, averaged over samples and initial
     states (per coupling pair), masked to the trainable parameters, and an optimizer step.
The distance (Eq. 3 / n_out) is recorded at the free equilibria before the update; the accuracy is
evaluated every ``eval_every`` iterations from fresh random initial states.

:func:`implicit_gradient` gives the exact gradient dC/dtheta at a free equilibrium from the
implicit-function theorem, the reference the EP gradient approaches as beta -> 0.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from pyosc.analysis import snapshot_confusion
from pyosc.datasets import PhaseDataset, class_balanced_batch, decode_classes
from pyosc.engines.base import Engine, Nudge, RelaxOptions, get_engine
from pyosc.errors import InvalidInputError
from pyosc.models import xy
from pyosc.results import (
    checkpoint_group,
    provenance,
    read_checkpoint,
    write_checkpoint,
)
from pyosc.topology import Topology
from pyosc.training.optimizers import make_optimizer, state_arrays, state_from_arrays


@dataclass(frozen=True)
class EPConfig:
    """Settings of an EP training run (all angles in radians, times in units of the flow's time).

    ``batch_per_class=None`` uses the whole training set every iteration (XOR); an integer draws
    that many samples per class with replacement (the paper's digits batches: 30 -> 300).
    ``snapshots``: iterations at which the parameters are kept (before that iteration's update;
    ``n_iterations`` means the final parameters). With more than one output the history also holds the
    confusion matrices on the evaluation data at these snapshots (variable ``confusion``).
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

    def __post_init__(self):
        Nudge(self.beta, np.zeros((1, 1)))  # validates beta
        make_optimizer(self.optimizer, self.learning_rate)
        for name in ("n_iterations", "n_inits"):
            if int(getattr(self, name)) < 1:
                raise InvalidInputError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.batch_per_class is not None and self.batch_per_class < 1:
            raise InvalidInputError(f"batch_per_class must be >= 1 or None, got {self.batch_per_class!r}")
        if self.eval_every < 0:
            raise InvalidInputError(f"eval_every must be >= 0, got {self.eval_every!r}")
        object.__setattr__(self, "snapshots", tuple(sorted({int(i) for i in self.snapshots})))
        if any(not 0 <= i <= self.n_iterations for i in self.snapshots):
            raise InvalidInputError(f"snapshots must lie in 0..n_iterations, got {self.snapshots}")

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
    if data.y.shape != (data.x.shape[0], topology.n_outputs):
        raise InvalidInputError(f"{name}.y must have shape ({data.x.shape[0]}, {topology.n_outputs}), got {data.y.shape}")
    if not np.all(np.isfinite(data.x)):
        raise InvalidInputError(f"{name}.x contains NaN or infinite phases")
    if not np.all(np.isclose(np.abs(data.y), np.pi / 2)):
        raise InvalidInputError(f"{name}.y must hold target phases +pi/2 or -pi/2 (the encoding), got values in "
                                f"[{np.nanmin(data.y):.3g}, {np.nanmax(data.y):.3g}]")


def predict_phases(engine: Engine, params: xy.XYParams, topology: Topology, x: np.ndarray,
                   rng: np.random.Generator, options: RelaxOptions, n_inits: int = 1):
    """Free equilibria from random initial states: output phases ``([runs,] samples, inits, n_out)`` and convergence."""
    runs = params.W.shape[0] if np.ndim(params.W) == 3 else None
    eq = engine.relax("xy", params, random_phases(rng, x, n_inits, topology.n_units, runs), topology, options=options)
    return eq.phi[..., topology.output_units], eq.converged


def accuracy(output_phases: np.ndarray, data: PhaseDataset) -> np.ndarray:
    """Fraction correct per run: argmax sin(phi) over outputs, or sign of sin(phi) for one output."""
    if output_phases.shape[-1] == 1:
        pred = (np.sin(output_phases[..., 0]) > 0).astype(int)
        truth = (data.y[:, 0] > 0).astype(int)[:, None]
    else:
        pred = decode_classes(output_phases)
        truth = data.labels[:, None]
    return np.mean(pred == truth, axis=(-2, -1))


def train_ep(topology: Topology, train: PhaseDataset, params: xy.XYParams, config: EPConfig = EPConfig(), *,
             test: PhaseDataset | None = None, engine: str | Engine = "jax", progress: bool = True,
             checkpoint: str | os.PathLike | None = None, checkpoint_seconds: float = 120.0) -> xr.Dataset:
    """Train by equilibrium propagation; returns the history as an ``xarray.Dataset``.

    ``params`` may carry a leading ``runs`` axis: all runs train in one vectorised call, each with
    its own random initial states. Couplings outside ``topology`` stay zero; input biases and
    input-input couplings never change. With ``checkpoint`` (an ``.npz`` path) the full training state
    (parameters, optimizer, random generators, history) is saved there every ``checkpoint_seconds``, and a
    call with the same arguments resumes from it: the result equals an uninterrupted run.
    """
    engine = get_engine(engine)
    check_dataset(train, topology, "train")
    if test is not None:
        check_dataset(test, topology, "test")
    params = xy.validate_params(params, topology.n_units)
    if np.any(params.W[..., ~topology.coupling_mask] != 0):
        raise InvalidInputError(f"W has couplings on pairs that {topology.name} does not couple")
    runs = params.W.shape[0] if params.W.ndim == 3 else None
    n_runs = runs or 1
    rng = np.random.default_rng(config.seed)
    opt = make_optimizer(config.optimizer, config.learning_rate)
    opt_state = opt.init(params)
    w_mask = topology.trainable_coupling_mask.astype(float)
    unit_mask = (~topology.clamped).astype(float)
    eval_data = test if test is not None else train
    checkpoints = list(range(0, config.n_iterations + 1, config.eval_every)) if config.eval_every else []
    if checkpoints and checkpoints[-1] != config.n_iterations:
        checkpoints.append(config.n_iterations)

    distance = np.zeros((n_runs, config.n_iterations))
    unconverged = np.zeros((n_runs, config.n_iterations), dtype=np.int64)
    acc = np.zeros((n_runs, len(checkpoints)))
    eval_rng = np.random.default_rng([config.seed, 1])
    snapshots = []

    def evaluate(j):
        out, _ = predict_phases(engine, params, topology, eval_data.x, eval_rng, config.relax)
        acc[:, j] = np.atleast_1d(accuracy(out, eval_data))

    first, elapsed0 = 0, 0.0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists():
        first, elapsed0, params, opt_state, snapshots = _load_state(ckpt, config, params, opt_state, rng, eval_rng,
                                                                    distance, unconverged, acc)
    start, last_save = time.perf_counter() - elapsed0, time.perf_counter()
    bar = tqdm(range(first, config.n_iterations), disable=not progress, desc=f"EP {topology.name}", unit="it",
               initial=first, total=config.n_iterations)
    for it in bar:
        if checkpoints and it in checkpoints:
            evaluate(checkpoints.index(it))
        if it in config.snapshots:
            snapshots.append(params)
        idx = (np.arange(train.x.shape[0]) if config.batch_per_class is None
               else class_balanced_batch(train.labels, config.batch_per_class, rng))
        phi0 = random_phases(rng, train.x[idx], config.n_inits, topology.n_units, runs)
        step = engine.ep_step("xy", params, phi0, topology, Nudge(config.beta, train.y[idx]), config.relax)
        out = step.free.phi[..., topology.output_units]
        distance[:, it] = np.atleast_1d(np.mean(np.asarray(xy.distance(out, train.y[idx][:, None, :])), axis=(-2, -1)))
        unconverged[:, it] = np.atleast_1d(np.sum(~step.free.converged, axis=(-2, -1))
                                           + np.sum(~step.nudged.converged, axis=(-2, -1)))
        g = step.gradient
        grads = xy.XYParams(g.W * w_mask, g.h * unit_mask, g.psi * unit_mask)
        params, opt_state = opt.update(params, grads, opt_state)
        if not all(np.all(np.isfinite(a)) for a in params):
            raise InvalidInputError(f"parameters became NaN or infinite at iteration {it}; lower the learning rate")
        if progress and it % 10 == 0:
            bar.set_postfix(distance=f"{distance[:, it].mean():.2e}")
        if ckpt is not None and time.perf_counter() - last_save >= checkpoint_seconds:
            _save_state(ckpt, it + 1, time.perf_counter() - start, config, params, opt_state, rng, eval_rng,
                        distance, unconverged, acc, snapshots)
            last_save = time.perf_counter()
    if checkpoints and checkpoints[-1] == config.n_iterations:
        evaluate(len(checkpoints) - 1)
    if config.n_iterations in config.snapshots:
        snapshots.append(params)
    elapsed = time.perf_counter() - start
    ds = history_dataset(topology, config, params, distance, unconverged, checkpoints, acc, runs, elapsed,
                         engine.name, train.name, eval_data.name)
    if snapshots:
        for name, dims, unit in (("W", ("unit", "unit_"), "1/time"), ("h", ("unit",), "1/time"), ("psi", ("unit",), "rad")):
            stack = np.stack([_with_run_axis(getattr(p, name), runs) for p in snapshots], axis=1)
            ds[f"{name}_snapshot"] = (("run", "snapshot") + dims, stack, {"long_name": f"{name} at the snapshot iteration",
                                                                          "units": unit})
        ds = ds.assign_coords(snapshot=("snapshot", np.asarray(config.snapshots, dtype=np.int64)))
        if topology.n_outputs > 1:
            ds["confusion"] = snapshot_confusion(ds, eval_data, topology, engine=engine, options=config.relax,
                                                 seed=config.seed)
    return ds


def _save_state(path: Path, next_it: int, elapsed: float, config: EPConfig, params, opt_state, rng, eval_rng,
                distance, unconverged, acc, snapshots) -> None:
    """Atomically write everything :func:`train_ep` needs to go on from iteration ``next_it``."""
    arrays = {f"param/{k}": np.asarray(v) for k, v in params._asdict().items()}
    arrays.update(distance=distance, unconverged=unconverged, accuracy=acc)
    arrays.update({f"state/{k}": v for k, v in state_arrays(opt_state).items()})
    for i, snap in enumerate(snapshots):
        arrays.update({f"snapshot{i}/{k}": np.asarray(v) for k, v in snap._asdict().items()})
    meta = {"next_iteration": next_it, "config": config.to_dict(), "n_snapshots": len(snapshots),
            "opt_t": None if opt_state is None else int(opt_state[0]),
            "rng": rng.bit_generator.state, "eval_rng": eval_rng.bit_generator.state}
    write_checkpoint(path, meta, arrays, progress=(next_it, config.n_iterations), elapsed=elapsed)


def _load_state(path: Path, config: EPConfig, params, opt_state, rng, eval_rng, distance, unconverged, acc):
    """Restore a :func:`_save_state` file in place (generators, history arrays); returns the rest."""
    meta, arrays = read_checkpoint(path)
    as_json = lambda c: json.loads(json.dumps(c.to_dict(), default=str))
    if _with_defaults(meta["config"], as_json(EPConfig())) != as_json(config):
        raise InvalidInputError(f"checkpoint {path} was written with another EP configuration; remove it to restart")
    group = lambda name: xy.XYParams(**checkpoint_group(arrays, name))
    loaded = group("param")
    if any(a.shape != np.shape(b) for a, b in zip(loaded, params)) or arrays["distance"].shape != distance.shape:
        raise InvalidInputError(f"checkpoint {path} does not match these parameters' shapes")
    distance[...], unconverged[...], acc[...] = arrays["distance"], arrays["unconverged"], arrays["accuracy"]
    rng.bit_generator.state = meta["rng"]
    eval_rng.bit_generator.state = meta["eval_rng"]
    return (meta["next_iteration"], meta["elapsed"], loaded,
            state_from_arrays(opt_state, meta["opt_t"], checkpoint_group(arrays, "state")),
            [group(f"snapshot{i}") for i in range(meta["n_snapshots"])])


def _with_defaults(stored: dict, defaults: dict) -> dict:
    """``stored`` with the settings added to the configuration since it was written set to their defaults."""
    out = dict(stored)
    for key, value in defaults.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = _with_defaults(out[key], value)
    return out


def _with_run_axis(a, runs: int | None) -> np.ndarray:
    """Parameters of one network get a leading run axis of length 1."""
    return np.asarray(a) if runs else np.asarray(a)[None]


def history_dataset(topology, config, params, distance, unconverged, checkpoints, acc, runs, elapsed,
                    engine_name, train_name, eval_name) -> xr.Dataset:
    """Assemble the training history with dims, coordinates, units and the full configuration."""
    n = topology.n_units
    ds = xr.Dataset(
        {
            "distance": (("run", "iteration"), distance,
                         {"long_name": "mean distance 1/(2 n_out) sum_k [1 - cos(phi_k - tau_k)] at the free equilibria",
                          "units": "1"}),
            "unconverged": (("run", "iteration"), unconverged,
                            {"long_name": "states (free + nudged) that missed the steady-state tolerance", "units": "1"}),
            "accuracy": (("run", "checkpoint"), acc, {"long_name": f"accuracy on {eval_name}", "units": "1"}),
            "W": (("run", "unit", "unit_"), _with_run_axis(params.W, runs), {"long_name": "final couplings", "units": "1/time"}),
            "h": (("run", "unit"), _with_run_axis(params.h, runs), {"long_name": "final bias amplitudes", "units": "1/time"}),
            "psi": (("run", "unit"), _with_run_axis(params.psi, runs), {"long_name": "final bias phases", "units": "rad"}),
            "role": (("unit",), np.array(["input"] * topology.n_inputs
                                         + ["hidden"] * (n - topology.n_inputs - topology.n_outputs)
                                         + ["output"] * topology.n_outputs)),
        },
        coords={"run": np.arange(distance.shape[0]), "iteration": np.arange(distance.shape[1]),
                "checkpoint": ("checkpoint", np.asarray(checkpoints, dtype=np.int64),
                               {"long_name": "iteration at which accuracy was evaluated (before its update)"}),
                "unit": np.arange(n), "unit_": np.arange(n)},
        attrs={"title": f"equilibrium propagation, XY model, {topology.name}", "model": "xy", "trainer": "ep",
               "topology": topology.name, "n_trainable": topology.n_trainable, "engine": engine_name,
               "train_data": train_name, "eval_data": eval_name, "wall_time_s": elapsed,
               "config": config.to_dict(), **provenance()},
    )
    return ds


def implicit_gradient(params: xy.XYParams, topology: Topology, phi_free: np.ndarray, targets: np.ndarray) -> xy.XYParams:
    """Exact dC/dtheta at free equilibria (implicit-function theorem), averaged over states.

    ``phi_free``: (samples, inits, N) stable free equilibria of one network; ``targets``: (samples, n_out).
    dC/dtheta = -(d^2E/dtheta dphi) H^-1 dC/dphi with H the Hessian on the free units. Couplings are
    per pair (both entries of W), matching :func:`pyosc.models.xy.energy_param_grad`.
    """
    p = xy.XYParams(*(jnp.asarray(a) for a in params))
    free, out = np.flatnonzero(~topology.clamped), topology.output_units
    phi = jnp.asarray(phi_free).reshape(-1, topology.n_units)
    tg = jnp.repeat(jnp.asarray(targets), phi_free.shape[1], axis=0)
    dC = jnp.zeros_like(phi).at[:, out].set(xy.log_cost_grad(phi[:, out], tg))
    H = xy.energy_hessian(phi, p)[:, free][:, :, free]
    lam = jnp.zeros_like(phi).at[:, free].set(jnp.linalg.solve(H, dC[:, free][..., None])[..., 0])
    entry = jax.grad(lambda q: -jnp.sum(xy.energy_grad_phi(phi, q) * lam) / phi.shape[0])(p)
    return xy.XYParams(np.asarray(entry.W + entry.W.T), np.asarray(entry.h), np.asarray(entry.psi))
