"""Equilibrium propagation for phase-deviation (ONN) networks, and auto-associative memory training.

EP (Scellier & Bengio 2017) on :mod:`pyosc.models.onn`: free relaxation to phi0, nudged relaxation of
F = E + beta C (C the log cost -sum log(1 + cos(phi_k - tau_k)) on the visible units) to phi_beta,
gradient (dE/dtheta(phi_beta) - dE/dtheta(phi0)) / beta with dE/dW_kj = -U(phi_k - phi_j) per pair.
For an odd coupling function this approaches the exact gradient dC/dtheta as beta -> 0
(:func:`implicit_gradient` gives it by the implicit-function theorem through the full velocity
field, so it stays exact when H has even parts, where EP's energy formula is biased).

Memory training (B.4 of shared/research/optomech_onn.md). Each iteration draws corrupted copies of
every pattern, relaxes them freely, then nudges all pixels toward the clean pattern. RECONSTRUCTED
choices, and why:
  * With an odd H every binary state (phases 0/pi about the reference) is an exact equilibrium, and
    any smooth cost that depends on phi_k - tau_k is stationary at exact alignment and at exact
    anti-alignment. At a wrongly retrieved pixel the log cost is singular (anti-aligned), so the
    nudged relaxation starts from the free equilibrium plus a tiny Gaussian kick (``kick`` rad,
    physically the oscillators' phase noise). The log barrier then pushes a wrong pixel off pi
    by about sqrt(2 beta / k) (k its stiffness), so the EP signal (1 - cos)/beta ~ 1/k stays finite
    as beta -> 0 and does not depend on the kick's sign.
  * The initial couplings are the Hebbian ones (``init="hebbian"``, the default: EP as a local
    correction of Hebbian learning) or random (std ``init_scale`` / sqrt(N + 1), ``init="random"``;
    in our trials on 5 letters it did not learn within 150 iterations: the free states collapse onto
    one attractor). Only the couplings W are trained (no drives, detunings, SHIL or H).
  * Plain SGD, not Adam: correctly retrieved samples give an exactly vanishing signal up to the kick
    and the solver tolerance, and Adam would blow that noise up to full-size steps.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import numpy as np
import xarray as xr

from pyosc.data import patterns
from pyosc.engines import get_engine
from pyosc.engines.base import Engine, Nudge, RelaxOptions
from pyosc.errors import InvalidInputError, as_real_array, check_positive
from pyosc.models import onn
from pyosc.results import provenance
from pyosc.training.ep import EPTrainer, as_param_dict
from pyosc.training.hebbian import hebbian_couplings
from pyosc.training.loop import Progress, as_progress, check_count, history_coords, run, seed_streams
from pyosc.training.optimizers import make_optimizer
from pyosc.validation import SEED, check


@dataclass(frozen=True)
class MemoryEPConfig:
    """EP training of an auto-associative memory (angles in rad, times in the phase model's units).

    Each iteration uses ``n_trials`` corrupted copies (``corruption`` fraction of pixels flipped,
    phase noise ``noise``) of every pattern; ``kick`` is the perturbation that starts the nudged phase;
    ``shil`` the second-harmonic injection on every pixel (fixed, not trained).
    """

    beta: float = 0.1
    learning_rate: float = 0.005
    optimizer: str = "sgd"
    n_iterations: int = 150
    n_trials: int = 4
    corruption: float = 0.1
    noise: float = 0.1
    kick: float = 1e-3
    shil: float = 0.3
    init: str = "hebbian"
    init_scale: float = 1.0
    eval_trials: int = 50
    seed: int = 0
    relax: RelaxOptions = field(default_factory=RelaxOptions)

    def __post_init__(self):
        Nudge(self.beta, np.zeros((1, 1)))
        make_optimizer(self.optimizer, self.learning_rate)
        for name in ("n_iterations", "n_trials", "eval_trials"):
            check_count(name, getattr(self, name))
        check("seed", self.seed, SEED)
        if not 0 <= self.corruption <= 0.5:
            raise InvalidInputError(f"corruption must lie in [0, 0.5], got {self.corruption!r}")
        if self.init not in ("random", "hebbian"):
            raise InvalidInputError(f"init must be 'random' or 'hebbian', got {self.init!r}")
        for name in ("noise", "kick", "init_scale", "shil"):
            check_positive(name, getattr(self, name), allow_zero=True)

    def to_dict(self) -> dict:
        return asdict(self)


def retrieve(params, corrupted, rng: np.random.Generator, *, noise: float = 0.1,
             options: RelaxOptions = RelaxOptions(), engine: str | Engine | None = None):
    """Relax from corrupted states (P, trials, N) (+ phase noise); returns (pixels read out, converged)."""
    corrupted = as_real_array("corrupted", corrupted)
    if corrupted.ndim != 3:
        raise InvalidInputError(f"corrupted must have shape (P, trials, N), got {corrupted.shape}")
    topo = patterns.network(corrupted.shape[-1])
    phi0 = patterns.initial_phases(corrupted, noise, rng)
    eq = get_engine(engine).relax("onn", as_param_dict(params), phi0, topo, options=options)
    return patterns.read_out(eq.phi), eq.converged


def evaluate_memory(params, stored: np.ndarray, corruption: float, n_trials: int, rng: np.random.Generator, *,
                    noise: float = 0.1, options: RelaxOptions = RelaxOptions(),
                    engine: str | Engine | None = None) -> tuple[float, float, int]:
    """(exact-retrieval accuracy, mean overlap, unconverged states) from fresh corrupted copies of ``stored``."""
    corrupted = patterns.corrupt(stored, corruption, n_trials, rng)
    out, converged = retrieve(params, corrupted, rng, noise=noise, options=options, engine=engine)
    return patterns.accuracy(out, stored), patterns.overlap(out, stored), int(np.sum(~converged))


def train_memory_ep(stored, H: onn.CouplingFunction, config: MemoryEPConfig = MemoryEPConfig(), *,
                    engine: str | Engine | None = None, progress: bool | Progress = True,
                    checkpoint: str | os.PathLike | None = None, checkpoint_seconds: float = 120.0) -> xr.Dataset:
    """Train the couplings of a reference + pixels ONN to store the patterns ``stored`` (P, N); history as a
    Dataset. Checkpoints, resume and Ctrl-C: :func:`pyosc.training.loop.run`."""
    engine = get_engine(engine)
    if not isinstance(config, MemoryEPConfig):
        raise InvalidInputError(f"config must be a MemoryEPConfig, got {type(config).__name__}")
    xi = patterns.check_patterns(stored)
    n_pat, n_pix = xi.shape
    topo = patterns.network(n_pix)
    rng, _ = seed_streams(config.seed)
    if config.init == "hebbian":
        W0 = hebbian_couplings(np.concatenate([np.ones((n_pat, 1)), xi], axis=1))
    else:
        a = config.init_scale / np.sqrt(n_pix + 1) * rng.standard_normal((n_pix + 1, n_pix + 1))
        W0 = np.triu(a, 1) + np.triu(a, 1).T
    params = onn.make_params(W0, H, shil=np.r_[0.0, np.full(n_pix, config.shil)])
    onn.energy_status(params)
    targets = np.where(xi > 0, 0.0, np.pi)

    def sample(rng):
        corrupted = patterns.corrupt(xi, config.corruption, config.n_trials, rng)
        return patterns.initial_phases(corrupted, config.noise, rng), targets, None

    def record(step, _):
        out = patterns.read_out(step.free.phi)
        return {"accuracy": patterns.accuracy(out, xi), "overlap": patterns.overlap(out, xi),
                "unconverged": np.sum(~step.free.converged) + np.sum(~step.nudged.converged)}

    trainer = EPTrainer(f"EP memory P={n_pat} N={n_pix}", engine, "onn", topo, params, beta=config.beta,
                        relax=config.relax, optimizer=config.optimizer, learning_rate=config.learning_rate,
                        n_iterations=config.n_iterations, evaluations=[], seed=config.seed,
                        trainable={"W": topo.trainable_coupling_mask.astype(float)}, sample=sample, record=record,
                        kick=config.kick)
    if config.init == "random":
        trainer.rng = rng  # the initial couplings drew from the training stream
    elapsed = run(trainer, config.to_dict(), checkpoint=checkpoint, checkpoint_seconds=checkpoint_seconds,
                  progress=as_progress(progress, trainer.name, lambda m: {"accuracy": f"{m['accuracy']:.2f}"}))
    final = evaluate_memory(trainer.params, xi, config.corruption, config.eval_trials, seed_streams(config.seed)[1],
                            noise=config.noise, options=config.relax, engine=engine)
    rec = trainer.records
    unit = {"long_name": "unit index (0 = reference)", "units": "1"}
    coords = history_coords(None, config.n_iterations, [])
    del coords["evaluation"]
    coords.update(unit=("unit", np.arange(n_pix + 1), unit), unit_=("unit_", np.arange(n_pix + 1), unit),
                  pattern=("pattern", np.arange(n_pat), {"long_name": "stored pattern", "units": "1"}),
                  pixel=("pixel", np.arange(n_pix), {"long_name": "pixel", "units": "1"}))
    return xr.Dataset(
        {
            "accuracy": ("iteration", rec["accuracy"], {"long_name": "exact retrieval fraction of the training "
                                                                     "trials (free phase)", "units": "1"}),
            "overlap": ("iteration", rec["overlap"], {"long_name": "mean overlap of free states with their patterns",
                                                      "units": "1"}),
            "unconverged": ("iteration", rec["unconverged"], {"long_name": "free + nudged states that missed the "
                                                                           "tolerance", "units": "1"}),
            "W": (("unit", "unit_"), trainer.params["W"], {"long_name": "final couplings (unit 0 = reference)",
                                                            "units": "1"}),
            "patterns": (("pattern", "pixel"), xi, {"long_name": "stored patterns", "units": "1"}),
        },
        coords=coords,
        attrs={"title": "EP-trained ONN associative memory", "model": "onn", "trainer": "ep",
               "topology": topo.name, "engine": engine.name, "H_sin": np.asarray(H.sin), "H_cos": np.asarray(H.cos),
               "final_accuracy": final[0], "final_overlap": final[1], "final_unconverged": final[2],
               "wall_time_s": elapsed, "config": config.to_dict(), **provenance()},
    )
