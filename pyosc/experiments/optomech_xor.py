"""XOR on self-oscillating optomechanical networks (arXiv 2604.11658), trained by Adam on adjoint gradients.

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

The defaults are the protocol of studies/results/optomech/README.md (locking cell, steady-state adjoint,
1500 iterations, restarts after 100 stalled iterations, at most 20), which solved 40 of 40 runs.
"""
from __future__ import annotations

import ast
import os
from dataclasses import asdict, dataclass, fields
from numbers import Integral, Real
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from pyosc.data import datasets
from pyosc.engines import get_engine
from pyosc.engines.base import Engine, FinalLoss, IntegrateOptions, SteadyStateOptions
from pyosc.errors import InvalidInputError, check_positive
from pyosc.experiments.options import check_fields, option
from pyosc.experiments.text import count, percent
from pyosc.models import optomech as om
from pyosc.results import provenance
from pyosc.training import loop
from pyosc.training.adjoint import GRADIENTS, raw_loss_and_grad
from pyosc.training.loop import (
    Progress,
    Trainer,
    as_progress,
    evaluation_iterations,
    history_coords,
    seed_streams,
)
from pyosc.training.optimizers import Adam, state_arrays, state_from_arrays
from pyosc.validation import COUNT, NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE, SEED, Interval

SIGNS = ("both", "negative", "positive")
MODELS = ("optomech-averaged", "optomech-phase")


@dataclass(frozen=True)
class Config:
    """Settings of the protocol (rates and times in units of Omega_m, the mechanical frequency)."""

    model: str = option("optomech-averaged", "network model", choices=MODELS)
    cell: str = option("locking", "optomechanical cell preset (pyosc.models.optomech.CELLS)",
                       choices=tuple(sorted(om.CELLS)))
    gradient: str = option("steady-state", "through the dynamics to t1, or implicit at the steady state",
                           choices=GRADIENTS)
    n_runs: int = option(10, "independent runs trained together", allowed=COUNT)
    samples: int = option(4, "4 clean XOR samples or 20 noisy ones (5 copies of each)", choices=(4, 20))
    train_noise: float = option(0.3, "input-phase noise std of the 20 samples (rad)", allowed=NON_NEGATIVE)
    n_units: int = option(5, "cells: 2 inputs, hidden, 1 output", allowed=Interval(Integral, 3, None))
    sign: str = option("both", "coupling sign: fixed by the geometry, or both", choices=SIGNS)
    k_max: float = option(5e-3, "coupling bound |K| / (m Omega_m^2)", allowed=POSITIVE)
    f_max: float = option(2e-2, "bias drive bound (units of Omega_m^2 / G)", allowed=POSITIVE)
    f_in: float = option(2e-2, "input drive strength", allowed=POSITIVE)
    t1: float = option(2e4, "read-out time (units of 1/Omega_m)", allowed=POSITIVE)
    loss: str = option("log", "cost of the output phase", choices=("distance", "log"))
    n_inits: int = option(5, "random initial states per sample and iteration", allowed=COUNT)
    learning_rate: float = option(0.03, "Adam learning rate on the raw parameters", allowed=POSITIVE)
    n_iterations: int = option(1500, "Adam iterations", allowed=COUNT)
    patience: int = option(100, "iterations without improvement before a restart", allowed=COUNT)
    stall_tol: float = option(0.05, "relative improvement of the best loss that resets the patience",
                              allowed=Interval(Real, 0, 1, closed="left"))
    max_restarts: int = option(20, "restarts per run at most", allowed=NON_NEGATIVE_INT)
    eval_every: int = option(10, "iterations between accuracy evaluations (0: only at the end)",
                             allowed=NON_NEGATIVE_INT)
    n_eval_inits: int = option(10, "random initial states per sample of an evaluation", allowed=COUNT)
    rtol: float = option(1e-6, "integration tolerance (rtol = atol)", allowed=POSITIVE)
    max_steps: int = option(16384, "step budget of one integration", allowed=COUNT)
    seed: int = option(0, "random seed", allowed=SEED)

    def __post_init__(self):
        check_fields(self)

    def integrate_options(self) -> IntegrateOptions:
        return IntegrateOptions(rtol=self.rtol, atol=self.rtol, max_steps=self.max_steps)

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
    config: Config


def make_network(config: Config, cell: om.Cell | None = None) -> Network:
    """The cell's limit cycle and amplitude table (``cell`` defaults to the config's preset)."""
    cell = om.CELLS[config.cell] if cell is None else cell
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
    ys = engine.integrate(net.config.model, p, y0, np.array([net.config.t1]), inputs=x, options=net.config.integrate_options())
    state = ys[..., -1, -1, :]
    if net.config.model == "optomech-phase":
        return state[..., 0]
    return np.arctan2(state[..., 1], state[..., 0])



def noisy_xor(n_copies: int, sigma: float, rng: np.random.Generator) -> datasets.PhaseDataset:
    """``n_copies`` of each XOR pattern with Gaussian input-phase noise of std ``sigma`` (rad)."""
    base = datasets.xor()
    x = np.repeat(base.x, n_copies, axis=0)
    x = x + sigma * rng.standard_normal(x.shape)
    return datasets.PhaseDataset(x, np.repeat(base.y, n_copies, axis=0), np.repeat(base.labels, n_copies),
                        f"xor-noisy-{4 * n_copies}-sigma{sigma:g}")


def training_set(config: Config) -> datasets.PhaseDataset:
    """The clean XOR patterns, or 5 noisy copies of each (input noise ``train_noise``, seed ``[seed, 2]``)."""
    if config.samples == 4:
        return datasets.xor()
    return noisy_xor(5, config.train_noise, np.random.default_rng([config.seed, 2]))


class AdjointXORTrainer(Trainer):
    """The protocol of the module docstring, one Adam step of every run per iteration."""

    def __init__(self, train: datasets.PhaseDataset, config: Config, net: Network, engine: Engine):
        self.name = f"adjoint XOR {config.model}"
        self.train, self.config, self.net, self.engine = train, config, net, engine
        self.n_iterations = config.n_iterations
        self.evaluations = evaluation_iterations(config.n_iterations, config.eval_every) or [config.n_iterations]
        self.rng, self.eval_rng = seed_streams(config.seed)
        r = config.n_runs
        self.raw = init_raw(self.rng, config.n_units, r)
        self.opt = Adam(config.learning_rate)
        self.opt_state = self.opt.init(self.raw)
        self.loss_spec = FinalLoss(train.y, outputs=(config.n_units - 1,), kind=config.loss)
        self.floor = 0.0 if config.loss == "distance" else -np.log(2.0)  # the loss at perfect alignment
        self.build = jax.jit(lambda raw: model_params(raw, net))
        self.arrays = {"loss": np.zeros((r, config.n_iterations)),
                       "restarted": np.zeros((r, config.n_iterations), dtype=bool),
                       "unsteady": np.zeros((r, config.n_iterations), dtype=np.int64),
                       "accuracy": np.zeros((r, len(self.evaluations))), "best": np.full(r, np.inf),
                       "since": np.zeros(r, dtype=int), "n_restarts": np.zeros(r, dtype=int),
                       "solved": np.zeros(r, dtype=bool), "solved_first_attempt": np.zeros(r, dtype=bool)}

    def evaluate(self, index: int, iteration: int) -> dict[str, float]:
        a = self.arrays
        clean = datasets.xor()
        phases = output_phases(self.engine, self.raw, self.net, clean.x, self.eval_rng, self.config.n_eval_inits)
        a["accuracy"][:, index] = datasets.accuracy(phases[..., None], clean)
        a["solved"] |= a["accuracy"][:, index] == 1.0
        a["solved_first_attempt"] |= a["solved"] & (a["n_restarts"] == 0)
        return {"accuracy": float(a["accuracy"][:, index].mean())}

    def step(self, iteration: int) -> dict[str, float]:
        cfg, a = self.config, self.arrays
        y0 = initial_states(self.rng, self.net, cfg.n_runs, self.train.x.shape[0], cfg.n_inits)
        value, g, ok = raw_loss_and_grad(self.engine, cfg.model, self.build, self.raw, y0, self.loss_spec,
                                         inputs=self.train.x, gradient=cfg.gradient, t1=cfg.t1,
                                         integrate=cfg.integrate_options(), steady=SteadyStateOptions())
        if ok is not None:
            a["unsteady"][:, iteration] = np.sum(~ok, axis=(-2, -1))
        g = g._replace(w=(g.w + np.swapaxes(g.w, -1, -2)) / 2)  # keep w symmetric
        new_raw, self.opt_state = self.opt.update(self.raw, g, self.opt_state)
        keep = a["solved"].reshape(-1, 1)  # solved runs stop training (early stopping at 100 % accuracy)
        self.raw = RawParams(*(np.where(keep[..., None] if old.ndim == 3 else keep, old, new)
                               for old, new in zip(self.raw, new_raw)))
        a["loss"][:, iteration] = value
        improved = value - self.floor < (a["best"] - self.floor) * (1 - cfg.stall_tol)
        a["best"] = np.where(improved, value, np.minimum(a["best"], value))
        a["since"] = np.where(improved, 0, a["since"] + 1)
        stall = (a["since"] >= cfg.patience) & ~a["solved"] & (a["n_restarts"] < cfg.max_restarts)
        if np.any(stall):
            self._restart(stall)
            a["restarted"][:, iteration] = stall
        return {"loss": float(value.mean()), "restarts": int(a["n_restarts"].sum())}

    def _restart(self, stall: np.ndarray) -> None:
        """Fresh parameters and zeroed Adam moments for the stalled runs (the step counter is shared)."""
        fresh = init_raw(self.rng, self.config.n_units, self.config.n_runs)
        t, m, v = self.opt_state
        sel = lambda new, old: np.where(stall.reshape((-1,) + (1,) * (old.ndim - 1)), new, old)
        self.raw = RawParams(*(sel(a, b) for a, b in zip(fresh, self.raw)))
        self.opt_state = (t, RawParams(*(sel(np.zeros_like(a), a) for a in m)),
                          RawParams(*(sel(np.zeros_like(a), a) for a in v)))
        a = self.arrays
        a["n_restarts"] += stall
        a["best"][stall], a["since"][stall] = np.inf, 0

    def parameters_finite(self) -> bool:
        return all(np.all(np.isfinite(r)) for r in self.raw)

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        arrays = {f"raw/{k}": v for k, v in self.raw._asdict().items()}
        arrays.update({f"state/{k}": v for k, v in state_arrays(self.opt_state).items()})
        arrays.update({f"history/{k}": v for k, v in self.arrays.items()})
        return {"opt_t": int(self.opt_state[0]), "rng": self.rng.bit_generator.state,
                "eval_rng": self.eval_rng.bit_generator.state}, arrays

    def restore(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        group = lambda name: {k[len(name) + 1:]: v for k, v in arrays.items() if k.startswith(name + "/")}
        raw = group("raw")
        if {k: v.shape for k, v in raw.items()} != {k: v.shape for k, v in self.raw._asdict().items()}:
            raise InvalidInputError("the checkpoint does not match these parameters' shapes")
        self.raw = RawParams(**raw)
        self.opt_state = state_from_arrays(self.opt_state, meta["opt_t"], group("state"))
        self.arrays = group("history")
        self.rng.bit_generator.state = meta["rng"]
        self.eval_rng.bit_generator.state = meta["eval_rng"]


def train_adjoint(train: datasets.PhaseDataset, config: Config = Config(), *, engine: str | Engine | None = None,
                  progress: bool | Progress = True, checkpoint: str | os.PathLike | None = None,
                  checkpoint_seconds: float = 120.0) -> xr.Dataset:
    """Train ``config.n_runs`` independent networks (vectorised) by Adam on adjoint gradients.

    Returns the history: ``loss`` (run, iteration), ``restarted`` (run, iteration), ``accuracy`` (run, evaluation)
    on the clean XOR inputs, final K, f, psi, and the raw parameters. Checkpoints, resume and Ctrl-C:
    :func:`pyosc.training.loop.run`.
    """
    engine = get_engine(engine)
    if not isinstance(config, Config):
        raise InvalidInputError(f"config must be an optomech_xor.Config, got {type(config).__name__}")
    if train.x.ndim != 2 or train.x.shape[1] != 2 or train.y.shape != (train.x.shape[0], 1):
        raise InvalidInputError(f"train must have x (samples, 2) and y (samples, 1), got {train.x.shape}, {train.y.shape}")
    net = make_network(config)
    trainer = AdjointXORTrainer(train, config, net, engine)
    elapsed = loop.run(trainer, {"train": train.name, **config.to_dict()}, checkpoint=checkpoint,
                  checkpoint_seconds=checkpoint_seconds,
                  progress=as_progress(progress, trainer.name,
                                       lambda m: {"loss": f"{m['loss']:.3f}", "restarts": m["restarts"]}))
    return history(trainer, elapsed)


def history(trainer: AdjointXORTrainer, elapsed: float) -> xr.Dataset:
    """The training history of :func:`train_adjoint` as an ``xarray.Dataset``."""
    cfg, net, a = trainer.config, trainer.net, trainer.arrays
    K, f, psi = (np.asarray(x) for x in physical(RawParams(*(jnp.asarray(r) for r in trainer.raw)), net))
    roles = ("input", "input") + ("hidden",) * (cfg.n_units - 3) + ("output",)
    one = lambda long_name: {"long_name": long_name, "units": "1"}
    coords = history_coords(cfg.n_runs, cfg.n_iterations, trainer.evaluations)
    unit = {"long_name": "cell index", "units": "1"}
    coords.update(unit=("unit", np.arange(cfg.n_units), unit), unit_=("unit_", np.arange(cfg.n_units), unit))
    return xr.Dataset(
        {
            "loss": (("run", "iteration"), a["loss"],
                     one(f"training loss ({cfg.loss}) " + ("at t1" if cfg.gradient == "dynamics"
                                                          else "at the steady states"))),
            "restarted": (("run", "iteration"), a["restarted"], one("parameters re-drawn after this iteration")),
            "unsteady": (("run", "iteration"), a["unsteady"],
                         one("training states without a stable steady state (gradient='steady-state')")),
            "accuracy": (("run", "evaluation"), a["accuracy"], one("accuracy on clean XOR, random initial states")),
            "solved": (("run",), a["solved"], one("100 % accuracy reached at an evaluation (training then stops)")),
            "solved_first_attempt": (("run",), a["solved_first_attempt"],
                                     one("100 % accuracy reached before any restart")),
            "n_restarts": (("run",), a["n_restarts"], one("restarts used")),
            "K": (("run", "unit", "unit_"), K, one("final couplings K_jk / (m Omega_m^2)")),
            "f": (("run", "unit"), f, one("final bias drive amplitudes (units of Omega_m^2 / G)")),
            "psi": (("run", "unit"), psi, {"long_name": "final bias drive phases", "units": "rad"}),
            "w": (("run", "unit", "unit_"), trainer.raw.w, one("raw coupling parameters")),
            "v": (("run", "unit"), trainer.raw.v, one("raw drive-amplitude parameters")),
            "role": (("unit",), np.array(roles), {"long_name": "role of the cell in the network"}),
        },
        coords=coords,
        attrs={"title": f"adjoint training, {cfg.model}, XOR", "model": cfg.model, "trainer": "adjoint",
               "task": "optomech-xor", "engine": trainer.engine.name, "train_data": trainer.train.name,
               "wall_time_s": elapsed, "cell": {k: float(v) for k, v in om.CELLS[cfg.cell]._asdict().items()}, "A0": net.cycle.amplitude,
               "gamma": net.cycle.gamma, "zeta": net.cycle.zeta, "config": cfg.to_dict(), **provenance()},
    )


def run(config: Config, *, checkpoint: str | os.PathLike | None = None, checkpoint_seconds: float = 120.0,
        progress: bool | Progress = False, engine=None) -> xr.Dataset:
    """Train on :func:`training_set`; the history of :func:`train_adjoint`."""
    return train_adjoint(training_set(config), config, engine=engine, progress=progress, checkpoint=checkpoint,
                         checkpoint_seconds=checkpoint_seconds)


def summary(ds: xr.Dataset) -> str:
    """What the CLI prints after training."""
    c = ds.attrs["config"]
    final = ds.accuracy.isel(evaluation=-1).values
    return "\n".join([
        (f"optomech XOR ({c['model']}, {c['cell']} cell, {c['gradient']} gradient, {ds.attrs['train_data']}), "
         f"{count(c['n_runs'], 'run')} x {count(c['n_iterations'], 'iteration')} in {ds.attrs['wall_time_s']:.0f} s"),
        (f"runs that reached 100 % accuracy: {percent(np.mean(ds.solved.values))} (without restarts: "
         f"{percent(np.mean(ds.solved_first_attempt.values))}); {count(int(ds.n_restarts.sum()), 'restart')} used"),
        f"final accuracy: mean {percent(final.mean())}, min {percent(final.min())}"])


def config_from_history(ds: xr.Dataset) -> Config:
    """The :class:`Config` stored in ``ds.attrs["config"]`` (keys unknown to this version are ignored)."""
    names = {f.name for f in fields(Config)}
    return Config(**{k: v for k, v in ds.attrs["config"].items() if k in names})


def raw_from_history(ds: xr.Dataset) -> RawParams:
    """The trained raw parameters stored by :func:`train_adjoint`."""
    return RawParams(ds.w.values, ds.v.values, ds.psi.values)


def cell_from_history(ds: xr.Dataset) -> om.Cell:
    """The optomechanical cell a history was trained with (``ds.attrs["cell"]``, a mapping; histories written before
    it was stored as JSON hold a Python dict literal)."""
    cell = ds.attrs["cell"]
    return om.Cell(**(cell if isinstance(cell, dict) else ast.literal_eval(cell)))


def robustness(ds: xr.Dataset, sigma: float, n_trials: int = 25, *, seed: int = 0, cell: om.Cell | None = None,
               engine: str | Engine | None = None) -> np.ndarray:
    """Per run: success fraction over ``n_trials`` (noisy input, random initial state) trials per XOR pattern,
    input phases perturbed by N(0, sigma^2)."""
    check_positive("sigma", sigma, allow_zero=True)
    net = make_network(config_from_history(ds), cell or cell_from_history(ds))
    rng = np.random.default_rng(seed)
    data = noisy_xor(n_trials, sigma, rng)
    ph = output_phases(get_engine(engine), raw_from_history(ds), net, data.x, rng, 1)
    return datasets.accuracy(ph[..., None], data)


def phase_map(ds: xr.Dataset, n_grid: int = 41, n_inits: int = 4, *, seed: int = 0,
              cell: om.Cell | None = None, engine: str | Engine | None = None) -> xr.DataArray:
    """Output phase at t1 over the input plane (x0, x1) in [-pi, pi]^2, for every run and ``n_inits`` random
    initial states: DataArray (run, x0, x1, init)."""
    net = make_network(config_from_history(ds), cell or cell_from_history(ds))
    g = np.linspace(-np.pi, np.pi, int(n_grid))
    x = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
    ph = output_phases(get_engine(engine), raw_from_history(ds), net, x, np.random.default_rng(seed), n_inits)
    ph = ph.reshape(ph.shape[0], g.size, g.size, n_inits)
    return xr.DataArray(ph, dims=("run", "x0", "x1", "init"), coords={"run": ds.run.values, "x0": g, "x1": g},
                        name="output_phase", attrs={"units": "rad", "long_name": "output phase in the drive frame"})
