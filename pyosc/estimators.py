"""scikit-learn estimators: classifiers backed by an XY network trained by equilibrium propagation
(:class:`XYClassifier`) and by a layered linear scattering network (:class:`ScatteringClassifier`).

``ScatteringClassifier().fit(pixels, labels)`` encodes grey levels 0..16 into input detunings
``background (1 - p / 16)`` replicated ``replication`` times, builds the paper's initialisation
(layers D R - ``hidden`` - n_classes, kappa on every mode) and trains with mini-batch SGD or Adam on the
softmax cross-entropy of ``beta * Im S_ll`` (or the squared error). ``predict`` returns the class whose output
``Im S_ll`` is largest.

Both follow scikit-learn's conventions (they pass ``sklearn.utils.estimator_checks``): parameters are checked at
``fit`` against the constraint tables ``_parameter_constraints`` (:mod:`pyosc.validation`), ``X`` and ``y`` with
scikit-learn's rules (dense, finite, real, 2-D, non-empty; ``y`` class labels), and every refusal is a
:class:`~pyosc.errors.PyoscError` that names the argument. ``predict`` before ``fit`` raises
:class:`NotFittedError` (scikit-learn's, and a pyosc error).
"""
from __future__ import annotations

import warnings
from numbers import Integral
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_non_negative, validate_data

from pyosc import topology as topo_mod
from pyosc.data.datasets import PIXEL_MAX, PhaseDataset, encode_classes
from pyosc.data.detunings import BACKGROUND, KAPPA, REPLICATION, encode_detunings
from pyosc.engines import get_engine
from pyosc.engines.base import BaseEngine, RelaxOptions
from pyosc.errors import InvalidInputError, InvalidTypeError
from pyosc.models import xy
from pyosc.training.ep import EPConfig, train_ep
from pyosc.training.green import LOSSES, TrainConfig, layered_outputs, paper_initialisation, train_network
from pyosc.validation import (
    COUNT,
    POSITIVE,
    SEED,
    InstanceOf,
    Interval,
    Options,
    Pattern,
    RealRange,
    validate,
)

PREDICT_CHUNK = 32
"""XYClassifier relaxes test samples in chunks of this many states (the last one padded by repetition), so that one
compiled program serves every call; each sample's initial state depends only on the sample and the fitted seed."""


class NotFittedError(InvalidInputError, SklearnNotFittedError):
    """``predict``, ``decision_function`` or ``score`` before ``fit``: a pyosc error and scikit-learn's
    :class:`sklearn.exceptions.NotFittedError`."""


def _is_complex(a) -> bool:
    if isinstance(a, (list, tuple)):
        return any(isinstance(v, (complex, np.complexfloating)) for v in np.ravel(np.asarray(a, dtype=object)))
    dtype = getattr(a, "dtype", None)
    return isinstance(dtype, np.dtype) and dtype.kind == "c"


def _refuse_complex(**arrays) -> None:
    """Complex ``X`` or ``y`` is refused up front, naming the argument (no part of a number is ever dropped)."""
    for name, a in arrays.items():
        if _is_complex(a):
            raise InvalidInputError(f"{name} must be real: Complex data not supported")


def _sklearn_checked(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` (a scikit-learn input check) with its ValueError / TypeError re-raised as
    :class:`InvalidInputError` / :class:`InvalidTypeError`, keeping scikit-learn's message (which names X or y)."""
    try:
        return fn(*args, **kwargs)
    except InvalidInputError:
        raise
    except TypeError as e:
        raise InvalidTypeError(str(e)) from None
    except ValueError as e:
        raise InvalidInputError(str(e)) from None


class _Classifier(ClassifierMixin, BaseEstimator):
    """What both classifiers share: parameter checks, X and y checks, the fitted check and ``score``."""

    _parameter_constraints: ClassVar[dict]
    _fitted_attribute: ClassVar[str]  # set last by fit: its presence means fitted

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False  # every feature drives one input unit: dense arrays only
        tags.input_tags.allow_nan = False  # a NaN feature has no physical input (phase or detuning)
        return tags

    def _start_fit(self) -> None:
        """Check the parameters; a fit that fails from here on leaves the estimator unfitted."""
        validate(self._parameter_constraints, self.get_params(deep=False))
        self.__dict__.pop(self._fitted_attribute, None)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, self._fitted_attribute)

    def _fit_data(self, X, y) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Checked (X float64 (n, d), classes_, index of each sample's class); sets ``n_features_in_``."""
        _refuse_complex(X=X, y=y)
        try:
            X, y = _sklearn_checked(validate_data, self, X, y, dtype=np.float64)
        except InvalidInputError as e:
            if "inconsistent numbers of samples" in str(e):  # scikit-learn's words for len(y) != len(X)
                raise InvalidInputError(f"y must have shape (n_samples,) to match X: {e}") from None
            raise
        try:
            kind = type_of_target(y, input_name="y")
        except TypeError as e:  # labels that cannot be compared, e.g. None among strings
            raise InvalidTypeError(f"y must hold class labels of one kind (numbers or strings): {e}") from None
        if kind not in ("binary", "multiclass"):
            raise InvalidInputError(f"y must hold class labels (integers, strings or integral floats), got {kind} "
                                    f"values (Unknown label type: {kind!r})")
        classes, labels = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise InvalidInputError(f"y must contain at least two classes, got 1 class ({classes[0]!r})")
        return X, classes, labels

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first")

    def _test_data(self, X) -> np.ndarray:
        self._check_fitted()
        _refuse_complex(X=X)
        return _sklearn_checked(validate_data, self, X, reset=False, dtype=np.float64)

    def _binary_or_all(self, scores: np.ndarray) -> np.ndarray:
        """Scores (n, n_classes) as scikit-learn's decision function: (n,) = class 1 minus class 0 for two classes."""
        return scores[:, 1] - scores[:, 0] if self.classes_.size == 2 else scores

    def score(self, X, y, sample_weight=None) -> float:
        """Mean accuracy on ``(X, y)``; labels of ``y`` not seen in ``fit`` are an error, not a wrong answer."""
        self._check_fitted()
        y_arr = np.asarray(y)
        if y_arr.ndim == 1:
            unseen = _sklearn_checked(np.setdiff1d, y_arr, self.classes_)
            if unseen.size:
                raise InvalidInputError(f"y holds labels that fit never saw: {unseen.tolist()[:10]}; the classes are "
                                        f"{self.classes_.tolist()}")
        return super().score(X, y, sample_weight=sample_weight)


class XYClassifier(_Classifier):
    """Classify with the free equilibrium of an XY network (one output unit per class, argmax sin(phi)).

    Features are mapped linearly from ``input_range`` (default: the training data's min and max of
    all features) onto input phases in [-pi/2, pi/2]. ``hidden`` is ``"layered:H"`` (one hidden
    layer of H units, none for H = 0) or ``"all-to-all:H"`` (H hidden units, every pair coupled). ``method`` and
    ``tol``: the relaxation to a steady state (:class:`~pyosc.engines.base.RelaxOptions`: ``"newton"`` ends in the
    basin of the oscillators' own flow; ``"continuation"`` is one simpler loop that compiles faster, but may end
    in a neighbouring basin for a few % of random starts).

    Predictions relax every sample from one random initial state drawn from the sample's values and the seed drawn
    at ``fit`` (``seed_``), so they are reproducible for a fitted model, whatever ``random_state``, and do not depend
    on the other samples of the call. States that miss the steady-state tolerance are reported by a
    :class:`~sklearn.exceptions.ConvergenceWarning`.
    """

    _fitted_attribute = "seed_"
    _parameter_constraints: ClassVar[dict] = {
        "hidden": [Pattern(r"(layered|all-to-all):[0-9]+", "'layered:H' or 'all-to-all:H' with an integer H >= 0 "
                                                           "hidden units")],
        "beta": [POSITIVE], "learning_rate": [POSITIVE], "optimizer": [Options("sgd", "adam")],
        "n_iterations": [COUNT], "batch_per_class": [None, COUNT], "n_inits": [COUNT],
        "input_range": [None, RealRange()], "tol": [POSITIVE],
        "method": [Options("newton", "continuation", "ode")],
        "engine": [None, InstanceOf(str, "an engine name"), InstanceOf(BaseEngine, "an engine")],
        "random_state": [None, SEED], "progress": [InstanceOf(bool, "True or False")],
    }

    def __init__(self, hidden: str = "layered:20", beta: float = 0.1, learning_rate: float = 0.01,
                 optimizer: str = "sgd", n_iterations: int = 500, batch_per_class: int | None = 30,
                 n_inits: int = 1, input_range: tuple[float, float] | None = None, tol: float = 1e-10,
                 method: str = "newton", engine: str | None = None, random_state: int | None = None, progress: bool = False):
        self.hidden = hidden
        self.beta = beta
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.n_iterations = n_iterations
        self.batch_per_class = batch_per_class
        self.n_inits = n_inits
        self.input_range = input_range
        self.tol = tol
        self.method = method
        self.engine = engine
        self.random_state = random_state
        self.progress = progress

    def _relax_options(self) -> RelaxOptions:
        return RelaxOptions.for_tolerance(self.method, self.tol)

    def _topology(self, n_in: int, n_out: int) -> topo_mod.Topology:
        kind, _, size = self.hidden.partition(":")
        h = int(size)
        if kind == "layered":
            return topo_mod.layered([n_in, h, n_out] if h else [n_in, n_out])
        return topo_mod.all_to_all(n_in + h + n_out, n_in, n_out)

    def _encode(self, X) -> np.ndarray:
        lo, hi = self.input_range_
        with np.errstate(over="ignore", invalid="ignore"):
            phases = np.pi * ((X - lo) / (hi - lo) - 0.5)
        if not np.all(np.isfinite(phases)):
            raise InvalidInputError(f"X has values too far outside input_range {self.input_range_} to be encoded as "
                                    "phases (they overflow)")
        return phases

    def fit(self, X, y) -> XYClassifier:
        """Train on features ``X`` (n, d) and class labels ``y`` (n,)."""
        self._start_fit()
        X, self.classes_, labels = self._fit_data(X, y)
        if self.input_range is not None:
            lo, hi = self.input_range
        else:
            lo, hi = X.min(), X.max()
            if not hi > lo:
                raise InvalidInputError(f"X has one value ({float(lo)!r}) in every feature, so it gives no input_range; "
                                        "pass input_range=(min, max)")
        self.input_range_ = (float(lo), float(hi))
        self.topology_ = self._topology(X.shape[1], self.classes_.size)
        rng = np.random.default_rng(self.random_state)
        scheme = "layered" if self.topology_.layers else "all-to-all"
        params = xy.init_params(self.topology_, rng, scheme=scheme)
        data = PhaseDataset(self._encode(X), encode_classes(labels, self.classes_.size), labels, "fit")
        config = EPConfig(beta=self.beta, learning_rate=self.learning_rate, optimizer=self.optimizer,
                          n_iterations=self.n_iterations, n_inits=self.n_inits, batch_per_class=self.batch_per_class,
                          seed=int(rng.integers(2**31)), relax=self._relax_options())
        self.history_ = train_ep(self.topology_, data, params, config, engine=self.engine, progress=self.progress)
        h = self.history_
        self.params_ = {name: h[name].values[0] for name in ("W", "h", "psi")}
        self.seed_ = int(rng.integers(2**63))  # initial states of predictions (drawn after training's draws)
        return self

    def _initial_states(self, X: np.ndarray) -> np.ndarray:
        """(n, 1, N) phases U(-pi, pi) from a generator seeded by ``seed_`` and each sample's bits, inputs clamped."""
        n_units = self.topology_.n_units
        bits = np.ascontiguousarray(X + 0.0).view(np.uint64)  # + 0.0: -0.0 and 0.0 are one input
        phi = np.stack([np.random.default_rng([self.seed_, *row.tolist()]).uniform(-np.pi, np.pi, n_units)
                        for row in bits]) if X.shape[0] else np.zeros((0, n_units))
        phi[:, : X.shape[1]] = self._encode(X)
        return phi[:, None, :]

    def output_phases(self, X) -> np.ndarray:
        """Output phases (samples, n_classes) at a free equilibrium from one random initial state per sample."""
        X = self._test_data(X)
        phi0 = self._initial_states(X)
        engine, options, n = get_engine(self.engine), self._relax_options(), X.shape[0]
        out, converged = [], []
        for start in range(0, n, PREDICT_CHUNK):
            chunk = phi0[start:start + PREDICT_CHUNK]
            padded = np.concatenate([chunk, np.repeat(chunk[-1:], PREDICT_CHUNK - chunk.shape[0], axis=0)])
            eq = engine.relax("xy", self.params_, padded, self.topology_, options=options)
            out.append(eq.phi[: chunk.shape[0], 0][:, self.topology_.output_units])
            converged.append(eq.converged[: chunk.shape[0], 0])
        missed = n - int(np.sum(np.concatenate(converged))) if n else 0
        if missed:
            warnings.warn(f"{missed} of {n} samples did not reach a stable equilibrium within tol = {self.tol:g}; "
                          "their predictions may be unreliable", ConvergenceWarning, stacklevel=2)
        return np.concatenate(out) if out else np.zeros((0, self.classes_.size))

    def decision_function(self, X) -> np.ndarray:
        """``sin(phi)`` of the output units (n, n_classes); for two classes the difference class 1 - class 0 (n,)."""
        return self._binary_or_all(np.sin(self.output_phases(X)))

    def predict(self, X) -> np.ndarray:
        """Class with the largest sin(phi) among the output units."""
        scores = np.sin(self.output_phases(X))
        return self.classes_[np.argmax(scores, axis=-1)]


class ScatteringClassifier(_Classifier):
    """Layered scattering-network classifier for non-negative features in 0..16 (optdigits grey levels).

    ``hidden=0`` couples the input layer straight to the outputs; ``batch_size`` is capped at the number of training
    samples. Learned state: ``classes_``, ``network_`` (the final :class:`~pyosc.models.scattering.LayeredNetwork`)
    and ``history_`` (an ``xarray.Dataset``).
    """

    _fitted_attribute = "network_"
    _parameter_constraints: ClassVar[dict] = {
        "hidden": [Interval(Integral, 0, topo_mod.MAX_UNITS)], "replication": [REPLICATION], "kappa": [POSITIVE], "background": [POSITIVE],
        "n_iterations": [COUNT], "batch_size": [COUNT], "optimizer": [Options("sgd", "adam")],
        "learning_rate": [POSITIVE], "offset_lr_scale": [POSITIVE], "loss": [Options(*LOSSES)], "beta": [POSITIVE],
        "random_state": [None, SEED],
    }

    def __init__(self, hidden: int = 80, replication: int = 2, kappa: float = KAPPA, background: float = BACKGROUND,
                 n_iterations: int = 1000, batch_size: int = 200, optimizer: str = "sgd", learning_rate: float = 0.2,
                 offset_lr_scale: float = 4.0, loss: str = "cross-entropy", beta: float = 8.0,
                 random_state: int | None = None):
        self.hidden = hidden
        self.replication = replication
        self.kappa = kappa
        self.background = background
        self.n_iterations = n_iterations
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.offset_lr_scale = offset_lr_scale
        self.loss = loss
        self.beta = beta
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True  # features are grey levels 0..16 (blank .. full ink), never negative
        return tags

    def _detunings(self, X: np.ndarray) -> np.ndarray:
        _sklearn_checked(check_non_negative, X, type(self).__name__)
        if X.size and X.max() > PIXEL_MAX:
            raise InvalidInputError(f"X must hold grey levels: pixels must lie in [0, {PIXEL_MAX:g}], got values up "
                                    f"to {X.max():g}")
        return encode_detunings(X, self.replication, self.background)

    def fit(self, X, y) -> ScatteringClassifier:
        """Train on pixels ``X`` (n, D) in 0..16 and labels ``y`` (n,); the accuracy on X is logged every
        ``n_iterations // 10`` iterations in ``history_``."""
        self._start_fit()
        X, self.classes_, labels = self._fit_data(X, y)
        x = self._detunings(X)
        seed = int(np.random.default_rng(self.random_state).integers(2 ** 31))
        sizes = [x.shape[1]] + ([self.hidden] if self.hidden else []) + [self.classes_.size]
        network = paper_initialisation(sizes, np.random.default_rng(seed), kappa=self.kappa)
        config = TrainConfig(n_iterations=self.n_iterations, batch_size=min(self.batch_size, x.shape[0]),
                             optimizer=self.optimizer, learning_rate=self.learning_rate,
                             lr_scale={"detuning_0": self.offset_lr_scale}, loss=self.loss, beta=self.beta,
                             eval_every=max(1, self.n_iterations // 10), seed=seed)
        self.network_, _, self.history_ = train_network(network, x, labels, x, labels, config)
        return self

    def outputs(self, X) -> np.ndarray:
        """The outputs ``Im S_ll`` (n, n_classes)."""
        x = self._detunings(self._test_data(X))
        return layered_outputs(self.network_, x)

    def decision_function(self, X) -> np.ndarray:
        """The outputs ``Im S_ll`` (n, n_classes); for two classes the difference class 1 - class 0 (n,)."""
        return self._binary_or_all(self.outputs(X))

    def predict(self, X) -> np.ndarray:
        """The class with the largest output."""
        scores = self.outputs(X)
        return self.classes_[np.argmax(scores, axis=1)]


__all__ = ["NotFittedError", "ScatteringClassifier", "XYClassifier"]
