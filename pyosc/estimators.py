"""scikit-learn estimators: classifiers backed by an XY network trained by equilibrium propagation
(:class:`XYClassifier`) and by a layered linear scattering network (:class:`ScatteringClassifier`).

``ScatteringClassifier().fit(pixels, labels)`` encodes grey levels 0..16 into input detunings
``background (1 - p / 16)`` replicated ``replication`` times, builds the paper's initialisation
(layers D R - ``hidden`` - n_classes, kappa on every mode) and trains with mini-batch SGD or Adam on the
softmax cross-entropy of ``beta * Im S_ll`` (or the squared error). ``predict`` returns the class whose output
``Im S_ll`` is largest.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from pyosc import topology as topo_mod
from pyosc.data.datasets import PhaseDataset, encode_classes
from pyosc.data.detunings import BACKGROUND, KAPPA, encode_detunings
from pyosc.engines import get_engine
from pyosc.engines.base import RelaxOptions
from pyosc.errors import InvalidInputError, as_class_labels, as_real_array
from pyosc.models import xy
from pyosc.training.ep import EPConfig, predict_phases, train_ep
from pyosc.training.green import TrainConfig, layered_outputs, paper_initialisation, train_network


class XYClassifier(ClassifierMixin, BaseEstimator):
    """Classify with the free equilibrium of an XY network (one output unit per class, argmax sin(phi)).

    Features are mapped linearly from ``input_range`` (default: the training data's min and max of
    all features) onto input phases in [-pi/2, pi/2]. ``hidden`` is ``"layered:H"`` (one hidden
    layer of H units) or ``"all-to-all:H"`` (H hidden units, every pair coupled).
    """

    def __init__(self, hidden: str = "layered:20", beta: float = 0.1, learning_rate: float = 0.01,
                 optimizer: str = "sgd", n_iterations: int = 500, batch_per_class: int | None = 30,
                 n_inits: int = 1, input_range: tuple[float, float] | None = None, tol: float = 1e-10,
                 engine: str | None = None, random_state: int | None = None, progress: bool = False):
        self.hidden = hidden
        self.beta = beta
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.n_iterations = n_iterations
        self.batch_per_class = batch_per_class
        self.n_inits = n_inits
        self.input_range = input_range
        self.tol = tol
        self.engine = engine
        self.random_state = random_state
        self.progress = progress

    def _topology(self, n_in: int, n_out: int) -> topo_mod.Topology:
        kind, _, size = str(self.hidden).partition(":")
        if kind not in ("layered", "all-to-all") or not size.isdigit():
            raise InvalidInputError(f"hidden must be 'layered:H' or 'all-to-all:H', got {self.hidden!r}")
        h = int(size)
        if kind == "layered":
            return topo_mod.layered([n_in, h, n_out] if h else [n_in, n_out])
        return topo_mod.all_to_all(n_in + h + n_out, n_in, n_out)

    def _encode(self, X) -> np.ndarray:
        lo, hi = self.input_range_
        return np.pi * ((X - lo) / (hi - lo) - 0.5)

    def fit(self, X, y):
        X = as_real_array("X", X, ndim=2)
        self.classes_, labels = as_class_labels(y, X.shape[0])
        lo, hi = self.input_range if self.input_range is not None else (X.min(), X.max())
        if not hi > lo:
            raise InvalidInputError(f"input_range must have max > min, got {(lo, hi)}")
        self.input_range_ = (float(lo), float(hi))
        self.n_features_in_ = X.shape[1]
        self.topology_ = self._topology(X.shape[1], self.classes_.size)
        rng = np.random.default_rng(self.random_state)
        scheme = "layered" if self.topology_.layers else "all-to-all"
        params = xy.init_params(self.topology_, rng, scheme=scheme)
        data = PhaseDataset(self._encode(X), encode_classes(labels, self.classes_.size), labels, "fit")
        config = EPConfig(beta=self.beta, learning_rate=self.learning_rate, optimizer=self.optimizer,
                          n_iterations=self.n_iterations, n_inits=self.n_inits, batch_per_class=self.batch_per_class,
                          seed=int(rng.integers(2**31)), relax=RelaxOptions(tol=self.tol))
        self.history_ = train_ep(self.topology_, data, params, config, engine=self.engine, progress=self.progress)
        h = self.history_
        self.params_ = {name: h[name].values[0] for name in ("W", "h", "psi")}
        return self

    def output_phases(self, X) -> np.ndarray:
        """Output phases (samples, n_classes) at a free equilibrium from one random initial state."""
        if not hasattr(self, "params_"):
            raise InvalidInputError("this XYClassifier is not fitted yet; call fit first")
        X = as_real_array("X", X, shape=(None, self.n_features_in_))
        rng = np.random.default_rng(self.random_state)
        out, _ = predict_phases(get_engine(self.engine), self.params_, self.topology_, self._encode(X), rng,
                                RelaxOptions(tol=self.tol))
        return out[:, 0, :]

    def predict(self, X) -> np.ndarray:
        """Class with the largest sin(phi) among the output units."""
        phases = self.output_phases(X)
        return self.classes_[np.argmax(np.sin(phases), axis=-1)]


class ScatteringClassifier(ClassifierMixin, BaseEstimator):
    """Layered scattering-network classifier for non-negative features in 0..16 (optdigits grey levels).

    ``hidden=0`` couples the input layer straight to the outputs. Learned state: ``classes_``, ``network_``
    (the final :class:`~pyosc.models.scattering.LayeredNetwork`) and ``history_`` (an ``xarray.Dataset``).
    """

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

    def fit(self, X, y) -> ScatteringClassifier:
        """Train on pixels ``X`` (n, D) in 0..16 and labels ``y`` (n,); the accuracy on X is logged every
        ``n_iterations // 10`` iterations in ``history_``."""
        x = encode_detunings(X, self.replication, self.background)
        self.classes_, labels = as_class_labels(y, x.shape[0])
        if not isinstance(self.hidden, (int, np.integer)) or self.hidden < 0:
            raise InvalidInputError(f"hidden must be an integer >= 0, got {self.hidden!r}")
        seed = int(np.random.default_rng(self.random_state).integers(2 ** 31))
        sizes = [x.shape[1]] + ([self.hidden] if self.hidden else []) + [self.classes_.size]
        network = paper_initialisation(sizes, np.random.default_rng(seed), kappa=self.kappa)
        config = TrainConfig(n_iterations=self.n_iterations, batch_size=min(self.batch_size, x.shape[0]),
                             optimizer=self.optimizer, learning_rate=self.learning_rate,
                             lr_scale={"detuning_0": self.offset_lr_scale}, loss=self.loss, beta=self.beta,
                             eval_every=max(1, self.n_iterations // 10), seed=seed)
        self.network_, _, self.history_ = train_network(network, x, labels, x, labels, config)
        self.n_features_in_ = x.shape[1] // self.replication
        return self

    def decision_function(self, X) -> np.ndarray:
        """The outputs ``Im S_ll`` (n, n_classes)."""
        if not hasattr(self, "network_"):
            raise InvalidInputError("this ScatteringClassifier is not fitted yet; call fit first")
        x = encode_detunings(X, self.replication, self.background)
        if x.shape[1] != self.network_.sizes[0]:
            raise InvalidInputError(f"X must have {self.n_features_in_} features, got {x.shape[1] // self.replication}")
        return layered_outputs(self.network_, x)

    def predict(self, X) -> np.ndarray:
        """The class with the largest output."""
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]
