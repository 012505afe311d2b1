"""Exceptions raised by pyosc, and the input checks that raise them.

Every public function validates its inputs at the boundary; a failure raises a subclass of
:class:`PyoscError` whose message names the argument, what was wrong and what is allowed.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class PyoscError(Exception):
    """Base class of every error pyosc raises on purpose."""


class InvalidInputError(PyoscError, ValueError):
    """An argument has the wrong shape, type, value or name."""


class InvalidTypeError(InvalidInputError, TypeError):
    """An argument's type cannot be used at all (e.g. a dict among numbers); a TypeError as well."""


class ConvergenceError(PyoscError, RuntimeError):
    """A solver did not reach its tolerance and the caller asked for that to be an error."""


class EngineUnavailableError(PyoscError, ImportError):
    """The requested engine (e.g. Julia) is not installed or cannot start."""


class JuliaError(PyoscError, RuntimeError):
    """The Julia engine failed inside Julia; the message is Julia's (``showerror``)."""


class DataNotFoundError(PyoscError, FileNotFoundError):
    """A data set is neither in the data home nor obtainable by download; the message says how to get it."""


def as_real_array(name: str, value, *, ndim: int | Sequence[int] | None = None,
                  shape: tuple[int | None, ...] | None = None, finite: bool = True) -> np.ndarray:
    """Return ``value`` as a float64 array, checking dimension, shape and finiteness.

    ``shape`` may hold ``None`` for axes of any length. Complex input is rejected, not cast.
    """
    arr = np.asarray(value)
    if np.iscomplexobj(arr):
        raise InvalidInputError(f"{name} must be real, got a complex array")
    if arr.dtype.kind not in "biuf":
        raise InvalidInputError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise InvalidInputError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, "
                                    f"got shape {arr.shape}")
    if shape is not None and (arr.ndim != len(shape)
                              or any(s is not None and s != a for s, a in zip(shape, arr.shape))):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise InvalidInputError(f"{name} must have shape {want}, got {arr.shape}")
    if finite and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise InvalidInputError(f"{name} contains {bad} NaN or infinite value(s)")
    return arr


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Return ``value`` as float if it is a finite number > 0 (or >= 0 with ``allow_zero``); bools and strings are
    refused, not converted."""
    try:
        if isinstance(value, (bool, np.bool_, str, bytes)):
            raise TypeError
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a real number, got {value!r}") from None
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        rel = ">= 0" if allow_zero else "> 0"
        raise InvalidInputError(f"{name} must be finite and {rel}, got {value!r}")
    return v
