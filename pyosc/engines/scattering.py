"""Linear solves that produce columns of the Green's function ``G = [i (omega - H)]^-1`` of a scattering network.

Because H = H^T, G is symmetric: the columns of G at the readout sites are also its rows there, so a
single solve with one right-hand side per readout site gives every element that the outputs and the full
gradient need (the "adjoint" columns are the same columns). Three methods:

- ``"sparse-lu"``: SciPy SuperLU, one factorisation per sample serving all columns (general sparse networks);
- ``"dense"``: batched ``numpy.linalg.solve`` over samples (small networks, many samples);
- ``"layered"``: the Schur-complement recursion over the layers of a :class:`LayeredNetwork`
  (``G~_0 = A_0^-1``, ``G~_n = [A_n + J_{n-1}^T G~_{n-1} J_{n-1}]^-1``,
  ``A_n = diag(i (omega - Delta_n) - kappa_n / 2)``),
  followed by back-substitution ``X_n = i G~_n J_n X_{n+1}`` for the last-layer columns.

:func:`choose_method` picks one automatically; every public function accepts ``method=`` to override it.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse.linalg as spla

from pyosc.errors import InvalidInputError, PyoscError, as_real_array
from pyosc.models.scattering import CoupledModeNetwork, LayeredNetwork

METHODS = ("auto", "sparse-lu", "dense")
DENSE_MODES = 200
"""Networks up to this size are solved densely by ``method="auto"``."""
DENSE_MAX_MODES = 1500
"""Up to this size, networks with at least :data:`DENSE_EDGES_PER_MODE` couplings per mode are solved densely."""
DENSE_EDGES_PER_MODE = 10
# Measured (one core, 20 samples, 10 columns): N = 200 -> dense 1.4-2.0 ms vs SuperLU 2.1-9.3 ms per sample;
# N = 400 -> dense 11-12 ms vs SuperLU 3.7 ms (2 couplings per mode) and 37 ms (60 couplings per mode).


class SingularNetworkError(PyoscError, ArithmeticError):
    """The system matrix i(omega - H) is singular: a lossless normal mode sits exactly at the probe frequency."""


def choose_method(network: CoupledModeNetwork, n_samples: int) -> str:
    """``"dense"`` for small networks (N <= 200) and for densely coupled ones up to N = 1500, as long as the
    batch of dense matrices fits in ~256 MB; otherwise ``"sparse-lu"``."""
    n = network.n_modes
    small = n <= DENSE_MODES or (n <= DENSE_MAX_MODES and len(network.edges) >= DENSE_EDGES_PER_MODE * n)
    if small and n_samples * n * n * 16 <= 256e6:
        return "dense"
    return "sparse-lu"


def _site_array(sites, n_modes: int) -> np.ndarray:
    s = np.asarray(sites)
    if s.dtype.kind not in "iu" or s.ndim != 1:
        raise InvalidInputError(f"sites must be a 1-D integer array, got dtype {s.dtype} and shape {s.shape}")
    if s.size and (s.min() < 0 or s.max() >= n_modes):
        raise InvalidInputError(f"sites must index modes 0..{n_modes - 1}, got range [{s.min()}, {s.max()}]")
    return s.astype(np.int64)


def green_columns(network: CoupledModeNetwork, sites, x_rep=None, *, omega: float = 0.0,
                  method: str = "auto") -> np.ndarray:
    """Columns ``G[:, sites]`` for every sample: (B, N, C) complex.

    ``x_rep`` (B, len(network.input_sites)) are the inputs added to the detunings at the input sites
    (None: one sample with the base detunings). ``omega`` is the probe frequency.
    """
    if not isinstance(network, CoupledModeNetwork):
        raise InvalidInputError(f"network must be a CoupledModeNetwork, got {type(network).__name__}")
    if method not in METHODS:
        raise InvalidInputError(f"method must be one of {METHODS}, got {method!r}")
    cols = _site_array(sites, network.n_modes)
    det = network.detunings_for(x_rep)
    network.check_stable(det)
    if method == "auto":
        method = choose_method(network, det.shape[0])
    if method == "dense":
        m = network.dense_system_matrices(det, omega)
        rhs = np.zeros((network.n_modes, cols.size), np.complex128)
        rhs[cols, np.arange(cols.size)] = 1.0
        try:
            out = np.linalg.solve(m, rhs)
        except np.linalg.LinAlgError:
            raise SingularNetworkError("i(omega - H) is singular: a lossless mode is resonant with the probe") from None
    else:
        out = np.stack([_sparse_columns(network.system_matrix(row, omega), cols) for row in det])
    if not np.all(np.isfinite(out)):
        raise SingularNetworkError("the Green's function is not finite: i(omega - H) is (numerically) singular")
    return out


SYMMETRIC_LU = {"permc_spec": "MMD_AT_PLUS_A", "diag_pivot_thresh": 0.0, "options": {"SymmetricMode": True}}
"""SuperLU options for the complex-symmetric M: minimum-degree ordering of M + M^T, diagonal pivots (little fill-in)."""
PIVOTED_LU = {"permc_spec": "COLAMD"}
"""Fallback with SuperLU's default partial pivoting, used when the symmetric factorisation is inaccurate."""
RESIDUAL_TOL = 1e-10


def _sparse_columns(m, cols: np.ndarray) -> np.ndarray:
    rhs = np.zeros((m.shape[0], cols.size), np.complex128)
    rhs[cols, np.arange(cols.size)] = 1.0
    for options in (SYMMETRIC_LU, PIVOTED_LU):
        try:
            out = spla.splu(m, **options).solve(rhs)
        except RuntimeError:
            continue
        scale = np.max(np.abs(out), initial=1.0) * abs(m).max()
        if np.all(np.isfinite(out)) and np.max(np.abs(m @ out - rhs), initial=0.0) <= RESIDUAL_TOL * scale:
            return out
    raise SingularNetworkError("i(omega - H) is singular: a lossless mode is resonant with the probe")


def layered_green_columns(network: LayeredNetwork, x_rep, *, omega: float = 0.0,
                          all_layers: bool = True) -> list[np.ndarray]:
    """Last-layer columns of G, layer by layer, through the Schur-complement recursion.

    Returns ``[X_0, ..., X_{L-1}]`` with ``X_n[b, p, c] = G[(n, p), (L-1, c)]`` (B, N_n, N_{L-1}); with
    ``all_layers=False`` only ``[X_{L-1}]``, the output block ``G~_{L-1}`` (enough for S and predictions).
    Each sample costs one solve per hidden layer with N_{n+1} right-hand sides and one N_{L-1}^2 inverse.
    """
    if not isinstance(network, LayeredNetwork):
        raise InvalidInputError(f"network must be a LayeredNetwork, got {type(network).__name__}")
    x = as_real_array("x_rep", x_rep, shape=(None, network.sizes[0]))
    if network.has_gain:
        flat = network.to_network()
        flat.check_stable(flat.detunings_for(x))
    a = [1j * (omega - d) - (ke + ki) / 2 for d, ke, ki in zip(network.detunings, network.kappa_ext, network.kappa_int)]
    a0 = 1j * (omega - (x + network.detunings[0])) - (network.kappa_ext[0] + network.kappa_int[0]) / 2  # (B, N_0)
    if np.any(a0 == 0):
        raise SingularNetworkError("a lossless mode of the first layer is resonant with the probe")
    g0 = 1.0 / a0
    n_layers = network.n_layers
    ys = [None]  # ys[n] = G~_n J_n, (B, N_n, N_{n+1}) for n >= 1 (layer 0 is diagonal and never formed)
    if n_layers == 1:
        top = np.zeros((x.shape[0], network.sizes[0], network.sizes[0]), np.complex128)
        idx = np.arange(network.sizes[0])
        top[:, idx, idx] = g0
    else:
        for n in range(1, n_layers):
            sigma = _diag_self_energy(network.couplings[0], g0) if n == 1 else _jt_y(network.couplings[n - 1], ys[-1])
            m = _add_diag(sigma, a[n])
            try:
                if n < n_layers - 1:
                    ys.append(np.linalg.solve(m, np.broadcast_to(network.couplings[n], (m.shape[0],) +
                                                                 network.couplings[n].shape)))
                else:
                    top = np.linalg.inv(m)
            except np.linalg.LinAlgError:
                raise SingularNetworkError(f"the Schur complement of layer {n} is singular") from None
    if not np.all(np.isfinite(top)):
        raise SingularNetworkError("the Green's function is not finite: i(omega - H) is (numerically) singular")
    if not all_layers:
        return [top]
    xs = [top]
    for n in range(n_layers - 2, 0, -1):
        xs.append(1j * (ys[n] @ xs[-1]))
    if n_layers > 1:
        xs.append(1j * g0[:, :, None] * _j_x(network.couplings[0], xs[-1]))
    return xs[::-1]


def _diag_self_energy(j: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``J^T diag(g_b) J`` for real J (P, Q) and complex g (B, P): (B, Q, Q) as one real matrix product
    ``[Re g; Im g] (P, 2B) x K (P, Q Q)`` with ``K_p = J_p J_p^T``."""
    b, q = g.shape[0], j.shape[1]
    k = (j[:, :, None] * j[:, None, :]).reshape(j.shape[0], q * q)
    out = np.concatenate([g.real, g.imag]) @ k
    return (out[:b] + 1j * out[b:]).reshape(b, q, q)


def _j_x(j: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``J X`` for real J (P, Q) and complex X (B, Q, C): (B, P, C)."""
    b, q, c = x.shape
    x2 = x.transpose(1, 0, 2).reshape(q, b * c)
    out = j @ np.concatenate([x2.real, x2.imag], axis=1)
    return (out[:, :b * c] + 1j * out[:, b * c:]).reshape(j.shape[0], b, c).transpose(1, 0, 2)


def _jt_y(j: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``J^T Y`` for real J (P, Q) and complex Y (B, P, Q'), as real matrix products: (B, Q, Q')."""
    b, p, q2 = y.shape
    y2 = y.transpose(1, 0, 2).reshape(p, b * q2)
    out = j.T @ np.hstack([y2.real, y2.imag])
    half = b * q2
    res = (out[:, :half] + 1j * out[:, half:]).reshape(j.shape[1], b, q2)
    return res.transpose(1, 0, 2)


def _add_diag(m: np.ndarray, diag: np.ndarray) -> np.ndarray:
    m = np.ascontiguousarray(m)
    idx = np.arange(m.shape[-1])
    m[:, idx, idx] += diag
    return m
