"""Linear coupled-mode scattering networks (Wanjura & Marquardt, arXiv 2308.16181).

Conventions (all frequencies in one unit, e.g. the paper's code units with kappa = 0.5):

- modes a_j with dynamic matrix H: ``H_jj = Delta_j - i (kappa_j + kappa'_j) / 2`` and ``H_jl = J_jl``
  (real, symmetric beam-splitter couplings), so H = H^T;
- ``kappa_j`` (``kappa_ext``) is the decay into mode j's probe waveguide, ``kappa'_j`` (``kappa_int``) the
  intrinsic loss; a negative ``kappa_int`` is gain;
- Green's function ``G(w) = [i (w - H)]^-1`` (complex symmetric), ``S(w) = 1 + sqrt(K) G(w) sqrt(K)``;
- an output is a quadrature ``y_l = Re(exp(-i phi) S_{r_l c_l})``; ``phi = pi/2`` gives ``Im S`` (the paper's choice);
- every derivative is a product of Green's-function elements: ``dS/dtheta = i sqrt(K) G (dH/dtheta) G sqrt(K)``.

This module holds the physics only (matrices, closed forms, gradient formulas); the linear solves that
produce columns of G live in :mod:`pyosc.engines.scattering`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from pyosc.errors import InvalidInputError, as_real_array

IM_PHASE = np.pi / 2
"""Quadrature phase that makes the output ``Im S``."""


class UnstableNetworkError(InvalidInputError):
    """The network has gain and a mode that grows in time, so there is no stable steady state."""


def _int_array(name: str, value, ndim: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise InvalidInputError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise InvalidInputError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    return arr.astype(np.int64)


def _decays(n: int, kappa_ext, kappa_int, where: str) -> tuple[np.ndarray, np.ndarray]:
    ke = np.broadcast_to(as_real_array(f"kappa_ext{where}", kappa_ext, ndim=(0, 1)), (n,)) \
        if np.ndim(kappa_ext) == 0 else as_real_array(f"kappa_ext{where}", kappa_ext, shape=(n,))
    ki = np.zeros(n) if kappa_int is None else (
        np.broadcast_to(as_real_array(f"kappa_int{where}", kappa_int, ndim=0), (n,)) if np.ndim(kappa_int) == 0
        else as_real_array(f"kappa_int{where}", kappa_int, shape=(n,)))
    if np.any(ke < 0):
        raise InvalidInputError(f"kappa_ext{where} (extrinsic decay) must be >= 0, got minimum {ke.min():g}")
    return np.array(ke, dtype=np.float64), np.array(ki, dtype=np.float64)


# --- general networks ----------------------------------------------------------------------------

@dataclass(frozen=True)
class CoupledModeNetwork:
    """A network of N coupled modes with real symmetric couplings on an edge list.

    ``detuning`` (N,): Delta_j; ``edges`` (E, 2) int: coupled pairs (k, l), k != l, each pair once;
    ``coupling`` (E,): J_kl; ``kappa_ext`` / ``kappa_int`` (N,) or scalars: extrinsic / intrinsic decay;
    ``input_sites`` (R D,) int: modes whose detunings receive the (replicated) inputs, so that for an input
    row ``x_rep`` the detunings are ``Delta + scatter(x_rep, input_sites)``; the base detunings at the input
    sites are the trainable offsets.
    """

    detuning: np.ndarray
    edges: np.ndarray
    coupling: np.ndarray
    kappa_ext: np.ndarray
    kappa_int: np.ndarray
    input_sites: np.ndarray

    def __init__(self, detuning, edges, coupling, kappa_ext, kappa_int=None, input_sites=None):
        det = as_real_array("detuning", detuning, ndim=1)
        n = det.size
        e = _int_array("edges", np.empty((0, 2), np.int64) if edges is None else edges, 2)
        if e.shape[1] != 2:
            raise InvalidInputError(f"edges must have shape (E, 2), got {e.shape}")
        if e.size and (e.min() < 0 or e.max() >= n):
            raise InvalidInputError(f"edges must index modes 0..{n - 1}, got range [{e.min()}, {e.max()}]")
        if np.any(e[:, 0] == e[:, 1]):
            raise InvalidInputError("edges must not couple a mode to itself (put that in the detuning)")
        key = np.sort(e, axis=1)
        if np.unique(key[:, 0] * n + key[:, 1]).size != len(e):
            raise InvalidInputError("edges must list each coupled pair once")
        j = as_real_array("coupling", coupling, shape=(len(e),))
        ke, ki = _decays(n, kappa_ext, kappa_int, "")
        ins = _int_array("input_sites", np.empty(0, np.int64) if input_sites is None else input_sites, 1)
        if ins.size and (ins.min() < 0 or ins.max() >= n):
            raise InvalidInputError(f"input_sites must index modes 0..{n - 1}, got range [{ins.min()}, {ins.max()}]")
        for name, val in (("detuning", det), ("edges", e), ("coupling", j), ("kappa_ext", ke),
                          ("kappa_int", ki), ("input_sites", ins)):
            object.__setattr__(self, name, val)

    @property
    def n_modes(self) -> int:
        return self.detuning.size

    @property
    def kappa_total(self) -> np.ndarray:
        return self.kappa_ext + self.kappa_int

    @property
    def has_gain(self) -> bool:
        """True if some mode has net gain (kappa_ext + kappa_int < 0); then stability must be checked."""
        return bool(np.any(self.kappa_total < 0))

    def replace(self, **changes) -> CoupledModeNetwork:
        """A copy with some fields replaced (validated again)."""
        fields = dict(detuning=self.detuning, edges=self.edges, coupling=self.coupling, kappa_ext=self.kappa_ext,
                      kappa_int=self.kappa_int, input_sites=self.input_sites)
        fields.update(changes)
        return CoupledModeNetwork(**fields)

    def parameters(self) -> dict[str, np.ndarray]:
        """Trainable parameters by name: ``detuning`` (N,) (offsets at the input sites) and ``coupling`` (E,)."""
        return {"detuning": self.detuning, "coupling": self.coupling}

    def with_parameters(self, params: dict[str, np.ndarray]) -> CoupledModeNetwork:
        """A copy with the parameters of :meth:`parameters` replaced by ``params`` (missing ones kept)."""
        return self.replace(**{k: params[k] for k in ("detuning", "coupling") if k in params})

    def detunings_for(self, x_rep=None) -> np.ndarray:
        """Detunings with the inputs injected: (B, N) for ``x_rep`` (B, len(input_sites)), (1, N) for None."""
        if x_rep is None:
            return self.detuning[None, :]
        x = as_real_array("x_rep", x_rep, shape=(None, self.input_sites.size))
        det = np.repeat(self.detuning[None, :], x.shape[0], axis=0)
        det[:, self.input_sites] += x
        return det

    def coupling_matrix(self) -> sp.csr_matrix:
        """The symmetric real coupling matrix J (N x N, sparse)."""
        n = self.n_modes
        rows = np.concatenate([self.edges[:, 0], self.edges[:, 1]])
        cols = np.concatenate([self.edges[:, 1], self.edges[:, 0]])
        return sp.csr_matrix((np.concatenate([self.coupling, self.coupling]), (rows, cols)), shape=(n, n))

    def system_matrix(self, detuning, omega: float = 0.0) -> sp.csc_matrix:
        """``M = i (omega - H)`` (sparse CSC, complex) for one detuning vector (N,); G = M^-1."""
        d = as_real_array("detuning", detuning, shape=(self.n_modes,))
        diag = 1j * (omega - d) - self.kappa_total / 2
        return (sp.diags(diag) - 1j * self.coupling_matrix()).tocsc()

    def dense_system_matrices(self, detunings, omega: float = 0.0) -> np.ndarray:
        """``M = i (omega - H)`` as a dense (B, N, N) complex array for detunings (B, N)."""
        d = as_real_array("detunings", detunings, shape=(None, self.n_modes))
        m = np.repeat((-1j * self.coupling_matrix().toarray())[None], d.shape[0], axis=0)
        idx = np.arange(self.n_modes)
        m[:, idx, idx] = 1j * (omega - d) - self.kappa_total / 2
        return m

    def check_stable(self, detunings) -> None:
        """Raise :class:`UnstableNetworkError` if some eigenvalue of H has Im >= 0 (only possible with gain).

        Without gain (kappa_ext + kappa_int >= 0 everywhere) H's eigenvalues have Im <= 0 by construction and
        nothing is computed.
        """
        if not self.has_gain:
            return
        for row in np.atleast_2d(detunings):
            h = 1j * self.dense_system_matrices(row[None])[0]  # M = -iH at omega = 0, so H = iM
            growth = np.max(np.linalg.eigvals(h).imag)
            if growth >= 0:
                raise UnstableNetworkError(
                    f"the network has gain (kappa_ext + kappa_int < 0 on {int(np.sum(self.kappa_total < 0))} "
                    f"mode(s)) and a mode grows at rate {2 * growth:g}: there is no stable steady state")


@dataclass(frozen=True)
class Readout:
    """Which S elements are measured and in which quadrature: ``y_l = Re(exp(-i phase) S[rows[l], cols[l]])``.

    ``rows`` / ``cols`` (L,) int index the modes (for a layered network: the last layer's modes).
    """

    rows: np.ndarray
    cols: np.ndarray
    phase: float = IM_PHASE

    def __init__(self, rows, cols, phase: float = IM_PHASE):
        r = _int_array("rows", rows, 1)
        c = _int_array("cols", cols, 1)
        if r.shape != c.shape:
            raise InvalidInputError(f"rows and cols must have the same length, got {r.size} and {c.size}")
        object.__setattr__(self, "rows", r)
        object.__setattr__(self, "cols", c)
        object.__setattr__(self, "phase", float(phase))

    @classmethod
    def diagonal(cls, sites, phase: float = IM_PHASE) -> Readout:
        """Scheme (ii): y_l = quadrature of S_{s_l s_l} (one measurement per output)."""
        s = np.asarray(sites)
        return cls(s, s, phase)

    @classmethod
    def probe(cls, probe_site: int, sites, phase: float = IM_PHASE) -> Readout:
        """Scheme (i): probe one site and read the response at every output site: S_{s_l, probe}."""
        s = np.asarray(sites)
        return cls(s, np.full(s.shape, int(probe_site)), phase)

    @property
    def n_outputs(self) -> int:
        return self.rows.size

    def sites(self) -> np.ndarray:
        """The distinct modes whose G columns are needed (rows and cols), sorted."""
        return np.unique(np.concatenate([self.rows, self.cols]))

    def check_sites(self, n_modes: int, what: str = "modes") -> None:
        if self.rows.size and (min(self.rows.min(), self.cols.min()) < 0
                               or max(self.rows.max(), self.cols.max()) >= n_modes):
            raise InvalidInputError(f"readout rows/cols must index the {n_modes} {what}")


# --- closed forms ------------------------------------------------------------------------------

def single_mode_s(detuning, kappa_ext, kappa_int=0.0, omega=0.0):
    """Reflection of one mode: ``S = 1 + kappa / (i (omega - Delta) - (kappa + kappa') / 2)``."""
    return 1.0 + kappa_ext / (1j * (omega - np.asarray(detuning)) - (kappa_ext + kappa_int) / 2)


# --- outputs and gradients from Green's-function columns -----------------------------------------

def s_elements(g_rows_cols: np.ndarray, kappa_rows: np.ndarray, kappa_cols: np.ndarray,
               same_site: np.ndarray) -> np.ndarray:
    """``S_rc = delta_rc + sqrt(kappa_r kappa_c) G_rc`` for (B, L) Green's-function elements G_rc."""
    return same_site.astype(np.float64) + np.sqrt(kappa_rows * kappa_cols) * g_rows_cols


def quadrature(s: np.ndarray, phase: float) -> np.ndarray:
    """``Re(exp(-i phase) S)``; phase = pi/2 gives Im S."""
    return np.real(np.exp(-1j * phase) * s)


def output_weights(dcost_dy: np.ndarray, readout: Readout, kappa_rows: np.ndarray,
                   kappa_cols: np.ndarray) -> np.ndarray:
    """Complex weights ``w_l = dC/dy_l * exp(-i phi) * i * sqrt(kappa_r kappa_c)`` (B, L).

    With them ``dC/dDelta_k = Re sum_l w_l G_{k r_l} G_{k c_l}`` and
    ``dC/dJ_kl = Re sum_l w_l (G_{k r_l} G_{l c_l} + G_{l r_l} G_{k c_l})``.
    """
    return np.asarray(dcost_dy) * (1j * np.exp(-1j * readout.phase) * np.sqrt(kappa_rows * kappa_cols))


def detuning_gradient(w: np.ndarray, g_r: np.ndarray, g_c: np.ndarray) -> np.ndarray:
    """Per-sample ``dC/dDelta_k = Re sum_l w_l G_{k r_l} G_{k c_l}``: w (B, L), g_r/g_c (B, N, L) -> (B, N)."""
    return np.real(np.einsum("bl,bkl,bkl->bk", w, g_r, g_c))


def _re_contract(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``Re sum_{b,l} a[b,p,l] b[b,q,l]`` as one real matrix product (P, Q)."""
    a2 = a.transpose(1, 0, 2).reshape(a.shape[1], -1)
    b2 = b.transpose(1, 0, 2).reshape(b.shape[1], -1)
    return np.hstack([a2.real, a2.imag]) @ np.hstack([b2.real, -b2.imag]).T


def coupling_gradient_block(w: np.ndarray, gr_a: np.ndarray, gc_a: np.ndarray, gr_b: np.ndarray,
                            gc_b: np.ndarray, diagonal_readout: bool = False) -> np.ndarray:
    """Batch-summed ``dC/dJ_pq`` for a dense block of couplings between mode sets a (P) and b (Q).

    ``g*_a`` (B, P, L) and ``g*_b`` (B, Q, L) hold G_{p r_l}, G_{p c_l} (and likewise for q). With a diagonal
    readout (r = c) the two terms are equal and one product suffices.
    """
    if diagonal_readout:
        return 2.0 * _re_contract(w[:, None, :] * gr_a, gr_b)
    return _re_contract(w[:, None, :] * gr_a, gc_b) + _re_contract(w[:, None, :] * gc_a, gr_b)


def coupling_gradient_edges(w: np.ndarray, g_r: np.ndarray, g_c: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Batch-summed ``dC/dJ_e`` for each edge e = (k, l): g_r/g_c (B, N, L) -> (E,)."""
    k, l_ = edges[:, 0], edges[:, 1]
    prod = g_r[:, k, :] * g_c[:, l_, :] + g_r[:, l_, :] * g_c[:, k, :]
    return np.real(np.einsum("bl,bel->e", w, prod))


# --- the "measured" form: gradients from S elements only -------------------------------------------

def measured_detuning_gradient(dcost_dy: np.ndarray, readout: Readout, s_r: np.ndarray, s_c: np.ndarray,
                               kappa_ext: np.ndarray, sites: np.ndarray) -> np.ndarray:
    """Per-sample dC/dDelta_k from measured S elements only (eq. 7): (B, K) for the trained modes ``sites``.

    ``s_r[b, i, l] = S_{sites[i], r_l}`` and ``s_c[b, i, l] = S_{sites[i], c_l}`` (S = S^T);
    ``dS_rc/dDelta_k = (i / kappa_k)(S_rk - delta_rk)(S_kc - delta_kc)``; needs kappa_ext > 0 at every k.
    """
    kk = kappa_ext[sites]
    if np.any(kk <= 0):
        raise InvalidInputError("the measured gradient needs a waveguide (kappa_ext > 0) at every trained mode")
    dr = s_r - (sites[:, None] == readout.rows[None, :])
    dc = s_c - (sites[:, None] == readout.cols[None, :])
    w = np.asarray(dcost_dy) * (1j * np.exp(-1j * readout.phase))
    return np.real(np.einsum("bl,bkl,bkl->bk", w, dr, dc)) / kk


def measured_coupling_gradient(dcost_dy: np.ndarray, readout: Readout, s_r: np.ndarray, s_c: np.ndarray,
                               kappa_ext: np.ndarray, sites: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Batch-summed dC/dJ_kl from measured S elements only (eq. 8) for edges between modes in ``sites``.

    ``dS_rc/dJ_kl = (i / sqrt(kappa_k kappa_l)) [(S_rk - d)(S_lc - d) + (S_rl - d)(S_kc - d)]``;
    ``edges`` index positions in ``sites``.
    """
    kk = kappa_ext[sites]
    if np.any(kk <= 0):
        raise InvalidInputError("the measured gradient needs a waveguide (kappa_ext > 0) at every trained mode")
    dr = s_r - (sites[:, None] == readout.rows[None, :])
    dc = s_c - (sites[:, None] == readout.cols[None, :])
    k, l_ = edges[:, 0], edges[:, 1]
    w = np.asarray(dcost_dy) * (1j * np.exp(-1j * readout.phase))
    prod = dr[:, k, :] * dc[:, l_, :] + dr[:, l_, :] * dc[:, k, :]
    return np.real(np.einsum("bl,bel->e", w, prod)) / np.sqrt(kk[k] * kk[l_])


# --- layered networks ----------------------------------------------------------------------------

@dataclass(frozen=True)
class LayeredNetwork:
    """Layers of uncoupled modes with couplings only between consecutive layers.

    ``detunings[n]`` (N_n,): Delta of layer n; for layer 0 these are the trainable offsets added to the inputs
    (``Delta_0 = x_rep + detunings[0]``). ``couplings[n]`` (N_n, N_{n+1}): entry (p, q) couples mode p of
    layer n to mode q of layer n+1. ``kappa_ext[n]`` / ``kappa_int[n]``: per-layer decays (arrays or scalars).
    The outputs are measured on the last layer.
    """

    detunings: tuple[np.ndarray, ...]
    couplings: tuple[np.ndarray, ...]
    kappa_ext: tuple[np.ndarray, ...]
    kappa_int: tuple[np.ndarray, ...]

    def __init__(self, detunings, couplings, kappa_ext, kappa_int=None):
        dets = tuple(as_real_array(f"detunings[{n}]", d, ndim=1) for n, d in enumerate(detunings))
        if len(dets) < 1:
            raise InvalidInputError("a layered network needs at least one layer")
        if len(couplings) != len(dets) - 1:
            raise InvalidInputError(f"need {len(dets) - 1} coupling matrices for {len(dets)} layers, "
                                    f"got {len(couplings)}")
        js = tuple(as_real_array(f"couplings[{n}]", j, shape=(dets[n].size, dets[n + 1].size))
                   for n, j in enumerate(couplings))
        if not isinstance(kappa_ext, (list, tuple)):
            kappa_ext = [kappa_ext] * len(dets)
        if not isinstance(kappa_int, (list, tuple)):
            kappa_int = [kappa_int] * len(dets)
        if len(kappa_ext) != len(dets) or len(kappa_int) != len(dets):
            raise InvalidInputError(f"kappa_ext and kappa_int need one entry per layer ({len(dets)})")
        ke, ki = zip(*(_decays(d.size, e, i, f"[{n}]") for n, (d, e, i) in enumerate(zip(dets, kappa_ext, kappa_int))))
        for name, val in (("detunings", dets), ("couplings", js), ("kappa_ext", ke), ("kappa_int", ki)):
            object.__setattr__(self, name, val)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(d.size for d in self.detunings)

    @property
    def n_layers(self) -> int:
        return len(self.detunings)

    @property
    def has_gain(self) -> bool:
        return any(np.any(e + i < 0) for e, i in zip(self.kappa_ext, self.kappa_int))

    def parameters(self) -> dict[str, np.ndarray]:
        """Trainable parameters by name: ``detuning_n`` (layer-0 offsets included) and ``coupling_n``."""
        out = {f"detuning_{n}": d for n, d in enumerate(self.detunings)}
        out.update({f"coupling_{n}": j for n, j in enumerate(self.couplings)})
        return out

    def with_parameters(self, params: dict[str, np.ndarray]) -> LayeredNetwork:
        """A copy with the parameters of :meth:`parameters` replaced by ``params`` (missing ones kept)."""
        return LayeredNetwork([params.get(f"detuning_{n}", d) for n, d in enumerate(self.detunings)],
                              [params.get(f"coupling_{n}", j) for n, j in enumerate(self.couplings)],
                              self.kappa_ext, self.kappa_int)

    def offsets(self) -> np.ndarray:
        """Start index of each layer in the flat mode numbering of :meth:`to_network`."""
        return np.concatenate([[0], np.cumsum(self.sizes)])

    def to_network(self) -> CoupledModeNetwork:
        """The same network as a general :class:`CoupledModeNetwork` (layers numbered consecutively; the
        layer-0 modes are the input sites)."""
        off = self.offsets()
        edges, coup = [], []
        for n, j in enumerate(self.couplings):
            p, q = np.meshgrid(np.arange(j.shape[0]), np.arange(j.shape[1]), indexing="ij")
            edges.append(np.stack([p.ravel() + off[n], q.ravel() + off[n + 1]], axis=1))
            coup.append(j.ravel())
        e = np.concatenate(edges) if edges else np.empty((0, 2), np.int64)
        return CoupledModeNetwork(np.concatenate(self.detunings), e, np.concatenate(coup) if coup else [],
                                  np.concatenate(self.kappa_ext), np.concatenate(self.kappa_int),
                                  input_sites=np.arange(self.sizes[0]))
