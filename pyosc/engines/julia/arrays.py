"""NumPy <-> Julia array layouts of the Julia engine, in NumPy alone (the conventions at the top of
``julia/PyoscEngine/src/PyoscEngine.jl``).

* **Batch arrays cross reversed**: a C-ordered NumPy ``(B, N)`` array goes to Julia as its F-ordered view ``a.T``,
  an ``N x B`` matrix whose columns (one state each) are contiguous; ``(B, N, d)`` arrives as ``d x N x B``. No copy
  on the Python side: juliacall wraps the view (``PyArray``) and the Julia entry points copy it into native arrays.
  Results come back in the same reversed layout and are copied into NumPy by :func:`from_julia` (``np.array(r).T``),
  so no Julia memory reaches xarray. ``B`` flattens NumPy's (samples, inits) axes (:func:`states`); per-sample data
  (targets, inputs) are repeated per initial state (:func:`per_state`).
* **Parameter arrays keep NumPy's index order** (``W[i, j]`` in Julia is ``W[i-1, j-1]`` here) and carry no runs
  axis; 0-d parameters cross as Python floats (:func:`params_to_julia`, :func:`params_from_julia`).
* Index arrays are 0-based ``int64`` (:func:`indices`), masks ``bool``.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def states(a: np.ndarray) -> np.ndarray:
    """``(samples, inits, ...)`` -> ``(samples * inits, ...)``: the flat batch of states ``B``."""
    return a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:])


def per_state(x: np.ndarray, inits: int) -> np.ndarray:
    """Per-sample rows ``(samples, k)`` -> one row per state ``(samples * inits, k)`` (the order of :func:`states`)."""
    return np.repeat(x, inits, axis=0)


def to_julia(a: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """The F-ordered view ``a.T`` of ``a`` as a C-contiguous array of ``dtype`` (copied only if ``a`` is not one):
    what the Julia side sees as an array of the reversed shape, its memory in column-major order."""
    return np.ascontiguousarray(a, dtype=dtype).T


def from_julia(r, dtype: type = np.float64) -> np.ndarray:
    """A NumPy copy of a Julia result array in NumPy's axis order (``np.array(r).T``): owns its memory."""
    return np.array(r, dtype=dtype).T


def indices(units) -> np.ndarray:
    """0-based unit indices as ``int64`` (the Julia side converts them, negative ones count from the end)."""
    return np.ascontiguousarray(units, dtype=np.int64)


def params_to_julia(params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray | float]:
    """One network's parameters for the Julia side: C-contiguous float64 arrays in NumPy's index order, 0-d
    entries as Python floats."""
    out: dict[str, np.ndarray | float] = {}
    for name, value in params.items():
        a = np.asarray(value, dtype=np.float64)
        out[name] = float(a) if a.ndim == 0 else np.ascontiguousarray(a)
    return out


def params_from_julia(d) -> dict[str, np.ndarray]:
    """A Julia ``Dict{String, Any}`` of parameter arrays or numbers (or any mapping) as NumPy float64 copies in
    NumPy's index order (not transposed: parameters keep their order across the bridge)."""
    return {str(name): np.array(d[name], dtype=np.float64) for name in d}
