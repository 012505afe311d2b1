"""Datasets and their encodings into oscillator phases or detunings.

Phase encodings (XY / phase-oscillator networks, arXiv 2402.08579): logical True/False and class
targets are phases ``+pi/2`` / ``-pi/2`` (radians); pixels 0..16 map linearly to ``[-pi/2, pi/2]``;
the predicted class is the argmax over output units of ``sin(phi)``.

Files that do not ship with pyosc (UCI optdigits) are looked up in a data home, as scikit-learn's
``fetch_*`` functions do: the ``data_home`` argument, else ``$PYOSC_DATA_HOME``, else ``~/pyosc_data``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pyosc.errors import DataNotFoundError, InvalidInputError, as_real_array
from pyosc.validation import COUNT, check

TRUE_PHASE = np.pi / 2
FALSE_PHASE = -np.pi / 2
PIXEL_MAX = 16.0


@dataclass(frozen=True)
class PhaseDataset:
    """Inputs and targets encoded as phases (radians).

    ``x``: (n_samples, n_inputs) input phases; ``y``: (n_samples, n_outputs) target phases;
    ``labels``: (n_samples,) integer class labels (for XOR the truth value 0/1).
    """

    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray
    name: str

    def first(self, n: int) -> "PhaseDataset":
        """The first ``n`` samples (all of them for ``n`` = 0 or at least their number)."""
        if not n or n >= self.x.shape[0]:
            return self
        return PhaseDataset(self.x[:n], self.y[:n], self.labels[:n], self.name)


def xor() -> PhaseDataset:
    """The four XOR patterns with True = +pi/2, False = -pi/2; one output."""
    bits = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    labels = bits[:, 0] ^ bits[:, 1]
    return PhaseDataset(x=_bits_to_phase(bits), y=_bits_to_phase(labels[:, None]), labels=labels, name="xor")


def _bits_to_phase(bits: np.ndarray) -> np.ndarray:
    return np.where(np.asarray(bits) > 0, TRUE_PHASE, FALSE_PHASE).astype(np.float64)


def encode_pixels(pixels: np.ndarray) -> np.ndarray:
    """Grey levels 0..16 -> phases ``pi (p - 8) / 16`` in ``[-pi/2, pi/2]``."""
    p = as_real_array("pixels", pixels)
    if p.size and (p.min() < 0 or p.max() > PIXEL_MAX):
        raise InvalidInputError(f"pixels must lie in [0, {PIXEL_MAX:g}], got range [{p.min()}, {p.max()}]")
    return np.pi * (p - PIXEL_MAX / 2) / PIXEL_MAX


def encode_classes(labels: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """Class labels -> target phases: +pi/2 on the true class, -pi/2 on the others."""
    n_classes = check("n_classes", n_classes, COUNT)
    labels = as_class_indices("labels", labels, n_classes)
    return _bits_to_phase(np.eye(n_classes, dtype=int)[labels])


def as_class_indices(name: str, labels, n_classes: int) -> np.ndarray:
    """``labels`` as an integer array of class indices in ``0 .. n_classes - 1`` (integral floats are accepted;
    NaN, fractions, complex numbers and other types are refused)."""
    labels = np.asarray(labels)
    if labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
        labels = labels.astype(np.int64)
    if labels.dtype.kind not in "iu":
        raise InvalidInputError(f"{name} must be integer class indices in 0..{n_classes - 1}, got an array of "
                                f"dtype {labels.dtype}" + (" with non-integer values" if labels.dtype.kind == "f"
                                                           else ""))
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise InvalidInputError(f"{name} must lie in 0..{n_classes - 1}, got range [{labels.min()}, {labels.max()}]")
    return labels


def decode_classes(output_phases: np.ndarray) -> np.ndarray:
    """Predicted class = argmax over the last axis of ``sin(phi)``."""
    return np.argmax(np.sin(output_phases), axis=-1)


def accuracy(output_phases: np.ndarray, data: PhaseDataset) -> np.ndarray:
    """Fraction correct per run of output phases ``([runs,] samples, inits, n_out)``: argmax sin(phi) over the outputs,
    or the sign of sin(phi) for one output (the phase encoding of :func:`encode_classes` and :func:`xor`)."""
    if output_phases.shape[-1] == 1:
        pred = (np.sin(output_phases[..., 0]) > 0).astype(int)
        truth = (data.y[:, 0] > 0).astype(int)[:, None]
    else:
        pred = decode_classes(output_phases)
        truth = data.labels[:, None]
    return np.mean(pred == truth, axis=(-2, -1))


def digits_paper_split(n_train_per_class: int = 100, n_test_per_class: int = 70) -> tuple[PhaseDataset, PhaseDataset]:
    """scikit-learn's 8x8 digits with the split of arXiv 2402.08579.

    Images are grouped by class in scikit-learn's order; per class the first ``n_train_per_class``
    form the training pool and the next ``n_test_per_class`` the test set (1000 / 700 by default).
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    counts = np.bincount(d.target)
    if n_train_per_class < 1 or n_test_per_class < 0 or n_train_per_class + n_test_per_class > counts.min():
        raise InvalidInputError(f"need 1 <= n_train_per_class and n_train_per_class + n_test_per_class <= "
                                f"{counts.min()} (smallest class), got {n_train_per_class} + {n_test_per_class}")
    train_idx, test_idx = [], []
    for c in range(10):
        idx = np.flatnonzero(d.target == c)
        train_idx.append(idx[:n_train_per_class])
        test_idx.append(idx[n_train_per_class:n_train_per_class + n_test_per_class])
    train_idx, test_idx = np.concatenate(train_idx), np.concatenate(test_idx)

    def make(idx, name):
        return PhaseDataset(encode_pixels(d.data[idx]), encode_classes(d.target[idx]), d.target[idx], name)

    return make(train_idx, "digits-train"), make(test_idx, "digits-test")


def class_balanced_batch(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``per_class`` samples drawn with replacement from each class (the paper's batches)."""
    check("per_class", per_class, COUNT)
    out = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        out.append(idx[rng.integers(0, idx.size, per_class)])
    return np.concatenate(out)


# --- files in the data home -------------------------------------------------------------------

def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """The folder holding pyosc's data files: ``data_home``, ``$PYOSC_DATA_HOME`` or ``~/pyosc_data``."""
    if data_home is None:
        data_home = os.environ.get("PYOSC_DATA_HOME", Path.home() / "pyosc_data")
    return Path(data_home).expanduser()


def data_not_found(missing: list[str], folder: Path, source: str) -> DataNotFoundError:
    """The error for data files ``missing`` from ``folder``: it says where pyosc looked, how to choose the data home
    (``--data-home``, ``$PYOSC_DATA_HOME``, ``data_home=``) and where the files come from (``source``)."""
    where = "does not exist" if not folder.exists() else f"has no {', '.join(missing)}"
    return DataNotFoundError(
        f"{', '.join(missing)} not found: the folder {folder} {where}. Put the file(s) there ({source}), or point "
        "pyosc at the data home that holds them with --data-home (command line), the PYOSC_DATA_HOME environment "
        "variable or data_home= (Python); the default data home is ~/pyosc_data")


def _data_file(name: str, data_home) -> Path:
    path = get_data_home(data_home) / name
    if not path.is_file():
        raise data_not_found([name], path.parent, "UCI optdigits: https://archive.ics.uci.edu/dataset/80")
    return path


def load_optdigits(subset: str = "train", data_home: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """UCI optdigits (Alpaydin & Kaynak 1998): ``subset`` ``"train"`` (3823 images) or ``"test"`` (1797).

    Returns ``(pixels, labels)``: (n, 64) integer grey levels 0..16 and (n,) labels 0..9.
    """
    files = {"train": "optdigits.tra", "test": "optdigits.tes"}
    if subset not in files:
        raise InvalidInputError(f"subset must be 'train' or 'test', got {subset!r}")
    raw = np.loadtxt(_data_file(files[subset], data_home), delimiter=",", dtype=np.int64)
    if raw.ndim != 2 or raw.shape[1] != 65:
        raise InvalidInputError(f"{files[subset]} must have 65 comma-separated columns, got shape {raw.shape}")
    return raw[:, :64], raw[:, 64]
