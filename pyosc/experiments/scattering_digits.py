"""The layered scattering classifier of Wanjura & Marquardt (arXiv 2308.16181) on UCI optdigits.

Defaults follow the paper and its code: layers 128 (64 pixels x R = 2) - ``hidden`` - 10, kappa = 0.5 on every
mode, inputs ``5 (1 - p / 16)``, outputs Im S_ll, softmax cross-entropy on 8 Im S, plain SGD with learning rate
0.2 (layer-0 offsets 4x, the code's ``2 theta``), batch 200, test accuracy every 60 iterations, 58,440 iterations
(their best N2 = 80 point). Needs optdigits.tra / .tes in the data home.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from numbers import Integral

import numpy as np
import xarray as xr

from pyosc.data.detunings import BACKGROUND, KAPPA, REPLICATION, load_neuroscatter_params, load_optdigits_detunings
from pyosc.errors import InvalidInputError
from pyosc.experiments.options import check_fields, option
from pyosc.experiments.text import count, percent
from pyosc.models.scattering import LayeredNetwork
from pyosc.topology import MAX_UNITS
from pyosc.training.green import LOSSES, TrainConfig, paper_initialisation, train_network
from pyosc.training.loop import Progress
from pyosc.validation import COUNT, POSITIVE, SEED, Interval

OPTDIGITS_TRAIN = 3823
"""Images in the UCI optdigits training file."""


@dataclass(frozen=True)
class Config:
    hidden: int = option(80, "hidden-layer size N2; 0 = no hidden layer", allowed=Interval(Integral, 0, MAX_UNITS))
    replication: int = option(2, "copies of each pixel in layer 1", allowed=REPLICATION)
    kappa: float = option(KAPPA, "decay rate of every mode (code units)", allowed=POSITIVE)
    background: float = option(BACKGROUND, "detuning of a blank pixel (code units)", allowed=POSITIVE)
    n_iterations: int = option(58440, "mini-batch iterations", allowed=COUNT)
    batch_size: int = option(200, "images per mini-batch (the training set holds 3823)",
                             allowed=Interval(Integral, 1, OPTDIGITS_TRAIN))
    optimizer: str = option("sgd", "optimizer", choices=("sgd", "adam"))
    learning_rate: float = option(0.2, "learning rate", allowed=POSITIVE)
    offset_lr_scale: float = option(4.0, "learning-rate factor of the layer-1 offsets (4: the code's 2 theta)",
                                    allowed=POSITIVE)
    loss: str = option("cross-entropy", "cost of the outputs", choices=LOSSES)
    beta: float = option(8.0, "logit scale of the cross-entropy", allowed=POSITIVE)
    eval_every: int = option(60, "iterations between test evaluations", allowed=COUNT)
    seed: int = option(0, "random seed of the initialisation and the batches", allowed=SEED)

    def __post_init__(self):
        check_fields(self)
        self.training()  # validates the rest

    def training(self) -> TrainConfig:
        """The trainer's settings."""
        return TrainConfig(n_iterations=self.n_iterations, batch_size=self.batch_size, optimizer=self.optimizer,
                           learning_rate=self.learning_rate, lr_scale={"detuning_0": self.offset_lr_scale},
                           loss=self.loss, beta=self.beta, eval_every=self.eval_every, seed=self.seed)


def setup(config: Config, data_home=None):
    """The paper's layered network [64 R, hidden, 10] from its initialisation, and the data
    ``(x_train, y_train, x_test, y_test)``."""
    x_train, y_train = load_optdigits_detunings("train", config.replication, config.background, data_home)
    x_test, y_test = load_optdigits_detunings("test", config.replication, config.background, data_home)
    sizes = [x_train.shape[1]] + ([config.hidden] if config.hidden > 0 else []) + [10]
    network = paper_initialisation(sizes, np.random.default_rng(config.seed), kappa=config.kappa)
    return network, (x_train, y_train, x_test, y_test)


def run(config: Config, *, checkpoint: str | os.PathLike | None = None, checkpoint_seconds: float = 120.0,
        progress: bool | Progress = False, engine=None) -> xr.Dataset:
    """Train from the paper's initialisation; the history of :func:`pyosc.training.green.train_network`.
    ``engine`` must be None: scattering solves in SciPy sparse."""
    if engine is not None:
        raise InvalidInputError("scattering networks solve in SciPy sparse; engine must not be given")
    network, data = setup(config)
    ds = train_network(network, *data, config.training(), checkpoint=checkpoint, checkpoint_seconds=checkpoint_seconds,
                       progress=progress)[2]
    ds.attrs.update(task="scattering-digits", config=asdict(config), training=ds.attrs["config"])
    return ds


def summary(ds: xr.Dataset) -> str:
    """What the CLI prints after training."""
    c = ds.attrs["config"]
    final = ds.test_accuracy.values[-1] if ds.sizes["evaluation"] else float("nan")
    return (f"scattering digits, hidden {c['hidden']}, {count(c['n_iterations'], 'iteration')} in "
            f"{ds.attrs['wall_time_s']:.0f} s\n"
            f"test accuracy: best {percent(ds.attrs['best_test_accuracy'])} at iteration {ds.attrs['best_iteration']}, "
            f"final {percent(final)}")


def released_network(data_home=None) -> LayeredNetwork:
    """The published trained 128-80-10 classifier (:func:`pyosc.data.detunings.load_neuroscatter_params`) as a
    :class:`LayeredNetwork` with every decay rate ``KAPPA`` and no internal loss."""
    return LayeredNetwork(**load_neuroscatter_params(data_home), kappa_ext=KAPPA, kappa_int=0.0)
