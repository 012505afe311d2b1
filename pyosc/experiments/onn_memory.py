"""Associative memory of 5x5 letters on a phase-reduced Van der Pol ONN, trained by EP and compared with Hebbian.

The coupling function H is sin (``nonlinearity`` 0, the near-harmonic limit) or the odd part of the numerically
phase-reduced Van der Pol circuit with that nonlinearity, scaled to b_1 = 1 (see :mod:`pyosc.training.memory` for
the protocol and its reconstructed choices).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from numbers import Integral, Real

import numpy as np
import xarray as xr

from pyosc.data import patterns
from pyosc.engines.base import RelaxOptions
from pyosc.errors import ConvergenceError
from pyosc.experiments.options import check_fields, option
from pyosc.experiments.text import count, percent
from pyosc.models import onn, phase_reduction, vdp
from pyosc.training.hebbian import hebbian_couplings
from pyosc.training.loop import Progress, seed_streams
from pyosc.training.memory import MemoryEPConfig, evaluate_memory, train_memory_ep
from pyosc.validation import COUNT, NON_NEGATIVE, POSITIVE, SEED, Interval, Options, check, is_integer

NONLINEARITY = [Options(0.0), Interval(Real, 0.01, 10.0)]
"""0 (H = sin) or a circuit whose numerical phase reduction is known to work: below 0.01 H is sin to 1e-5, above 10
the relaxation oscillations defeat the limit-cycle computation."""
HARMONICS = Interval(Integral, 1, 511)
"""Fourier harmonics of H: the reduced orbit has 2048 samples, so at most 511 harmonics are resolved."""


@dataclass(frozen=True)
class Config:
    letters: str = option("AEIOU", "patterns to store (capital letters)")
    nonlinearity: float = option(0.0, "Van der Pol a sqrt(L/C): 0 = near-harmonic limit H = sin; in [0.01, 10] "
                                      "reduces that circuit numerically and keeps the odd part of H",
                                 allowed=NONLINEARITY)
    harmonics: int = option(5, "Fourier harmonics of H when reduced", allowed=HARMONICS)
    shil: float = option(0.3, "second-harmonic injection per pixel", allowed=NON_NEGATIVE)
    beta: float = option(0.1, "nudging strength beta", allowed=POSITIVE)
    learning_rate: float = option(0.005, "learning rate (SGD)", allowed=POSITIVE)
    n_iterations: int = option(150, "EP iterations", allowed=COUNT)
    n_trials: int = option(4, "corrupted copies per pattern per iteration", allowed=COUNT)
    corruption: float = option(0.1, "fraction of pixels flipped", allowed=patterns.CORRUPTION)
    init: str = option("hebbian", "initial couplings", choices=("hebbian", "random"))
    eval_trials: int = option(50, "corrupted copies per pattern in the final evaluation", allowed=COUNT)
    seed: int = option(0, "random seed", allowed=SEED)

    def __post_init__(self):
        check_fields(self)
        patterns.letters(self.letters)
        self.training()

    def training(self) -> MemoryEPConfig:
        """The trainer's settings."""
        return MemoryEPConfig(beta=self.beta, learning_rate=self.learning_rate, n_iterations=self.n_iterations,
                              n_trials=self.n_trials, corruption=self.corruption, shil=self.shil, init=self.init,
                              eval_trials=self.eval_trials, seed=self.seed, relax=RelaxOptions())


def coupling_from_circuit(nonlinearity: float, harmonics: int) -> onn.CouplingFunction:
    """H = sin for ``nonlinearity`` 0; else the odd part of the reduced Van der Pol H, scaled to b_1 = 1."""
    check("nonlinearity", float(nonlinearity) if is_integer(nonlinearity) else nonlinearity, NONLINEARITY)
    check("harmonics", harmonics, HARMONICS)
    if nonlinearity == 0:
        return onn.coupling_function([1.0])
    circuit = vdp.VdPCircuit(a=nonlinearity, b=nonlinearity / 3)
    try:
        red = phase_reduction.reduce_coupling(phase_reduction.periodic_orbit(circuit), harmonics)
    except (ConvergenceError, np.linalg.LinAlgError) as e:  # their messages speak of the circuit's a and b
        raise ConvergenceError(f"the phase reduction of the Van der Pol circuit with nonlinearity {nonlinearity:g} "
                               "failed (its limit cycle or phase response did not converge); try another "
                               "nonlinearity, or 0 for H = sin") from e
    return red.H.odd_part().scaled(1.0 / red.H.sin[0])


def run(config: Config, *, checkpoint: str | os.PathLike | None = None, checkpoint_seconds: float = 120.0,
        progress: bool | Progress = False, engine=None) -> xr.Dataset:
    """Store the letters by EP and evaluate the Hebbian couplings on the same protocol (``attrs``
    ``hebbian_accuracy``, ``hebbian_overlap``)."""
    xi = patterns.letters(config.letters)
    H = coupling_from_circuit(config.nonlinearity, config.harmonics)
    training = config.training()
    ds = train_memory_ep(xi, H, training, engine=engine, progress=progress, checkpoint=checkpoint,
                  checkpoint_seconds=checkpoint_seconds)
    heb = onn.make_params(hebbian_couplings(np.concatenate([np.ones((xi.shape[0], 1)), xi], axis=1)), H,
                          shil=np.r_[0.0, np.full(xi.shape[1], config.shil)])
    h_acc, h_ovl, _ = evaluate_memory(heb, xi, config.corruption, config.eval_trials, seed_streams(config.seed)[1],
                                      noise=training.noise, engine=engine)
    ds.attrs.update(task="onn-memory", config=asdict(config), training=ds.attrs["config"], hebbian_accuracy=h_acc,
                    hebbian_overlap=h_ovl, letters=config.letters)
    return ds


def summary(ds: xr.Dataset) -> str:
    """What the CLI prints after training."""
    c = ds.attrs["config"]
    n = len(c["letters"])
    return "\n".join([
        (f"{count(n, 'letter')} ({c['letters']}) on 25 oscillators + reference, load P/N = {n / 25:.2f}, "
         f"{percent(c['corruption'])} of the pixels flipped, H sin coefficients "
         f"{np.round(ds.attrs['H_sin'], 4).tolist()}"),
        (f"exact retrieval: EP {percent(ds.attrs['final_accuracy'])} (overlap {ds.attrs['final_overlap']:.3f}), "
         f"Hebbian {percent(ds.attrs['hebbian_accuracy'])} (overlap {ds.attrs['hebbian_overlap']:.3f}); "
         f"EP training {ds.attrs['wall_time_s']:.1f} s")])
