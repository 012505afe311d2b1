"""Resistor networks as the DC analogue of scattering networks (Wanjura & Marquardt, SI S20-S23).

Kirchhoff: node currents ``I = L V`` with the Laplacian ``L_ii = sum_k c_ik``, ``L_ij = -c_ij`` (conductances
c = 1/R, siemens if R is in ohms). L is singular (uniform potentials), so the Green's function is its
pseudo-inverse ``G = (L + P)^-1 - P`` with ``P = 11^T / N`` (connected networks). Two-point resistances are
``R_ij = G_ii + G_jj - 2 G_ij`` and, with ``u = e_k - e_l``, ``dL/dc_kl = u u^T`` gives the measurable gradient
``dR_ij / dc_kl = -[(G_ik - G_il) - (G_jk - G_jl)]^2``.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse.csgraph import connected_components

from pyosc.errors import InvalidInputError, as_real_array


def _edges(n_nodes: int, edges) -> np.ndarray:
    e = np.asarray(edges)
    if e.dtype.kind not in "iu" or e.ndim != 2 or e.shape[1] != 2:
        raise InvalidInputError(f"edges must be an (E, 2) integer array, got dtype {e.dtype}, shape {e.shape}")
    if e.size and (e.min() < 0 or e.max() >= n_nodes):
        raise InvalidInputError(f"edges must index nodes 0..{n_nodes - 1}")
    if np.any(e[:, 0] == e[:, 1]):
        raise InvalidInputError("edges must join two different nodes")
    return e.astype(np.int64)


def laplacian(n_nodes: int, edges, conductance) -> np.ndarray:
    """The weighted graph Laplacian (N, N) for conductances (E,) > 0 on ``edges`` (parallel edges add)."""
    e = _edges(n_nodes, edges)
    c = as_real_array("conductance", conductance, shape=(len(e),))
    if np.any(c <= 0):
        raise InvalidInputError(f"conductance must be > 0 (a resistor of finite resistance), got minimum {c.min():g}")
    lap = np.zeros((n_nodes, n_nodes))
    np.add.at(lap, (e[:, 0], e[:, 1]), -c)
    np.add.at(lap, (e[:, 1], e[:, 0]), -c)
    lap[np.diag_indices(n_nodes)] = -lap.sum(axis=1)
    return lap


def green_function(lap: np.ndarray) -> np.ndarray:
    """Pseudo-inverse ``(L + P)^-1 - P`` of a connected network's Laplacian."""
    lap = as_real_array("lap", lap, ndim=2)
    n = lap.shape[0]
    if lap.shape != (n, n) or not np.allclose(lap, lap.T):
        raise InvalidInputError(f"lap must be a symmetric square matrix, got shape {lap.shape}")
    n_parts = connected_components(lap != 0, directed=False)[0]
    if n_parts > 1:
        raise InvalidInputError(f"the resistor network is not connected ({n_parts} parts): some node pairs have "
                                "infinite resistance")
    p = np.full((n, n), 1.0 / n)
    return np.linalg.inv(lap + p) - p


def two_point_resistance(green: np.ndarray, pairs) -> np.ndarray:
    """``R_ij = G_ii + G_jj - G_ij - G_ji`` for each (i, j) in ``pairs`` (P, 2)."""
    p = _edges(green.shape[0], pairs)
    i, j = p[:, 0], p[:, 1]
    return green[i, i] + green[j, j] - green[i, j] - green[j, i]


def resistance_gradient(green: np.ndarray, pairs, edges) -> np.ndarray:
    """``dR_ij / dc_kl = -[(G_ik - G_il) - (G_jk - G_jl)]^2``: (P, E) for measured pairs and conductance edges."""
    p = _edges(green.shape[0], pairs)
    e = _edges(green.shape[0], edges)
    i, j, k, l_ = p[:, 0, None], p[:, 1, None], e[None, :, 0], e[None, :, 1]
    return -((green[i, k] - green[i, l_]) - (green[j, k] - green[j, l_])) ** 2
