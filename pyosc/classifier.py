"""scikit-learn style classifier over an XY network trained by equilibrium propagation."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from pyosc import topology as topo_mod
from pyosc.datasets import PhaseDataset, encode_classes
from pyosc.engines.base import RelaxOptions, get_engine
from pyosc.errors import InvalidInputError, as_class_labels, as_real_array
from pyosc.models import xy
from pyosc.training.ep import EPConfig, predict_phases, train_ep


class XYClassifier(ClassifierMixin, BaseEstimator):
    """Classify with the free equilibrium of an XY network (one output unit per class, argmax sin(phi)).

    Features are mapped linearly from ``input_range`` (default: the training data's min and max of
    all features) onto input phases in [-pi/2, pi/2]. ``hidden`` is ``"layered:H"`` (one hidden
    layer of H units) or ``"all-to-all:H"`` (H hidden units, every pair coupled).
    """

    def __init__(self, hidden: str = "layered:20", beta: float = 0.1, learning_rate: float = 0.01,
                 optimizer: str = "sgd", n_iterations: int = 500, batch_per_class: int | None = 30,
                 n_inits: int = 1, input_range: tuple[float, float] | None = None, tol: float = 1e-10,
                 engine: str = "jax", random_state: int | None = None, progress: bool = False):
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
        self.params_ = xy.XYParams(h.W.values[0], h.h.values[0], h.psi.values[0])
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
