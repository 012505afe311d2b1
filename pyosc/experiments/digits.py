"""8x8 digits on a layered or all-to-all XY network trained by equilibrium propagation (arXiv 2402.08579, Table 2).

The paper's split of scikit-learn's digits (100 training and 70 test images per class), batches of
``batch_per_class`` images per class drawn with replacement, test accuracy every ``eval_every`` iterations, and
confusion matrices at the ``snapshots`` iterations.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

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
from pyosc.validation import COUNT, NON_NEGATIVE_INT, POSITIVE, TupleOf


@dataclass(frozen=True)
class Config(EPTaskConfig):
    arch: str = option("layered:64,200,10", "'layered:64,H,10' or 'all-to-all:N' (64 inputs, 10 outputs)")
    n_iterations: int = option(2000, "EP iterations", allowed=COUNT)
    learning_rate: float = option(0.01, "learning rate", allowed=POSITIVE)
    batch_per_class: int = option(30, "images per class per iteration", allowed=COUNT)
    eval_every: int = option(5, "iterations between test-accuracy evaluations (0: never)", allowed=NON_NEGATIVE_INT)
    snapshots: tuple[int, ...] = option((), "iterations whose parameters (and confusion matrices) are kept",
                                        allowed=TupleOf(NON_NEGATIVE_INT))

    def __post_init__(self):
        check_fields(self)
        self.network()
        self.training()  # validates every setting

    def network(self) -> topology.Topology:
        """The network of ``arch``."""
        return topology.from_spec(self.arch, n_inputs=64, n_outputs=10)

    def training(self):
        """The trainer's settings."""
        return self.ep_config(n_iterations=self.n_iterations, learning_rate=self.learning_rate,
                              eval_every=self.eval_every, batch_per_class=self.batch_per_class,
                              snapshots=self.snapshots)


def run(config: Config, *, checkpoint: str | os.PathLike | None = None, checkpoint_seconds: float = 120.0,
        progress: bool | Progress = False, engine=None) -> xr.Dataset:
    """Train one network from the paper's initialisation; the history (see :func:`pyosc.training.ep.train_ep`)."""
    topo = config.network()
    scheme = "layered" if topo.layers else "all-to-all"
    params = xy.init_params(topo, np.random.default_rng(config.seed), scheme=scheme)
    train, test = datasets.digits_paper_split()
    ds = train_ep(topo, train, params, config.training(), test=test, engine=engine, progress=progress,
                  checkpoint=checkpoint,
                  checkpoint_seconds=checkpoint_seconds)
    ds.attrs.update(task="xy-digits", config=asdict(config), training=ds.attrs["config"])
    return ds


def summary(ds: xr.Dataset) -> str:
    """What the CLI prints after training."""
    c = ds.attrs["config"]
    lines = [(f"digits, {ds.attrs['topology']} ({count(ds.attrs['n_trainable'], 'parameter')}), "
              f"{count(c['n_iterations'], 'iteration')} in {ds.attrs['wall_time_s']:.0f} s")]
    acc = ds.accuracy.isel(run=0)
    if acc.size:
        best = int(np.argmax(acc.values))
        lines.append(f"test accuracy: best {percent(acc.max().item())} at iteration {int(acc.evaluation[best])}, "
                     f"final {percent(acc.isel(evaluation=-1).item())}")
    return "\n".join(lines)
