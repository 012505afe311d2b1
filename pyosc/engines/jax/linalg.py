"""Batched Cholesky factorisation and solve for the JAX engine's Newton systems: small matrices (the kept units of a
relaxation, e.g. 3 for XOR) unrolled into elementwise arithmetic over the batch, larger ones through LAPACK."""
from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.linalg import cho_solve as _lapack_cho_solve

UNROLL = 4
"""Factorisations of at most this many (kept) units are unrolled into elementwise arithmetic over the batch (XOR: 3):
several times faster on CPU than a batch of LAPACK calls on tiny matrices, and quick to compile at this size (the
compile time grows like the cube of the size)."""


def cholesky(a):
    """Lower Cholesky factor of a batch of symmetric matrices (..., n, n): unrolled (a list of rows of entries) for
    n <= UNROLL, else LAPACK's. NaN where a matrix is not positive definite."""
    n = a.shape[-1]
    if n > UNROLL:
        return jnp.linalg.cholesky(a)
    L = [[None] * n for _ in range(n)]
    for j in range(n):
        d = a[..., j, j] - sum(L[j][k] * L[j][k] for k in range(j))
        L[j][j] = jnp.sqrt(jnp.where(d > 0, d, jnp.nan))
        inv = 1.0 / L[j][j]
        for i in range(j + 1, n):
            L[i][j] = (a[..., i, j] - sum(L[i][k] * L[j][k] for k in range(j))) * inv
    return L


def cho_solve(L, b):
    """(L L^T)^-1 b for a factor of :func:`cholesky`, b (..., n)."""
    if not isinstance(L, list):
        return _lapack_cho_solve((L, True), b[..., None])[..., 0]
    n = len(L)
    if n == 0:  # every free unit eliminated (e.g. a single output unit): nothing to solve
        return b
    y = []
    for i in range(n):
        y.append((b[..., i] - sum(L[i][k] * y[k] for k in range(i))) / L[i][i])
    x = [None] * n
    for i in reversed(range(n)):
        x[i] = (y[i] - sum(L[k][i] * x[k] for k in range(i + 1, n))) / L[i][i]
    return jnp.stack(x, -1)
