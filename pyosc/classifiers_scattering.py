"""A scikit-learn style classifier backed by a layered linear scattering network.

``ScatteringClassifier().fit(pixels, labels)`` encodes grey levels 0..16 into input detunings
``background (1 - p / 16)`` replicated ``replication`` times, builds the paper's initialisation
(layers D R - ``hidden`` - n_classes, kappa on every mode) and trains with mini-batch SGD or Adam on the
softmax cross-entropy of ``beta * Im S_ll`` (or the squared error). ``predict`` returns the class whose output
``Im S_ll`` is largest.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from pyosc.datasets_scattering import BACKGROUND, KAPPA, encode_detunings
from pyosc.errors import InvalidInputError, as_class_labels
from pyosc.training.scattering import (
    TrainConfig,
    layered_outputs,
    paper_initialisation,
    train_network,
)


class ScatteringClassifier(ClassifierMixin, BaseEstimator):
    """Layered scattering-network classifier for non-negative features in 0..16 (optdigits grey levels).

    ``hidden=0`` couples the input layer straight to the outputs. Learned state: ``classes_``, ``network_``
    (the final :class:`~pyosc.models.scattering.LayeredNetwork`) and ``history_`` (an ``xarray.Dataset``).
    """

    def __init__(self, hidden: int = 80, replication: int = 2, kappa: float = KAPPA, background: float = BACKGROUND,
                 iterations: int = 1000, batch_size: int = 200, optimizer: str = "sgd", lr: float = 0.2,
                 offset_lr_scale: float = 4.0, loss: str = "cross-entropy", beta: float = 8.0,
                 random_state: int | None = None):
        self.hidden = hidden
        self.replication = replication
        self.kappa = kappa
        self.background = background
        self.iterations = iterations
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.offset_lr_scale = offset_lr_scale
        self.loss = loss
        self.beta = beta
        self.random_state = random_state

    def fit(self, X, y) -> ScatteringClassifier:
        """Train on pixels ``X`` (n, D) in 0..16 and labels ``y`` (n,); the accuracy on X is logged every
        ``iterations // 10`` iterations in ``history_``."""
        x = encode_detunings(X, self.replication, self.background)
        self.classes_, labels = as_class_labels(y, x.shape[0])
        if not isinstance(self.hidden, (int, np.integer)) or self.hidden < 0:
            raise InvalidInputError(f"hidden must be an integer >= 0, got {self.hidden!r}")
        seed = int(np.random.default_rng(self.random_state).integers(2 ** 31))
        sizes = [x.shape[1]] + ([self.hidden] if self.hidden else []) + [self.classes_.size]
        network = paper_initialisation(sizes, np.random.default_rng(seed), kappa=self.kappa)
        config = TrainConfig(iterations=self.iterations, batch_size=min(self.batch_size, x.shape[0]),
                             optimizer=self.optimizer, lr=self.lr, lr_scale={"detuning_0": self.offset_lr_scale},
                             loss=self.loss, beta=self.beta, eval_every=max(1, self.iterations // 10), seed=seed)
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
