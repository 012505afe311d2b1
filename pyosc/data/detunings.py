"""Data for linear wave-scattering classifiers: optdigits encoded into detunings, and the released parameters.

Input encoding of Wanjura & Marquardt (arXiv 2308.16181, code units, kappa = 0.5): a grey level p in 0..16
becomes the detuning ``x = background * (1 - p / 16)`` (background 5: blank pixels far off resonance, full ink
resonant), and every pixel is replicated R times consecutively (x1, x1, x2, x2, ... for R = 2).

The released trained N2 = 80 classifier (files ``JJ0.csv``, ``JJ1.csv``, ``omega0.csv``, ``omega1.csv``,
``omega2.csv`` in ``<data home>/neuroscatter-N2-80``) uses ``Delta_0 = x_rep + 2 omega0``, ``Delta_1 = -omega1``,
``Delta_2 = -omega2``; :func:`load_neuroscatter_params` returns them as the arrays of a layered network whose
layer-0 detunings are the effective offsets ``2 omega0``.
"""
from __future__ import annotations

import os
from numbers import Integral

import numpy as np

from pyosc.data.datasets import PIXEL_MAX, data_not_found, get_data_home, load_optdigits
from pyosc.errors import InvalidInputError, as_real_array, check_positive
from pyosc.validation import Interval, check

BACKGROUND = 5.0
"""Detuning of a blank pixel (code units, kappa = 0.5)."""
KAPPA = 0.5
"""Decay rate of every mode in the published digits networks (code units)."""
NEUROSCATTER_DIR = "neuroscatter-N2-80"
REPLICATION = Interval(Integral, 1, 100)
"""Allowed copies of each input feature (the papers use 2; more than 100 only multiplies the network's size)."""


def replicate_inputs(x, replication: int) -> np.ndarray:
    """Repeat each input feature ``replication`` times consecutively: (B, D) -> (B, D R) (x1, x1, x2, x2, ...)."""
    arr = as_real_array("x", x, ndim=2)
    check("replication", replication, REPLICATION)
    return np.repeat(arr, replication, axis=1)


def encode_detunings(pixels, replication: int = 2, background: float = BACKGROUND) -> np.ndarray:
    """Grey levels (B, D) in 0..16 -> replicated input detunings ``background (1 - p / 16)``, (B, D R)."""
    p = as_real_array("pixels", pixels, ndim=2)
    if p.size and (p.min() < 0 or p.max() > PIXEL_MAX):
        raise InvalidInputError(f"pixels must lie in [0, {PIXEL_MAX:g}], got range [{p.min()}, {p.max()}]")
    background = check_positive("background", background)
    return replicate_inputs(background * (1.0 - p / PIXEL_MAX), replication)


def load_optdigits_detunings(subset: str = "train", replication: int = 2, background: float = BACKGROUND,
                             data_home: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """UCI optdigits (``"train"``: 3823, ``"test"``: 1797) as replicated input detunings and labels."""
    pixels, labels = load_optdigits(subset, data_home)
    return encode_detunings(pixels, replication, background), labels


def _read_real_csv(path) -> np.ndarray:
    lines = [ln for ln in path.read_text().replace("(", "").replace(")", "").splitlines() if ln.strip()]
    vals = np.array([[complex(v.strip()) for v in ln.split(",") if v.strip()] for ln in lines])
    if np.max(np.abs(vals.imag), initial=0.0) > 0:
        raise InvalidInputError(f"{path.name} must hold real parameters, found nonzero imaginary parts")
    return vals.real.squeeze()


def load_neuroscatter_params(data_home: str | os.PathLike | None = None) -> dict[str, list[np.ndarray]]:
    """The published trained 128-80-10 digit classifier: ``{"detunings": [3 layers], "couplings": [2 blocks]}``,
    the arguments of :class:`pyosc.models.scattering.LayeredNetwork` (whose decays are all :data:`KAPPA`).

    Looks in ``<data home>/neuroscatter-N2-80`` (``data_home``, else ``$PYOSC_DATA_HOME``, else ``~/pyosc_data``).
    """
    folder = get_data_home(data_home) / NEUROSCATTER_DIR
    names = ["JJ0.csv", "JJ1.csv", "omega0.csv", "omega1.csv", "omega2.csv"]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise data_not_found(missing, folder, "the parameters released with arXiv 2308.16181")
    j0, j1, w0, w1, w2 = (_read_real_csv(folder / n) for n in names)
    return {"detunings": [2.0 * w0, -w1, -w2], "couplings": [j0, j1]}
