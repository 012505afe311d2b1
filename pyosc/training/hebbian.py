"""Hebbian couplings for associative memory in oscillator networks (the baseline EP is compared with).

For P binary patterns xi^mu in {-1, +1}^N (pixel +1 <-> phase 0, -1 <-> phase pi relative to a
reference), the Hebbian (outer-product, Hopfield 1982) rule is

    W_kj = (1/N) sum_mu xi_k^mu xi_j^mu,   W_kk = 0,

(Hopfield's 1/N normalisation, so that local fields are O(1) whatever P; shared/research's 1/P
differs only in scale, which matters relative to the SHIL and nudging strengths), so that each
stored pattern is a minimum of the phase energy -1/2 sum W_kj U(phi_k - phi_j) for any
odd coupling function with U(0) > U(pi) (e.g. H = sin). RECONSTRUCTED choice: networks with a
clamped reference oscillator (see :mod:`pyosc.data.patterns`) treat it as one more pixel that is +1 in
every pattern, so its couplings W_0k = (1/P) sum_mu xi_k^mu carry the patterns' mean.
"""
from __future__ import annotations

import numpy as np

from pyosc.errors import InvalidInputError, as_real_array


def hebbian_couplings(patterns) -> np.ndarray:
    """(N, N) Hebbian couplings of ``patterns`` (P, N) with entries +-1; zero diagonal, symmetric."""
    xi = as_real_array("patterns", patterns, ndim=2)
    if xi.shape[0] < 1 or not np.all(np.abs(xi) == 1):
        raise InvalidInputError(f"patterns must be a non-empty (P, N) array of +1/-1 entries, got shape {xi.shape}")
    W = xi.T @ xi / xi.shape[1]
    np.fill_diagonal(W, 0.0)
    return W
