"""Gradient training of layered linear scattering classifiers (Wanjura & Marquardt, arXiv 2308.16181).

The outputs are ``y_l = Re(exp(-i phi) S_{r_l c_l})`` on the last layer (default: ``Im S_ll``); the prediction is
``argmax_l y_l``. Costs: softmax cross-entropy on the scaled outputs ``beta * y`` (the authors' choice, beta = 8)
or the squared error to one-hot targets. Gradients are Green's-function products (see
:mod:`pyosc.models.scattering`), obtained from the layered recursion in :mod:`pyosc.engines.scattering`.
Optimisers (:mod:`pyosc.training.optimizers`): plain mini-batch SGD (the paper's) or Adam, with per-parameter factors.
Training runs in :func:`pyosc.training.loop.run` (checkpoints, resume, Ctrl-C); the history is an ``xarray.Dataset``.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import xarray as xr

from pyosc.data.datasets import as_class_indices
from pyosc.engines.scattering import green_columns, layered_green_columns
from pyosc.errors import InvalidInputError, as_real_array, check_positive
from pyosc.models.scattering import (
    CoupledModeNetwork,
    LayeredNetwork,
    Readout,
    coupling_gradient_block,
    coupling_gradient_edges,
    detuning_gradient,
    measured_coupling_gradient,
    measured_detuning_gradient,
    output_weights,
    quadrature,
    s_elements,
)
from pyosc.results import checkpoint_group, provenance
from pyosc.training import loop
from pyosc.training.loop import Progress, Trainer, as_progress, check_count, evaluation_iterations, seed_streams
from pyosc.training.optimizers import make_optimizer, state_arrays, state_from_arrays
from pyosc.validation import SEED, check

LOSSES = ("cross-entropy", "mse")


# --- costs ----------------------------------------------------------------------------------------

def softmax_cross_entropy(y: np.ndarray, labels: np.ndarray, beta: float = 8.0) -> tuple[float, np.ndarray]:
    """Mean of ``-log softmax(beta y)_label`` over the batch, and its derivative dC/dy (B, L)."""
    z = beta * y
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    b = y.shape[0]
    onehot = np.eye(y.shape[1])[labels]
    return float(-np.mean(logp[np.arange(b), labels])), beta * (np.exp(logp) - onehot) / b


def squared_error(y: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean over the batch of ``sum_l (y_l - t_l)^2`` with one-hot targets t, and dC/dy (B, L)."""
    t = np.eye(y.shape[1])[labels]
    return float(np.mean(np.sum((y - t) ** 2, axis=1))), 2.0 * (y - t) / y.shape[0]


def cost(y: np.ndarray, labels: np.ndarray, loss: str = "cross-entropy", beta: float = 8.0):
    """Dispatch to :func:`softmax_cross_entropy` or :func:`squared_error`."""
    if loss == "cross-entropy":
        return softmax_cross_entropy(y, labels, beta)
    if loss == "mse":
        return squared_error(y, labels)
    raise InvalidInputError(f"loss must be one of {LOSSES}, got {loss!r}")


# --- forward pass and gradient ---------------------------------------------------------------------

def _readout_for(network: LayeredNetwork | CoupledModeNetwork, readout: Readout | None) -> Readout:
    if isinstance(network, CoupledModeNetwork):
        if readout is None:
            raise InvalidInputError("a general CoupledModeNetwork needs an explicit readout")
        readout.check_sites(network.n_modes)
        return readout
    if not isinstance(network, LayeredNetwork):
        raise InvalidInputError(f"network must be a LayeredNetwork or CoupledModeNetwork, got {type(network).__name__}")
    n_out = network.sizes[-1]
    readout = Readout.diagonal(np.arange(n_out)) if readout is None else readout
    readout.check_sites(n_out, "last-layer modes")
    return readout


def _outputs_from_top(network: LayeredNetwork, top: np.ndarray, readout: Readout) -> np.ndarray:
    k = network.kappa_ext[-1]
    g = top[:, readout.rows, readout.cols]
    return quadrature(s_elements(g, k[readout.rows], k[readout.cols], readout.rows == readout.cols), readout.phase)


def layered_outputs(network: LayeredNetwork, x_rep, readout: Readout | None = None, *, omega: float = 0.0,
                    batch_size: int = 500) -> np.ndarray:
    """Outputs y (B, L) for inputs ``x_rep`` (B, N_0), evaluated in chunks of ``batch_size`` samples."""
    check_count("batch_size", batch_size)
    readout = _readout_for(network, readout)
    x = as_real_array("x_rep", x_rep, shape=(None, network.sizes[0]))
    out = [_outputs_from_top(network, layered_green_columns(network, x[i:i + batch_size], omega=omega,
                                                              all_layers=False)[0], readout)
           for i in range(0, x.shape[0], batch_size)]
    return np.concatenate(out) if out else np.empty((0, readout.n_outputs))


def layered_loss_and_gradient(network: LayeredNetwork, x_rep, labels, readout: Readout | None = None, *,
                              loss: str = "cross-entropy", beta: float = 8.0, omega: float = 0.0
                              ) -> tuple[float, np.ndarray, dict[str, np.ndarray]]:
    """Batch-mean cost, outputs y (B, L) and dC/dparameter for every entry of ``network.parameters()``.

    ``dC/dDelta_(n,p) = Re sum_l w_l X_n[p, r_l] X_n[p, c_l]`` and
    ``dC/dJ_n[p, q] = Re sum_l w_l (X_n[p, r_l] X_{n+1}[q, c_l] + X_{n+1}[q, r_l] X_n[p, c_l])``,
    with ``w_l = dC/dy_l exp(-i phi) i sqrt(kappa_r kappa_c)`` and X_n the last-layer columns of G.
    """
    readout = _readout_for(network, readout)
    labels = np.asarray(labels)
    x = as_real_array("x_rep", x_rep, shape=(None, network.sizes[0]))
    if labels.shape != (x.shape[0],):
        raise InvalidInputError(f"labels must have shape ({x.shape[0]},) to match x_rep, got {labels.shape}")
    if labels.size and (labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= readout.n_outputs):
        raise InvalidInputError(f"labels must be integers in 0..{readout.n_outputs - 1}")
    xs = layered_green_columns(network, x, omega=omega)
    y = _outputs_from_top(network, xs[-1], readout)
    c, dy = cost(y, labels, loss, beta)
    k = network.kappa_ext[-1]
    w = output_weights(dy, readout, k[readout.rows], k[readout.cols])
    diag = bool(np.array_equal(readout.rows, readout.cols))
    grads = {}
    for n, xn in enumerate(xs):
        grads[f"detuning_{n}"] = detuning_gradient(w, xn[:, :, readout.rows], xn[:, :, readout.cols]).sum(axis=0)
    for n in range(network.n_layers - 1):
        a, b = xs[n], xs[n + 1]
        grads[f"coupling_{n}"] = coupling_gradient_block(w, a[:, :, readout.rows], a[:, :, readout.cols],
                                                         b[:, :, readout.rows], b[:, :, readout.cols], diag)
    return c, y, grads


def network_loss_and_gradient(network: CoupledModeNetwork, x_rep, labels, readout: Readout, *,
                              loss: str = "cross-entropy", beta: float = 8.0, omega: float = 0.0,
                              method: str = "auto", form: str = "green"
                              ) -> tuple[float, np.ndarray, dict[str, np.ndarray]]:
    """Batch-mean cost, outputs y (B, L) and gradients of a general network: ``"detuning"`` (N,) (the offsets
    are its entries at the input sites) and ``"coupling"`` (E,), in the order of ``network.edges``.

    One solve per sample gives the G columns at the readout sites; ``form="green"`` uses the Green's-function
    products, ``form="measured"`` only the S elements ``S_{k, r_l}``, ``S_{k, c_l}`` (eqs. 7-8; every mode
    needs a waveguide). ``method`` picks the solver (see :func:`pyosc.engines.scattering.green_columns`).
    """
    if form not in ("green", "measured"):
        raise InvalidInputError(f"form must be 'green' or 'measured', got {form!r}")
    readout.check_sites(network.n_modes)
    sites = readout.sites()
    gcols = green_columns(network, sites, x_rep, omega=omega, method=method)
    labels = np.asarray(labels)
    if labels.shape != (gcols.shape[0],):
        raise InvalidInputError(f"labels must have shape ({gcols.shape[0]},) to match x_rep, got {labels.shape}")
    pos = np.searchsorted(sites, readout.rows), np.searchsorted(sites, readout.cols)
    g_r, g_c = gcols[:, :, pos[0]], gcols[:, :, pos[1]]
    k = network.kappa_ext
    same = readout.rows == readout.cols
    y = quadrature(s_elements(g_r[:, readout.cols, np.arange(readout.n_outputs)], k[readout.rows], k[readout.cols],
                              same), readout.phase)
    c, dy = cost(y, labels, loss, beta)
    if form == "green":
        w = output_weights(dy, readout, k[readout.rows], k[readout.cols])
        grads = {"detuning": detuning_gradient(w, g_r, g_c).sum(axis=0),
                 "coupling": coupling_gradient_edges(w, g_r, g_c, network.edges)}
    else:
        every = np.arange(network.n_modes)
        s_r = (every[:, None] == readout.rows) + np.sqrt(np.outer(k, k[readout.rows])) * g_r
        s_c = (every[:, None] == readout.cols) + np.sqrt(np.outer(k, k[readout.cols])) * g_c
        grads = {"detuning": measured_detuning_gradient(dy, readout, s_r, s_c, k, every).sum(axis=0),
                 "coupling": measured_coupling_gradient(dy, readout, s_r, s_c, k, every, network.edges)}
    return c, y, grads


# --- initialisation ------------------------------------------------------------------------------

def paper_initialisation(sizes, rng: np.random.Generator, *, kappa: float = 0.5, offset: float = 4.0,
                         coupling: float = 1.0, coupling_spread: float = 0.1, detuning_spread: float = 1e-3
                         ) -> LayeredNetwork:
    """The authors' initialisation (code units): layer-0 offsets alternate ``+offset, -offset, ...`` (the two
    replicas of a pixel get opposite signs), other detunings ``-detuning_spread * U(0, 1)`` (resonant with small
    disorder), couplings ``coupling + coupling_spread * U(0, 1)`` (all positive), every decay ``kappa``, no loss."""
    if isinstance(sizes, str) or not hasattr(sizes, "__len__") or len(sizes) < 2:
        raise InvalidInputError(f"sizes must list at least two layer sizes, got {sizes!r}")
    sizes = [check_count("layer size", s) for s in sizes]
    kappa = check_positive("kappa", kappa)
    dets = [offset * np.where(np.arange(sizes[0]) % 2 == 0, 1.0, -1.0)]
    dets += [-detuning_spread * rng.random(s) for s in sizes[1:]]
    js = [coupling + coupling_spread * rng.random((a, b)) for a, b in pairwise(sizes)]
    return LayeredNetwork(dets, js, kappa_ext=kappa, kappa_int=0.0)


# --- training ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainConfig:
    """Mini-batch protocol: each permutation of the training set gives ``n_train // batch_size`` batches
    (the remainder is skipped, as in the authors' code); the test set is evaluated every ``eval_every``
    iterations. ``lr_scale`` multiplies the learning rate of named parameters (e.g. ``detuning_0``)."""

    n_iterations: int
    batch_size: int = 200
    optimizer: str = "sgd"
    learning_rate: float = 0.2
    lr_scale: dict[str, float] = field(default_factory=lambda: {"detuning_0": 4.0})
    loss: str = "cross-entropy"
    beta: float = 8.0
    eval_every: int = 60
    seed: int = 0

    def __post_init__(self):
        for name in ("n_iterations", "batch_size", "eval_every"):
            check_count(name, getattr(self, name))
        check("seed", self.seed, SEED)
        if self.loss not in LOSSES:
            raise InvalidInputError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        make_optimizer(self.optimizer, self.learning_rate, self.lr_scale)
        check_positive("beta", self.beta)


def outputs(network: LayeredNetwork | CoupledModeNetwork, x_rep, readout: Readout | None = None, *,
            batch_size: int = 500) -> np.ndarray:
    """Outputs y (B, L) of a layered network (layered recursion) or a general one (automatic solver)."""
    check_count("batch_size", batch_size)
    if isinstance(network, LayeredNetwork):
        return layered_outputs(network, x_rep, readout, batch_size=batch_size)
    readout = _readout_for(network, readout)
    sites = readout.sites()
    x = as_real_array("x_rep", x_rep, shape=(None, network.input_sites.size))
    k = network.kappa_ext
    out = []
    for i in range(0, x.shape[0], batch_size):
        g = green_columns(network, sites, x[i:i + batch_size])
        g_rc = g[:, readout.rows, np.searchsorted(sites, readout.cols)]
        out.append(quadrature(s_elements(g_rc, k[readout.rows], k[readout.cols], readout.rows == readout.cols),
                              readout.phase))
    return np.concatenate(out) if out else np.empty((0, readout.n_outputs))


def accuracy(network: LayeredNetwork | CoupledModeNetwork, x_rep, labels, readout: Readout | None = None) -> float:
    """Fraction of samples whose argmax output equals the label (integer labels of the outputs' classes)."""
    y = outputs(network, x_rep, readout)
    labels = as_class_indices("labels", labels, y.shape[1])
    if labels.shape != (y.shape[0],):
        raise InvalidInputError(f"labels must have shape ({y.shape[0]},) to match x_rep, got {labels.shape}")
    return float(np.mean(np.argmax(y, axis=1) == labels))


def _loss_and_gradient(network, x, labels, readout, config: TrainConfig):
    if isinstance(network, LayeredNetwork):
        return layered_loss_and_gradient(network, x, labels, readout, loss=config.loss, beta=config.beta)
    return network_loss_and_gradient(network, x, labels, readout, loss=config.loss, beta=config.beta)


class GreenTrainer(Trainer):
    """Mini-batch gradient descent with Green's-function gradients (see :func:`train_network`)."""

    def __init__(self, network, x_train, y_train, x_test, y_test, config: TrainConfig, readout: Readout,
                 masks: dict[str, np.ndarray]):
        self.name = "scattering"
        self.network, self.readout, self.masks, self.config = network, readout, masks, config
        self.x_train, self.y_train, self.x_test, self.y_test = x_train, y_train, x_test, y_test
        self.n_batches = x_train.shape[0] // config.batch_size
        self.n_iterations = config.n_iterations
        self.evaluations = evaluation_iterations(config.n_iterations, config.eval_every, at_start=False)
        self.opt = make_optimizer(config.optimizer, config.learning_rate, config.lr_scale)
        self.rng, _ = seed_streams(config.seed)
        self.params = network.parameters()
        self.opt_state = self.opt.init(self.params)
        self.perm = np.empty(0, np.int64)
        self.window = {"loss": [], "accuracy": []}  # mini-batch metrics since the previous evaluation
        self.hist = {k: [] for k in ("test_accuracy", "train_loss", "train_accuracy")}
        self.best = (-1.0, 0, self.params)

    def step(self, iteration: int) -> dict[str, float]:
        cfg = self.config
        pos = iteration % self.n_batches
        if pos == 0 or self.perm.size == 0:
            self.perm = self.rng.permutation(self.x_train.shape[0])
        idx = self.perm[pos * cfg.batch_size:(pos + 1) * cfg.batch_size]
        net = self.network.with_parameters(self.params)
        c, y, grads = _loss_and_gradient(net, self.x_train[idx], self.y_train[idx], self.readout, cfg)
        grads = {k: np.where(self.masks[k], g, 0.0) if k in self.masks else g for k, g in grads.items()}
        self.params, self.opt_state = self.opt.update(self.params, grads, self.opt_state)
        self.window["loss"].append(c)
        self.window["accuracy"].append(float(np.mean(np.argmax(y, axis=1) == self.y_train[idx])))
        return {"loss": c}

    def evaluate(self, index: int, iteration: int) -> dict[str, float]:
        acc = accuracy(self.network.with_parameters(self.params), self.x_test, self.y_test, self.readout)
        for k, v in (("test_accuracy", acc), ("train_loss", np.mean(self.window["loss"])),
                     ("train_accuracy", np.mean(self.window["accuracy"]))):
            self.hist[k].append(float(v))
        self.window = {"loss": [], "accuracy": []}
        if acc > self.best[0]:
            self.best = (acc, iteration, {k: v.copy() for k, v in self.params.items()})
        return {"test_accuracy": acc, "best_test_accuracy": self.best[0]}

    def parameters_finite(self) -> bool:
        return all(np.all(np.isfinite(v)) for v in self.params.values())

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        arrays = {f"param/{k}": v for k, v in self.params.items()}
        arrays.update({f"state/{k}": v for k, v in state_arrays(self.opt_state).items()})
        arrays.update({f"best/{k}": v for k, v in self.best[2].items()})
        arrays.update({f"hist/{k}": np.asarray(v, dtype=float) for k, v in self.hist.items()})
        arrays.update({f"window/{k}": np.asarray(v, dtype=float) for k, v in self.window.items()})
        meta = {"opt_t": None if self.opt_state is None else int(self.opt_state[0]), "best_acc": self.best[0],
                "best_step": self.best[1], "rng": self.rng.bit_generator.state}
        return meta, {"perm": self.perm, **arrays}

    def restore(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        params = checkpoint_group(arrays, "param")
        if {k: v.shape for k, v in params.items()} != {k: v.shape for k, v in self.params.items()}:
            raise InvalidInputError("the checkpoint does not match the network's parameters")
        self.params = params
        self.opt_state = state_from_arrays(self.opt_state, meta["opt_t"], checkpoint_group(arrays, "state"))
        self.best = (meta["best_acc"], meta["best_step"], checkpoint_group(arrays, "best"))
        self.hist = {k: v.tolist() for k, v in checkpoint_group(arrays, "hist").items()}
        self.window = {k: v.tolist() for k, v in checkpoint_group(arrays, "window").items()}
        self.perm = arrays["perm"]
        self.rng.bit_generator.state = meta["rng"]


def train_network(network: LayeredNetwork | CoupledModeNetwork, x_train, y_train, x_test, y_test,
                  config: TrainConfig, *, readout: Readout | None = None,
                  trainable: dict[str, np.ndarray] | None = None, checkpoint: str | os.PathLike | None = None,
                  checkpoint_seconds: float = 120.0, progress: bool | Progress = False):
    """Train ``network`` and return ``(final network, best-test network, history)``.

    Layered networks use the layered recursion (readout default: Im S_ll on the last layer); general
    :class:`CoupledModeNetwork` s (e.g. racetracks with coupler modes) use the sparse/dense solvers and need a
    ``readout``. ``trainable`` maps parameter names (see ``network.parameters()``) to boolean masks of the
    same shape (or a bool); parameters outside the masks stay fixed, e.g. ``{"coupling": False}`` trains only
    detunings. Checkpoints, resume, progress and Ctrl-C: :func:`pyosc.training.loop.run`.
    """
    if not isinstance(config, TrainConfig):
        raise InvalidInputError(f"config must be a TrainConfig, got {type(config).__name__}")
    readout = _readout_for(network, readout)
    n_in = network.sizes[0] if isinstance(network, LayeredNetwork) else network.input_sites.size
    masks = {}
    for name, value in (trainable or {}).items():
        if name not in network.parameters():
            raise InvalidInputError(f"trainable names {name!r}, not a parameter of {sorted(network.parameters())}")
        mask = np.broadcast_to(np.asarray(value, dtype=bool), network.parameters()[name].shape) \
            if np.ndim(value) == 0 else np.asarray(value)
        if mask.dtype != bool or mask.shape != network.parameters()[name].shape:
            raise InvalidInputError(f"trainable[{name!r}] must be a bool or a boolean mask of shape "
                                    f"{network.parameters()[name].shape}")
        masks[name] = mask
    x_train = as_real_array("x_train", x_train, shape=(None, n_in))
    x_test = as_real_array("x_test", x_test, shape=(None, n_in))
    n_out = readout.n_outputs
    y_train, y_test = as_class_indices("y_train", y_train, n_out), as_class_indices("y_test", y_test, n_out)
    if y_train.shape != (x_train.shape[0],) or y_test.shape != (x_test.shape[0],):
        raise InvalidInputError("y_train / y_test must be 1-D label arrays matching x_train / x_test")
    if x_train.shape[0] == 0 or x_test.shape[0] == 0:
        raise InvalidInputError(f"x_train and x_test must hold samples, got shapes {x_train.shape}, {x_test.shape}")
    if x_train.shape[0] // config.batch_size < 1:
        raise InvalidInputError(f"batch_size {config.batch_size} exceeds the {x_train.shape[0]} training samples")
    trainer = GreenTrainer(network, x_train, y_train, x_test, y_test, config, readout, masks)
    recorded = {**dataclasses.asdict(config), "network": _network_record(network), "readout": _readout_record(readout),
                "trainable": sorted(masks)}
    elapsed = loop.run(trainer, recorded, checkpoint=checkpoint, checkpoint_seconds=checkpoint_seconds,
                       progress=as_progress(progress, "scattering", _show))
    final = network.with_parameters(trainer.params)
    best_net = network.with_parameters(trainer.best[2])
    return final, best_net, history_dataset(trainer, final, best_net, config, readout, elapsed)


def _show(metrics: dict[str, float]) -> dict[str, str]:
    shown = {"loss": f"{metrics['loss']:.3f}"}
    if "test_accuracy" in metrics:
        shown["test"] = f"{metrics['test_accuracy']:.2%}"
    return shown


def _network_record(network) -> dict:
    if isinstance(network, LayeredNetwork):
        return {"sizes": list(network.sizes), "kappa_ext": [float(k[0]) for k in network.kappa_ext]}
    return {"n_modes": network.n_modes, "n_couplings": len(network.edges)}


def _readout_record(readout: Readout) -> dict:
    return {"rows": readout.rows.tolist(), "cols": readout.cols.tolist(), "phase": readout.phase}


def _parameter_dims(network, name: str, ndim: int) -> tuple[str, ...]:
    """Named dims of a network parameter: modes of a layer (``mode_<n>``), or modes and couplings of a general
    network (``mode``, ``coupling``)."""
    if isinstance(network, LayeredNetwork):
        layer = int(name.rsplit("_", 1)[1])
        return (f"mode_{layer}",) if ndim == 1 else (f"mode_{layer}", f"mode_{layer + 1}")
    return ("mode",) if name.startswith("detuning") else ("coupling",)


def history_dataset(trainer: GreenTrainer, final, best_net, config: TrainConfig, readout: Readout,
                    elapsed: float) -> xr.Dataset:
    """The training history (per evaluation) and the final and best parameters as an ``xarray.Dataset``."""
    one = lambda long_name: {"long_name": long_name, "units": "1"}
    ds = xr.Dataset(
        {"test_accuracy": ("evaluation", np.asarray(trainer.hist["test_accuracy"]), one("test accuracy")),
         "train_loss": ("evaluation", np.asarray(trainer.hist["train_loss"]),
                        one(f"mean mini-batch cost ({config.loss}) since the previous evaluation")),
         "train_accuracy": ("evaluation", np.asarray(trainer.hist["train_accuracy"]),
                            one("mean mini-batch accuracy since the previous evaluation"))},
        coords={"evaluation": ("evaluation", np.asarray(trainer.evaluations, dtype=np.int64),
                               one("iterations (mini-batch updates) before the evaluation"))})
    for prefix, net in (("final", final), ("best", best_net)):
        for name, v in net.parameters().items():
            kind = "detuning" if name.startswith("detuning") else "coupling"
            ds[f"{prefix}_{name}"] = (_parameter_dims(net, name, v.ndim), v,
                                      one(f"{prefix} {kind} {name} (units of the decay rate scale of the code)"))
    cfg = {**dataclasses.asdict(config), **_network_record(final)}
    cfg.update({f"readout_{k}": v for k, v in _readout_record(readout).items()})
    ds.attrs.update(title="gradient training of a linear scattering network", trainer="green", config=cfg,
                    best_test_accuracy=float(trainer.best[0]), best_iteration=int(trainer.best[1]),
                    wall_time_s=elapsed,
                    model=f"linear scattering network, {type(final).__name__} (Wanjura & Marquardt, arXiv 2308.16181)",
                    **provenance())
    return ds
