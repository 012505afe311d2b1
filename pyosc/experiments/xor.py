"""XOR on an all-to-all XY network trained by equilibrium propagation (arXiv 2402.08579, Fig. 3).

``n_runs`` independent networks (their own initial parameters and initial states) train in one vectorised call;
the history holds every run's distance per iteration and accuracy per evaluation.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from numbers import Integral

import numpy as np
import xarray as xr

from pyosc import topology
from pyosc.data import datasets
from pyosc.experiments.ep_options import EPTaskConfig
from pyosc.experiments.options import check_fields, option
from pyosc.experiments.text import count, percent
from pyosc.models import xy
from pyosc.training.ep import train_ep
from pyosc.training.loop import Progress
from pyosc.validation import COUNT, NON_NEGATIVE_INT, POSITIVE, Interval


@dataclass(frozen=True)
class Config(EPTaskConfig):
    n_units: int = option(5, "network size N (2 inputs, 1 output)", allowed=Interval(Integral, 3, topology.MAX_UNITS))
    n_runs: int = option(100, "independent runs trained together", allowed=COUNT)
    n_iterations: int = option(1000, "EP iterations", allowed=COUNT)
    learning_rate: float = option(0.1, "learning rate", allowed=POSITIVE)
    eval_every: int = option(100, "iterations between accuracy evaluations (0: never)", allowed=NON_NEGATIVE_INT)

    def __post_init__(self):
        check_fields(self)
        self.training()  # validates every setting

    def training(self):
        """The trainer's settings."""
        return self.ep_config(n_iterations=self.n_iterations, learning_rate=self.learning_rate,
                              eval_every=self.eval_every)


def run(config: Config, *, checkpoint: str | os.PathLike | None = None, checkpoint_seconds: float = 120.0,
        progress: bool | Progress = False, engine=None) -> xr.Dataset:
    """Train ``config.n_runs`` XOR networks; the history (see :func:`pyosc.training.ep.train_ep`)."""
    topo = topology.all_to_all(config.n_units, 2, 1)
    params = xy.init_params(topo, np.random.default_rng(config.seed), scheme="xor", n_runs=config.n_runs)
    ds = train_ep(topo, datasets.xor(), params, config.training(), engine=engine, progress=progress,
                  checkpoint=checkpoint,
                  checkpoint_seconds=checkpoint_seconds)
    ds.attrs.update(task="xy-xor", config=asdict(config), training=ds.attrs["config"])
    return ds


def summary(ds: xr.Dataset) -> str:
    """What the CLI prints after training."""
    c = ds.attrs["config"]
    final = ds.distance.isel(iteration=-1).values
    lines = [(f"XOR, N = {c['n_units']}, {count(c['n_runs'], 'run')} x {count(c['n_iterations'], 'iteration')} in "
              f"{ds.attrs['wall_time_s']:.1f} s"),
             (f"final distance: median {np.median(final):.2e}, max {final.max():.2e}; "
              f"runs below 1e-3: {percent(np.mean(final < 1e-3))}, below 1e-2: {percent(np.mean(final < 1e-2))}")]
    if ds.sizes["evaluation"]:
        lines.append(f"final accuracy: {percent(ds.accuracy.isel(evaluation=-1).mean().item())} (mean over runs)")
    return "\n".join(lines)
