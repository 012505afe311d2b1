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

import time
from dataclasses import asdict, dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from pyosc import memory
from pyosc.engines.base import Engine, EPStep, Nudge, RelaxOptions, get_engine
from pyosc.errors import InvalidInputError, check_positive
from pyosc.models import onn, xy
from pyosc.results import provenance
from pyosc.topology import Topology
from pyosc.training.hebbian import hebbian_couplings
from pyosc.training.optimizers import make_optimizer


def ep_step_kicked(engine: Engine, params: onn.ONNParams, phi0: np.ndarray, topology: Topology, nudge: Nudge,
                   kick: float, rng: np.random.Generator, options: RelaxOptions = RelaxOptions()) -> EPStep:
    """Free relaxation from ``phi0``; nudged relaxation from the free equilibrium plus N(0, kick^2) on the
    free units; EP gradient per pair, averaged over samples and initial states."""
    kick = check_positive("kick", kick, allow_zero=True)
    free = engine.relax("onn", params, phi0, topology, options=options)
    start = free.phi + kick * rng.standard_normal(free.phi.shape) * (~topology.clamped)
    nudged = engine.relax("onn", params, start, topology, nudge, options)
    p = onn.ONNParams(*(jnp.asarray(a) for a in params))
    g_free, g_nudged = onn.energy_param_grad(jnp.asarray(free.phi), p), onn.energy_param_grad(jnp.asarray(nudged.phi), p)
    grad = onn.ONNParams(*(np.asarray((b - a) / nudge.beta) for a, b in zip(g_free, g_nudged)))
    return EPStep(grad, free, nudged)


def implicit_gradient(params: onn.ONNParams, topology: Topology, phi_free: np.ndarray, targets: np.ndarray) -> onn.ONNParams:
    """Exact dC/dtheta (C the log cost) at free equilibria (samples, inits, N), averaged over states.

    With f the velocity on the free units and J = df/dphi there, dC/dtheta = -lambda^T df/dtheta with
    J^T lambda = dC/dphi. Couplings per pair (both entries of W), as in :func:`pyosc.models.onn.energy_param_grad`.
    """
    p = onn.ONNParams(*(jnp.asarray(a) for a in onn.validate_params(params, topology.n_units)))
    free, out = np.flatnonzero(~topology.clamped), topology.output_units
    phi = jnp.asarray(phi_free).reshape(-1, topology.n_units)
    tg = jnp.repeat(jnp.asarray(targets), phi_free.shape[1], axis=0)
    dC = jnp.zeros_like(phi).at[:, out].set(xy.log_cost_grad(phi[:, out], tg))
    J = jax.vmap(jax.jacfwd(lambda f: onn.velocity(f, p)))(phi)[:, free][:, :, free]
    lam = jnp.zeros_like(phi).at[:, free].set(jnp.linalg.solve(jnp.swapaxes(J, 1, 2), dC[:, free][..., None])[..., 0])
    entry = jax.grad(lambda q: -jnp.sum(onn.velocity(phi, q) * lam) / phi.shape[0])(p)
    return onn.ONNParams(np.asarray(entry.W + entry.W.T), *(np.asarray(a) for a in entry[1:]))


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
            if int(getattr(self, name)) < 1:
                raise InvalidInputError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if not 0 <= self.corruption <= 0.5:
            raise InvalidInputError(f"corruption must lie in [0, 0.5], got {self.corruption!r}")
        if self.init not in ("random", "hebbian"):
            raise InvalidInputError(f"init must be 'random' or 'hebbian', got {self.init!r}")
        for name in ("noise", "kick", "init_scale", "shil"):
            check_positive(name, getattr(self, name), allow_zero=True)

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_memory(params: onn.ONNParams, patterns: np.ndarray, corruption: float, n_trials: int,
                    rng: np.random.Generator, *, noise: float = 0.1, options: RelaxOptions = RelaxOptions(),
                    engine: str | Engine = "jax") -> tuple[float, float, int]:
    """(exact-retrieval accuracy, mean overlap, unconverged states) from fresh corrupted copies."""
    corrupted = memory.corrupt(patterns, corruption, n_trials, rng)
    out, converged = memory.retrieve(params, corrupted, rng, noise=noise, options=options, engine=engine)
    return memory.accuracy(out, patterns), memory.overlap(out, patterns), int(np.sum(~converged))


def train_memory_ep(patterns, H: onn.CouplingFunction, config: MemoryEPConfig = MemoryEPConfig(), *,
                    engine: str | Engine = "jax", progress: bool = True) -> xr.Dataset:
    """Train the couplings of a reference + pixels ONN to store ``patterns`` (P, N); history as a Dataset."""
    engine = get_engine(engine)
    xi = memory.check_patterns(patterns)
    n_pat, n_pix = xi.shape
    topo = memory.network(n_pix)
    rng = np.random.default_rng(config.seed)
    if config.init == "hebbian":
        W0 = hebbian_couplings(np.concatenate([np.ones((n_pat, 1)), xi], axis=1))
    else:
        a = config.init_scale / np.sqrt(n_pix + 1) * rng.standard_normal((n_pix + 1, n_pix + 1))
        W0 = np.triu(a, 1) + np.triu(a, 1).T
    params = onn.make_params(W0, H, shil=np.r_[0.0, np.full(n_pix, config.shil)])
    onn.energy_status(params)
    opt = make_optimizer(config.optimizer, config.learning_rate)
    state = opt.init(params)
    mask = topo.trainable_coupling_mask.astype(float)
    targets = np.where(xi > 0, 0.0, np.pi)
    acc, ovl, uncon = (np.zeros(config.n_iterations) for _ in range(3))
    start = time.perf_counter()
    bar = tqdm(range(config.n_iterations), disable=not progress, desc=f"EP memory P={n_pat} N={n_pix}", unit="it")
    for it in bar:
        corrupted = memory.corrupt(xi, config.corruption, config.n_trials, rng)
        phi0 = memory.initial_phases(corrupted, config.noise, rng)
        step = ep_step_kicked(engine, params, phi0, topo, Nudge(config.beta, targets), config.kick, rng, config.relax)
        out = memory.read_out(step.free.phi)
        acc[it], ovl[it] = memory.accuracy(out, xi), memory.overlap(out, xi)
        uncon[it] = np.sum(~step.free.converged) + np.sum(~step.nudged.converged)
        zero = onn.ONNParams(*(np.zeros_like(np.asarray(v)) for v in params))
        params, state = opt.update(params, zero._replace(W=step.gradient.W * mask), state)
        if not np.all(np.isfinite(params.W)):
            raise InvalidInputError(f"couplings became NaN or infinite at iteration {it}; lower the learning rate")
        if progress and it % 10 == 0:
            bar.set_postfix(accuracy=f"{acc[it]:.2f}")
    final = evaluate_memory(params, xi, config.corruption, config.eval_trials, np.random.default_rng([config.seed, 1]),
                            noise=config.noise, options=config.relax, engine=engine)
    elapsed = time.perf_counter() - start
    return xr.Dataset(
        {
            "accuracy": ("iteration", acc, {"long_name": "exact retrieval fraction of the training trials (free phase)",
                                            "units": "1"}),
            "overlap": ("iteration", ovl, {"long_name": "mean overlap of free states with their patterns", "units": "1"}),
            "unconverged": ("iteration", uncon, {"long_name": "free + nudged states that missed the tolerance",
                                                 "units": "1"}),
            "W": (("unit", "unit_"), np.asarray(params.W), {"long_name": "final couplings (unit 0 = reference)",
                                                          "units": "1/time"}),
            "patterns": (("pattern", "pixel"), xi, {"long_name": "stored patterns", "units": "1"}),
        },
        coords={"iteration": np.arange(config.n_iterations), "unit": np.arange(n_pix + 1),
                "unit_": np.arange(n_pix + 1), "pattern": np.arange(n_pat), "pixel": np.arange(n_pix)},
        attrs={"title": "EP-trained ONN associative memory", "model": "onn", "trainer": "ep",
               "topology": topo.name, "engine": engine.name, "H_sin": np.asarray(H.sin), "H_cos": np.asarray(H.cos),
               "final_accuracy": final[0], "final_overlap": final[1], "final_unconverged": final[2],
               "wall_time_s": elapsed, "config": config.to_dict(), **provenance()},
    )
