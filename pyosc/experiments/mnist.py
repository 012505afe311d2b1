"""MNIST on a layered XY network trained by equilibrium propagation (issue 18).

Inputs: the 784 grey levels 0..255 as clamped phases pi (p / 255 - 1/2) in [-pi/2, pi/2] (the digits encoding of
arXiv 2402.08579 on MNIST's range); targets +pi/2 on the true class and -pi/2 elsewhere; readout argmax sin(phi).
Network: layered ``[784, *hidden, 10]`` (``hidden`` = "500" or "500,200"), the paper's layered initialisation.
Training (from the layered initialisation, or from the final parameters of an earlier history, ``init_from``, grown
to wider hidden layers if it was narrower; with ``init_spread``, from those parameters as a fabricated chip would
realise them, each coupling and bias amplitude off by a random factor, to be trained in situ):
mini-batches of ``batch_size`` images, a fresh permutation of the training images every epoch, ``n_inits`` random
initial states per image, optionally each image moved by a random translation of up to ``shift`` pixels, rotated by
up to ``rotate`` degrees and scaled by 1 +- ``scale`` (data augmentation, bilinear; the uncovered pixels are
background), Adam or SGD, learning rate constant or annealed as (1 + cos(pi t / T)) / 2 over the T iterations
(``schedule="cosine"``). Model selection: the last ``validation`` images of the training file; each epoch visits the
training images in the order of a permutation drawn from (seed, epoch); the validation and test accuracies are
evaluated after every epoch (from one random initial state per image) and the history records both, with the images
whose relaxation missed the tolerance, so that the test accuracy at the best validation epoch can be reported.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from numbers import Integral, Real

import numpy as np
import xarray as xr

from pyosc import topology
from pyosc.data.datasets import PhaseDataset, accuracy
from pyosc.data.mnist import deform_images, mnist_phase_datasets
from pyosc.engines import get_engine
from pyosc.errors import InvalidInputError
from pyosc.experiments.ep_options import EPTaskConfig
from pyosc.experiments.options import check_fields, option
from pyosc.models import xy
from pyosc.results import CHECKSUM, provenance, verify_netcdf
from pyosc.training import loop
from pyosc.training.ep import EPTrainer, predict_phases, random_phases, unit_roles
from pyosc.training.loop import Progress
from pyosc.validation import COUNT, NON_NEGATIVE_INT, POSITIVE, Interval


@dataclass(frozen=True)
class Config(EPTaskConfig):
    hidden: str = option("500", "hidden-layer sizes, comma-separated (e.g. '500' or '500,200')")
    n_epochs: int = option(20, "passes over the training images", allowed=COUNT)
    batch_size: int = option(200, "images per EP iteration", allowed=COUNT)
    learning_rate: float = option(0.002, "learning rate", allowed=POSITIVE)
    optimizer: str = option("adam", "optimizer", choices=("sgd", "adam"))
    schedule: str = option("cosine", "learning-rate schedule over the epochs: constant, or cosine annealing to 0",
                           choices=("constant", "cosine"))
    n_train: int = option(0, "training images used (0: all 60,000 minus the validation images)",
                          allowed=NON_NEGATIVE_INT)
    validation: int = option(10_000, "last training images set aside for model selection",
                             allowed=Interval(Integral, 0, 59_999))
    n_eval: int = option(0, "validation and test images evaluated per epoch (0: all)", allowed=NON_NEGATIVE_INT)
    shift: int = option(0, "data augmentation: each training image of a batch moved by a random translation of up "
                           "to this many pixels down/up and right/left (0: none)", allowed=Interval(Integral, 0, 8))
    rotate: float = option(0.0, "data augmentation: each training image of a batch also rotated by a random angle of "
                                "up to this many degrees either way (0: none)", allowed=Interval(Real, 0, 45))
    scale: float = option(0.0, "data augmentation: each training image of a batch also scaled by a random factor in "
                               "1 +- this (0: none)", allowed=Interval(Real, 0, 0.5))
    init_from: str = option("", "history (NetCDF) of an earlier xy-mnist run whose final parameters start this "
                                "one, with a fresh optimizer: the same network, or a narrower one, grown without "
                                "changing its outputs (pyosc.models.xy.grow_layers) ('': the layered random "
                                "initialisation)")
    init_spread: float = option(0.0, "the initial couplings and bias amplitudes off by random factors 1 + this x "
                                     "N(0, 1), as on a fabricated chip that then trains in situ (0: exact)",
                                allowed=Interval(Real, 0, 1))

    def __post_init__(self):
        check_fields(self)
        self.network()
        self.ep_config(n_iterations=1, learning_rate=self.learning_rate, eval_every=0)  # validates the EP settings

    def network(self) -> topology.Topology:
        """The layered network ``[784, *hidden, 10]``."""
        return topology.from_spec(f"layered:784,{self.hidden},10", n_inputs=784, n_outputs=10)


def run(config: Config, *, checkpoint: str | os.PathLike | None = None, checkpoint_seconds: float = 120.0,
        progress: bool | Progress = False, engine=None) -> xr.Dataset:
    """Train; the history holds the free-phase distance per iteration and the validation and test accuracies per
    epoch."""
    engine = get_engine(engine)
    train, val, test = mnist_phase_datasets(validation=config.validation, n_train=config.n_train or None)
    val, test = val.first(config.n_eval), test.first(config.n_eval)
    topo = config.network()
    params, start = initial_parameters(config)
    ep = config.ep_config(n_iterations=1, learning_rate=config.learning_rate, eval_every=0)
    n_batches = train.x.shape[0] // config.batch_size
    if n_batches < 1:
        raise InvalidInputError(f"batch_size {config.batch_size} exceeds the {train.x.shape[0]} training images")

    def sample(rng):
        epoch, k = divmod(trainer.iteration, n_batches)  # each epoch's order is a function of (seed, epoch)
        perm = np.random.default_rng([config.seed, 2, epoch]).permutation(train.x.shape[0])
        idx = perm[k * config.batch_size:(k + 1) * config.batch_size]
        x = train.x[idx]
        if config.shift or config.rotate or config.scale:  # draws only what is asked for: earlier runs stay exact
            n = idx.size
            shifts = rng.integers(-config.shift, config.shift + 1, (n, 2))
            angles = np.deg2rad(rng.uniform(-config.rotate, config.rotate, n)) if config.rotate else np.zeros(n)
            scales = 1 + rng.uniform(-config.scale, config.scale, n) if config.scale else np.ones(n)
            x = deform_images(x, angles, scales, shifts, -np.pi / 2)
        return random_phases(rng, x, config.n_inits, topo.n_units, None), train.y[idx], idx

    def record(step, idx):
        out = step.free.phi[..., topo.output_units]
        batch = PhaseDataset(train.x[idx], train.y[idx], train.labels[idx], "batch")
        return {"train_accuracy": np.atleast_1d(accuracy(out, batch)),
                "unconverged": np.atleast_1d(np.sum(~step.free.converged) + np.sum(~step.nudged.converged))}

    def evaluate(p, rng):
        scores = {}
        for name, data in (("validation", val), ("test", test)):
            phi, converged = predict_phases(engine, p, topo, data.x, rng, ep.relax)
            scores |= {f"{name}_accuracy": np.atleast_1d(accuracy(phi, data)),
                       f"{name}_unconverged": np.atleast_1d(np.sum(~converged))}
        return scores

    unit = (~topo.clamped).astype(float)
    n_total = config.n_epochs * n_batches
    schedule = None if config.schedule == "constant" else lambda it: 0.5 * (1 + np.cos(np.pi * it / n_total))
    trainer = EPTrainer(f"EP MNIST {topo.name}", engine, "xy", topo, params, beta=ep.beta, relax=ep.relax,
                            optimizer=ep.optimizer, learning_rate=ep.learning_rate,
                            n_iterations=config.n_epochs * n_batches,
                            evaluations=[e * n_batches for e in range(1, config.n_epochs + 1)], seed=config.seed,
                            trainable={"W": topo.trainable_coupling_mask.astype(float), "h": unit, "psi": unit},
                            sample=sample, record=record, evaluate=evaluate, schedule=schedule,
                            estimator=ep.estimator)
    show = lambda m: {k[:5]: f"{v:.3f}" for k, v in m.items() if "accuracy" in k}
    elapsed = loop.run(trainer, asdict(config), checkpoint=checkpoint, checkpoint_seconds=checkpoint_seconds,
                       progress=loop.as_progress(progress, trainer.name, show))
    return _history(trainer, topo, config, n_batches, elapsed, start)


def initial_parameters(config: Config) -> tuple[xy.XYParams, dict[str, str]]:
    """The parameters training starts from, and attributes for the history: those of :func:`_trained_or_initialised`,
    each coupling and bias amplitude off by a random factor 1 + ``config.init_spread`` xi (drawn from the seed)."""
    params, start = _trained_or_initialised(config)
    if not config.init_spread:
        return params, start
    return xy.with_spread(params, config.init_spread, np.random.default_rng([config.seed, 4])), start


def _trained_or_initialised(config: Config) -> tuple[xy.XYParams, dict[str, str]]:
    """The layered random initialisation, or the final parameters of the verified history ``config.init_from`` (grown
    where it was narrower; with its checksum, for the new history's attributes)."""
    topo = config.network()
    if not config.init_from:
        return xy.init_params(topo, np.random.default_rng(config.seed), scheme="layered"), {}
    ds = verify_netcdf(config.init_from)
    if ds.attrs.get("task") != "xy-mnist":
        raise InvalidInputError(f"init_from {config.init_from!r} is a {ds.attrs.get('task')!r} history, not an "
                                "xy-mnist one")
    params = xy.XYParams(**final_parameters(ds))
    if ds.attrs["topology"] != topo.name:
        try:
            params = xy.grow_layers(params, topology.from_spec(ds.attrs["topology"]), topo,
                                    np.random.default_rng([config.seed, 3]))
        except InvalidInputError as err:
            raise InvalidInputError(f"init_from {config.init_from!r}: {err}") from None
    return params, {"initial_parameters_from": os.path.basename(config.init_from),
                    "initial_parameters_data_sha256": ds.attrs[CHECKSUM]}


def _history(trainer: EPTrainer, topo: topology.Topology, config: Config, n_batches: int, elapsed: float,
             start: dict[str, str]) -> xr.Dataset:
    one = lambda long_name: {"long_name": long_name, "units": "1"}
    epochs = np.arange(1, config.n_epochs + 1)
    pair_i, pair_j = np.nonzero(np.triu(topo.coupling_mask))  # W is symmetric and sparse: its coupled pairs i < j
    batch_acc = trainer.records["train_accuracy"][0].reshape(config.n_epochs, n_batches).mean(axis=1)
    data = {
        "train_accuracy": (("epoch",), batch_acc, one("mean accuracy of the training batches (free phase)")),
        "validation_accuracy": (("epoch",), trainer.scores["validation_accuracy"][0], one("validation accuracy")),
        "test_accuracy": (("epoch",), trainer.scores["test_accuracy"][0], one("test accuracy")),
        "unconverged": (("iteration",), trainer.records["unconverged"][0],
                        one("states (free + nudged) that missed the steady-state tolerance")),
        **{f"{name}_unconverged": (("epoch",), trainer.scores[f"{name}_unconverged"][0],
                                   one(f"{name} images whose free state missed the steady-state tolerance"))
           for name in ("validation", "test")},
        "coupling": (("pair",), trainer.params["W"][pair_i, pair_j],
                     one("final couplings W_ij = W_ji of the coupled pairs (per unit of the flow's time)")),
        "h": (("unit",), trainer.params["h"], one("final bias amplitudes h_i (per unit of the flow's time)")),
        "psi": (("unit",), trainer.params["psi"], {"long_name": "final bias phases psi_i", "units": "rad"}),
        "role": (("unit",), unit_roles(topo), {"long_name": "role of the unit in the network"}),
    }
    best = int(np.argmax(data["validation_accuracy"][1]))
    coords = {"epoch": ("epoch", epochs, one("training epoch (after it)")),
              "iteration": ("iteration", np.arange(config.n_epochs * n_batches), one("training iteration")),
              "unit": ("unit", np.arange(topo.n_units), one("unit index")),
              "pair_i": ("pair", pair_i.astype(np.int32), one("first unit i of the coupled pair")),
              "pair_j": ("pair", pair_j.astype(np.int32), one("second unit j > i of the coupled pair"))}
    return xr.Dataset(data, coords=coords, attrs={
        "title": f"equilibrium propagation on MNIST, XY model, {topo.name}", "task": "xy-mnist", "model": "xy",
        "trainer": "ep", "topology": topo.name, "engine": trainer.engine.name, "wall_time_s": elapsed,
        "best_validation_epoch": int(epochs[best]),
        "test_accuracy_at_best_validation": float(data["test_accuracy"][1][best]),
        "config": asdict(config), **start, **provenance()})


def final_parameters(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """The trained parameters of an xy-mnist history: W (dense, symmetric, from the coupled pairs), h, psi."""
    n = ds.sizes["unit"]
    W = np.zeros((n, n))
    i, j = ds.pair_i.values, ds.pair_j.values
    W[i, j] = W[j, i] = ds.coupling.values
    return {"W": W, "h": ds.h.values, "psi": ds.psi.values}


def summary(ds: xr.Dataset) -> str:
    """What the CLI prints after training."""
    c = ds.attrs["config"]
    labels = {"unconverged": "training (free + nudged)", "validation_unconverged": "validation",
              "test_unconverged": "test"}  # older histories lack the evaluation counts
    missed = ", ".join(f"{label} {int(ds[k].sum())}" for k, label in labels.items() if k in ds)
    return (f"MNIST, {ds.attrs['topology']}, {c['n_epochs']} epochs in {ds.attrs['wall_time_s']:.0f} s\n"
            f"test accuracy at the best validation epoch ({ds.attrs['best_validation_epoch']}): "
            f"{100 * ds.attrs['test_accuracy_at_best_validation']:.2f} %; best test accuracy "
            f"{100 * float(ds.test_accuracy.max()):.2f} %\n"
            f"states that missed the steady-state tolerance: {missed}")
