"""Gradient training through the dynamics (adjoint sensitivities) of optomechanical networks: XOR.

RECONSTRUCTED protocol (arXiv 2604.11658 gives only: 5 nodes all-to-all, XOR, autodiff + Adam,
4 vs 20 samples, restarts because training stalls; see research/optomech_onn.md A.5):

* cells: one optomechanical cell type (:class:`~pyosc.models.optomech.Cell`), network model
  ``"optomech-averaged"`` (default) or ``"optomech-phase"``; the drive frame rotates at the
  free-running frequency (``frame`` = dOmega(A0)), so an uncoupled cell's phase stands still;
* roles: units 0, 1 are inputs, driven by resonant forces of fixed strength ``f_in`` at the input
  phases (False = -pi/2, True = +pi/2); the last unit is the output, read as arg c relative to the
  drive frame at time ``t1``; the others are hidden;
* trainable: the couplings K_jk = k_max tanh(w_jk) (``sign="both"``) or K_jk = s k_max sigmoid(w_jk)
  with the geometric sign s = -1 (``"negative"``, face-to-face parallel plates) or +1 (``"positive"``);
  bias drives f_j = f_max sigmoid(v_j) and phases psi_j on the non-input units. The bounds keep the
  coupling weak (|K| << 1, averaged model valid) and are the physical voltage limits;
* loss: mean over samples and random initial states (amplitude A0, phases U(-pi, pi), re-drawn every
  iteration) of the distance (1 - cos(phi_out - target)) / 2 at ``t1`` (or Wang et al.'s
  -log(1 + cos), ``loss="log"``); Adam on (w, v, psi);
* gradient: ``"dynamics"`` differentiates the state at ``t1`` through the solver (checkpointed reverse mode);
  ``"steady-state"`` takes the loss at the stable steady state reached from each initial state
  (pseudo-transient continuation) and its implicit-function gradient, which is what the state at t1
  tends to once the slowest mode (rates down to ~1e-4 here) has decayed, at a fraction of the cost;
  a state that reaches no stable fixed point counts as a random output, without gradient. Accuracy
  is always read from the integrated dynamics at ``t1``;
* restarts: a run whose best loss (above its floor at perfect alignment, 0 or -log 2) has not
  improved by a factor (1 - ``stall_tol``) for ``patience`` iterations, and that is not yet solved, gets fresh random parameters and zeroed Adam moments (the
  Adam step counter is shared by the runs), at most ``max_restarts`` times;
* accuracy: fraction of (clean sample, random initial state) trials with sign(sin phi_out) = sign(target),
  evaluated every ``eval_every`` iterations with fresh initial states; a run that reaches 100 % is
  solved and stops training (early stopping), so its parameters are the ones that reached it.
"""
from __future__ import annotations

import ast
import time
from dataclasses import asdict, dataclass, field, fields
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from pyosc.datasets import PhaseDataset, xor
from pyosc.engines.base import (
    Engine,
    FinalLoss,
    IntegrateOptions,
    SteadyStateOptions,
    get_engine,
)
from pyosc.errors import InvalidInputError, check_positive
from pyosc.models import optomech as om
from pyosc.results import provenance
from pyosc.training.optimizers import Adam

SIGNS = ("both", "negative", "positive")
MODELS = ("optomech-averaged", "optomech-phase")
GRADIENTS = ("dynamics", "steady-state")


@dataclass(frozen=True)
class AdjointConfig:
    """Settings of adjoint (gradient-through-dynamics) training; rates and times in units of Omega_m."""

    model: str = "optomech-averaged"
    n_units: int = 5
    sign: str = "both"
    k_max: float = 5e-3
    f_max: float = 2e-2
    f_in: float = 2e-2
    t1: float = 5e3
    loss: str = "log"
    n_inits: int = 5
    learning_rate: float = 0.03
    n_iterations: int = 300
    patience: int = 40
    stall_tol: float = 0.05
    max_restarts: int = 10
    eval_every: int = 10
    n_eval_inits: int = 10
    seed: int = 0
    gradient: str = "dynamics"
    integrate: IntegrateOptions = field(default_factory=lambda: IntegrateOptions(rtol=1e-6, atol=1e-6, max_steps=1024))
    steady: SteadyStateOptions = field(default_factory=SteadyStateOptions)

    def __post_init__(self):
        if self.model not in MODELS:
            raise InvalidInputError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.gradient not in GRADIENTS:
            raise InvalidInputError(f"gradient must be one of {GRADIENTS}, got {self.gradient!r}")
        if self.sign not in SIGNS:
            raise InvalidInputError(f"sign must be one of {SIGNS}, got {self.sign!r}")
        if int(self.n_units) < 3:
            raise InvalidInputError(f"n_units must be >= 3 (2 inputs, 1 output), got {self.n_units!r}")
        for name in ("k_max", "f_max", "f_in", "t1", "learning_rate"):
            check_positive(name, getattr(self, name))
        check_positive("stall_tol", self.stall_tol, allow_zero=True)
        for name in ("n_inits", "n_iterations", "patience", "n_eval_inits"):
            if int(getattr(self, name)) < 1:
                raise InvalidInputError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.max_restarts < 0 or self.eval_every < 0:
            raise InvalidInputError("max_restarts and eval_every must be >= 0")

    def to_dict(self) -> dict:
        return asdict(self)


class RawParams(NamedTuple):
    """Unconstrained trainable arrays: ``w`` ([runs,] N, N) symmetric, zero diagonal; ``v``, ``psi`` ([runs,] N)."""

    w: np.ndarray
    v: np.ndarray
    psi: np.ndarray


def init_raw(rng: np.random.Generator, n_units: int, n_runs: int) -> RawParams:
    """w ~ N(0, 1) symmetrised (zero diagonal), v ~ N(0, 1), psi ~ U(-pi, pi); zero on input units' biases."""
    a = rng.standard_normal((n_runs, n_units, n_units))
    w = (a + np.swapaxes(a, -1, -2)) / np.sqrt(2) * (1 - np.eye(n_units))
    v = rng.standard_normal((n_runs, n_units))
    psi = rng.uniform(-np.pi, np.pi, (n_runs, n_units))
    v[:, :2], psi[:, :2] = 0.0, 0.0
    return RawParams(w, v, psi)


class Network(NamedTuple):
    """Fixed physics of the trained network: the cell's limit cycle and table, and the config."""

    cycle: om.LimitCycle
    table: om.AmplitudeTable
    config: AdjointConfig


def make_network(config: AdjointConfig, cell: om.Cell = om.REFERENCE_CELL) -> Network:
    cycle = om.limit_cycle(cell)
    if cycle.amplitude <= 0:
        raise InvalidInputError(f"cell {cell} is below the self-oscillation threshold: no limit cycle to train")
    s_max = (2.5 * cycle.amplitude) ** 2
    return Network(cycle, om.amplitude_table(cell, s_max=s_max), config)


def physical(raw: RawParams, net: Network):
    """(K, f, psi) as jnp arrays from the raw parameters (bounded, geometric sign, no input biases)."""
    cfg = net.config
    n = raw.w.shape[-1]
    off = 1.0 - jnp.eye(n)
    if cfg.sign == "both":
        K = cfg.k_max * jnp.tanh(raw.w) * off
    else:
        K = (1.0 if cfg.sign == "positive" else -1.0) * cfg.k_max * jax.nn.sigmoid(raw.w) * off
    free = jnp.arange(n) >= 2
    f = jnp.where(free, cfg.f_max * jax.nn.sigmoid(raw.v), 0.0)
    return K, f, jnp.where(free, raw.psi, 0.0)


def model_params(raw: RawParams, net: Network) -> dict:
    """Engine parameters (dict of arrays with a leading runs axis) of the configured model."""
    K, f, psi = physical(raw, net)
    runs = raw.w.shape[0]
    scalar = lambda x: jnp.full((runs,), x)
    cyc, cfg = net.cycle, net.config
    if cfg.model == "optomech-averaged":
        tab = {k: jnp.broadcast_to(jnp.asarray(v), (runs,) + np.shape(v)) for k, v in net.table._asdict().items()}
        return {**tab, "K": K, "f": f, "psi": psi, "f_in": scalar(cfg.f_in), "frame": scalar(cyc.shift)}
    b = f / (2 * cyc.amplitude)
    b_in = cfg.f_in / (2 * cyc.amplitude)
    return {"omega": scalar(0.0), "J": cyc.zeta * K / 2, "C": K / 2, "h": cyc.zeta * b, "b": b, "psi": psi,
            "h_in": scalar(cyc.zeta * b_in), "b_in": scalar(b_in)}


def initial_states(rng: np.random.Generator, net: Network, n_runs: int, n_samples: int, n_inits: int) -> np.ndarray:
    """Random initial states: amplitude A0 and phase U(-pi, pi) per unit, shape (runs, samples, inits, N, d)."""
    n = net.config.n_units
    phi = rng.uniform(-np.pi, np.pi, (n_runs, n_samples, n_inits, n))
    if net.config.model == "optomech-phase":
        return phi[..., None]
    return net.cycle.amplitude * np.stack([np.cos(phi), np.sin(phi)], axis=-1)


def output_phases(engine: Engine, raw: RawParams, net: Network, x: np.ndarray, rng: np.random.Generator,
                  n_inits: int) -> np.ndarray:
    """Output phases at t1 from random initial states: shape (runs, samples, inits)."""
    p = {k: np.asarray(v) for k, v in model_params(raw, net).items()}
    y0 = initial_states(rng, net, raw.w.shape[0], x.shape[0], n_inits)
    ys = engine.integrate(net.config.model, p, y0, np.array([net.config.t1]), inputs=x, options=net.config.integrate)
    state = ys[..., -1, -1, :]
    if net.config.model == "optomech-phase":
        return state[..., 0]
    return np.arctan2(state[..., 1], state[..., 0])


def accuracy(phases: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per run: fraction of (sample, init) trials with sign(sin phi) = sign(target); phases (runs, samples, inits)."""
    return np.mean((np.sin(phases) > 0) == (targets[:, 0] > 0)[None, :, None], axis=(-2, -1))


def noisy_xor(n_copies: int, sigma: float, rng: np.random.Generator) -> PhaseDataset:
    """``n_copies`` of each XOR pattern with Gaussian input-phase noise of std ``sigma`` (rad)."""
    base = xor()
    x = np.repeat(base.x, n_copies, axis=0)
    x = x + sigma * rng.standard_normal(x.shape)
    return PhaseDataset(x, np.repeat(base.y, n_copies, axis=0), np.repeat(base.labels, n_copies),
                        f"xor-noisy-{4 * n_copies}-sigma{sigma:g}")


def train_adjoint(train: PhaseDataset, config: AdjointConfig = AdjointConfig(), *, n_runs: int = 1,
                  cell: om.Cell = om.REFERENCE_CELL, engine: str | Engine = "jax", progress: bool = True) -> xr.Dataset:
    """Train ``n_runs`` independent networks (vectorised) by Adam on gradients through the dynamics.

    Returns the history: ``loss`` (run, iteration), ``restarted`` (run, iteration), ``accuracy``
    (run, checkpoint) on the clean XOR inputs, final K, f, psi, and the raw parameters.
    """
    engine = get_engine(engine)
    if train.x.ndim != 2 or train.x.shape[1] != 2 or train.y.shape != (train.x.shape[0], 1):
        raise InvalidInputError(f"train must have x (samples, 2) and y (samples, 1), got {train.x.shape}, {train.y.shape}")
    if int(n_runs) < 1:
        raise InvalidInputError(f"n_runs must be >= 1, got {n_runs!r}")
    cfg = config
    net = make_network(cfg, cell)
    rng = np.random.default_rng(cfg.seed)
    eval_rng = np.random.default_rng([cfg.seed, 1])
    raw = init_raw(rng, cfg.n_units, n_runs)
    opt = Adam(cfg.learning_rate)
    state = opt.init(raw)
    spec = FinalLoss(train.y, outputs=(cfg.n_units - 1,), kind=cfg.loss)
    floor = 0.0 if cfg.loss == "distance" else -np.log(2.0)  # the loss at perfect alignment
    clean = xor()
    build = jax.jit(lambda r: model_params(r, net))
    checkpoints = list(range(0, cfg.n_iterations + 1, cfg.eval_every)) if cfg.eval_every else []
    if not checkpoints or checkpoints[-1] != cfg.n_iterations:
        checkpoints.append(cfg.n_iterations)
    loss = np.zeros((n_runs, cfg.n_iterations))
    restarted = np.zeros((n_runs, cfg.n_iterations), dtype=bool)
    unsteady = np.zeros((n_runs, cfg.n_iterations), dtype=np.int64)
    acc = np.zeros((n_runs, len(checkpoints)))
    best = np.full(n_runs, np.inf)
    since = np.zeros(n_runs, dtype=int)
    n_restarts = np.zeros(n_runs, dtype=int)
    solved = np.zeros(n_runs, dtype=bool)
    first_attempt_solved = np.zeros(n_runs, dtype=bool)

    def evaluate(j):
        ph = output_phases(engine, raw, net, clean.x, eval_rng, cfg.n_eval_inits)
        acc[:, j] = accuracy(ph, clean.y)
        return acc[:, j]

    start = time.perf_counter()
    bar = tqdm(range(cfg.n_iterations), disable=not progress, desc=f"adjoint XOR {cfg.model}", unit="it")
    for it in bar:
        if it in checkpoints:
            a = evaluate(checkpoints.index(it))
            solved |= a == 1.0
            first_attempt_solved |= solved & (n_restarts == 0)
        p, vjp = jax.vjp(build, RawParams(*(jnp.asarray(r) for r in raw)))
        y0 = initial_states(rng, net, n_runs, train.x.shape[0], cfg.n_inits)
        p_np = {k: np.asarray(v) for k, v in p.items()}
        if cfg.gradient == "dynamics":
            value, grads = engine.final_state_loss_and_grad(cfg.model, p_np, y0, cfg.t1, spec, inputs=train.x,
                                                            options=cfg.integrate)
        else:
            value, grads, ok = engine.steady_state_loss_and_grad(cfg.model, p_np, y0, spec, inputs=train.x,
                                                                 options=cfg.steady)
            unsteady[:, it] = np.sum(~ok, axis=(-2, -1))
        (g_raw,) = vjp({k: jnp.asarray(grads[k]) if k in grads else jnp.zeros_like(v) for k, v in p.items()})
        g = RawParams(*(np.asarray(a) for a in g_raw))
        g = g._replace(w=(g.w + np.swapaxes(g.w, -1, -2)) / 2)  # keep w symmetric
        new_raw, state = opt.update(raw, g, state)
        keep = solved.reshape(-1, 1)  # solved runs stop training (early stopping at 100 % accuracy)
        raw = RawParams(*(np.where(keep[..., None] if old.ndim == 3 else keep, old, new)
                          for old, new in zip(raw, new_raw)))
        loss[:, it] = value
        improved = value - floor < (best - floor) * (1 - cfg.stall_tol)
        best = np.where(improved, value, np.minimum(best, value))
        since = np.where(improved, 0, since + 1)
        stall = (since >= cfg.patience) & ~solved & (n_restarts < cfg.max_restarts)
        if np.any(stall):
            fresh = init_raw(rng, cfg.n_units, n_runs)
            t, m, v = state

            def sel(new, old, stall=stall):
                return np.where(stall.reshape((-1,) + (1,) * (old.ndim - 1)), new, old)

            raw = RawParams(*(sel(a, b) for a, b in zip(fresh, raw)))
            state = (t, tuple(sel(np.zeros_like(a), a) for a in m), tuple(sel(np.zeros_like(a), a) for a in v))
            restarted[:, it] = stall
            n_restarts += stall
            best[stall], since[stall] = np.inf, 0
        if progress:
            bar.set_postfix(loss=f"{value.mean():.3f}", restarts=int(n_restarts.sum()))
    final_acc = evaluate(len(checkpoints) - 1)
    solved |= final_acc == 1.0
    first_attempt_solved |= solved & (n_restarts == 0)
    elapsed = time.perf_counter() - start
    K, f, psi = (np.asarray(a) for a in physical(RawParams(*(jnp.asarray(r) for r in raw)), net))
    units = ("input", "input") + ("hidden",) * (cfg.n_units - 3) + ("output",)
    return xr.Dataset(
        {
            "loss": (("run", "iteration"), loss,
                     {"long_name": f"training loss ({cfg.loss}) " + ("at t1" if cfg.gradient == "dynamics"
                                                                     else "at the steady states"), "units": "1"}),
            "restarted": (("run", "iteration"), restarted, {"long_name": "parameters re-drawn after this iteration"}),
            "unsteady": (("run", "iteration"), unsteady,
                         {"long_name": "training states without a stable steady state (gradient='steady-state')"}),
            "accuracy": (("run", "checkpoint"), acc, {"long_name": "accuracy on clean XOR, random initial states",
                                                      "units": "1"}),
            "solved": (("run",), solved, {"long_name": "100 % accuracy reached at a checkpoint (training then stops)"}),
            "solved_first_attempt": (("run",), first_attempt_solved,
                                     {"long_name": "100 % accuracy reached before any restart"}),
            "n_restarts": (("run",), n_restarts),
            "K": (("run", "unit", "unit_"), K, {"long_name": "final couplings K_jk / (m Omega_m^2)", "units": "1"}),
            "f": (("run", "unit"), f, {"long_name": "final bias drive amplitudes", "units": "1"}),
            "psi": (("run", "unit"), psi, {"long_name": "final bias drive phases", "units": "rad"}),
            "w": (("run", "unit", "unit_"), raw.w, {"long_name": "raw coupling parameters"}),
            "v": (("run", "unit"), raw.v, {"long_name": "raw drive-amplitude parameters"}),
            "role": (("unit",), np.array(units)),
        },
        coords={"run": np.arange(n_runs), "iteration": np.arange(cfg.n_iterations),
                "checkpoint": ("checkpoint", np.asarray(checkpoints, dtype=np.int64),
                               {"long_name": "iteration at which accuracy was evaluated (before its update)"}),
                "unit": np.arange(cfg.n_units), "unit_": np.arange(cfg.n_units)},
        attrs={"title": f"adjoint training, {cfg.model}, XOR", "model": cfg.model, "trainer": "adjoint",
               "engine": engine.name, "train_data": train.name, "wall_time_s": elapsed,
               "cell": str(dict(cell._asdict())), "A0": net.cycle.amplitude, "gamma": net.cycle.gamma,
               "zeta": net.cycle.zeta, "config": config.to_dict(), **provenance()},
    )


def config_from_history(ds: xr.Dataset) -> AdjointConfig:
    """The :class:`AdjointConfig` stored in ``ds.attrs["config"]`` (keys unknown to this version are ignored)."""
    stored = dict(ds.attrs["config"])
    nested = {}
    for name, cls in (("integrate", IntegrateOptions), ("steady", SteadyStateOptions)):
        known = {f.name for f in fields(cls)}
        nested[name] = cls(**{k: v for k, v in stored.pop(name, {}).items() if k in known})
    names = {f.name for f in fields(AdjointConfig)}
    return AdjointConfig(**{k: v for k, v in stored.items() if k in names}, **nested)


def raw_from_history(ds: xr.Dataset) -> RawParams:
    """The trained raw parameters stored by :func:`train_adjoint`."""
    return RawParams(ds.w.values, ds.v.values, ds.psi.values)


def cell_from_history(ds: xr.Dataset) -> om.Cell:
    """The optomechanical cell a history was trained with (``ds.attrs["cell"]``)."""
    return om.Cell(**ast.literal_eval(ds.attrs["cell"]))


def robustness(ds: xr.Dataset, sigma: float, n_trials: int = 25, *, seed: int = 0, cell: om.Cell | None = None,
               engine: str | Engine = "jax") -> np.ndarray:
    """Per run: success fraction over ``n_trials`` (noisy input, random initial state) trials per XOR pattern,
    input phases perturbed by N(0, sigma^2)."""
    check_positive("sigma", sigma, allow_zero=True)
    cfg = config_from_history(ds)
    net = make_network(cfg, cell or cell_from_history(ds))
    rng = np.random.default_rng(seed)
    data = noisy_xor(n_trials, sigma, rng)
    ph = output_phases(get_engine(engine), raw_from_history(ds), net, data.x, rng, 1)
    return accuracy(ph, data.y)


def phase_map(ds: xr.Dataset, n_grid: int = 41, n_inits: int = 4, *, seed: int = 0,
              cell: om.Cell | None = None, engine: str | Engine = "jax") -> xr.DataArray:
    """Output phase at t1 over the input plane (x0, x1) in [-pi, pi]^2, for every run and ``n_inits`` random
    initial states: DataArray (run, x0, x1, init)."""
    cfg = config_from_history(ds)
    net = make_network(cfg, cell or cell_from_history(ds))
    g = np.linspace(-np.pi, np.pi, int(n_grid))
    x = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
    ph = output_phases(get_engine(engine), raw_from_history(ds), net, x, np.random.default_rng(seed), n_inits)
    ph = ph.reshape(ph.shape[0], g.size, g.size, n_inits)
    return xr.DataArray(ph, dims=("run", "x0", "x1", "init"), coords={"run": ds.run.values, "x0": g, "x1": g},
                        name="output_phase", attrs={"units": "rad", "long_name": "output phase in the drive frame"})
