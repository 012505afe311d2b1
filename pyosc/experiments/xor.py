"""XOR on an all-to-all XY network trained by equilibrium propagation (arXiv 2402.08579, Fig. 3).

``n_runs`` independent networks (their own initial parameters and initial states) train in one vectorised call;
the history holds every run's distance per iteration and accuracy per evaluation.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np
import xarray as xr

from pyosc import topology
from pyosc.data import datasets
from pyosc.experiments.ep_options import EPTaskConfig
from pyosc.experiments.options import option
from pyosc.models import xy
from pyosc.training.ep import train_ep
from pyosc.training.loop import Progress


@dataclass(frozen=True)
class Config(EPTaskConfig):
    n_units: int = option(5, "network size N (2 inputs, 1 output)")
    n_runs: int = option(100, "independent runs trained together")
    n_iterations: int = option(1000, "EP iterations")
    learning_rate: float = option(0.1, "learning rate")
    eval_every: int = option(100, "iterations between accuracy evaluations (0: never)")

    def __post_init__(self):
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
    lines = [(f"XOR, N = {c['n_units']}, {c['n_runs']} runs x {c['n_iterations']} iterations in "
             f"{ds.attrs['wall_time_s']:.1f} s"),
             (f"final distance: median {np.median(final):.2e}, max {final.max():.2e}; "
             f"runs below 1e-3: {np.mean(final < 1e-3):.0%}, below 1e-2: {np.mean(final < 1e-2):.0%}")]
    if ds.sizes["evaluation"]:
        lines.append(f"final accuracy: {ds.accuracy.isel(evaluation=-1).mean().item():.1%} (mean over runs)")
    return "\n".join(lines)
