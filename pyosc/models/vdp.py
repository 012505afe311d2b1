"""Van der Pol LC oscillators coupled by programmable (memristive) conductances: the microscopic ONN circuit.

Each neuron k is a parallel LC tank with a nonlinear conductance g(v) = -a v + b v^3 (a, b > 0: negative
resistance at small voltage, saturation at large), after Zoppo, Marrone, Bonnin & Corinto (ISCAS 2022)
as reconstructed in shared/research/optomech_onn.md, Part B.1:

    C dv_k/dt = -i_k - g(v_k) + I_k,      L di_k/dt = v_k,

with the coupling current into node k (units: A when v is in V and G in S)

    I_k = sum_j |G_kj| (s_kj v_j - v_k),   s_kj = sign(G_kj).

A positive G_kj is a memristor of conductance G_kj between nodes k and j. RECONSTRUCTED choice: a
negative G_kj is a memristor of conductance |G_kj| fed from an inverting buffer of node j (current
|G_kj| (-v_j - v_k)), the usual way to get signed weights from positive conductances. The self term
-|G_kj| v_k is present for both signs, so it loads node k in proportion to sum_j |G_kj|.

Memristors are programmed between runs and hold their conductance during the dynamics (their
drift over one retrieval is neglected); :func:`memristor_conductance` maps an internal state in
[0, 1] to a conductance between G_off and G_on (linear window).

Natural units: time in sqrt(LC) (omega_0 = 1/sqrt(LC)), voltage in volts. The weakly nonlinear
(near-harmonic) regime is eps = a sqrt(L/C) << 1, with a limit cycle v ~ 2 sqrt(a/(3b)) cos(omega_0 t);
for eps >~ 3 the oscillation is a relaxation oscillation and the equations are stiff.

State arrays have shape ``(..., N, 2)`` holding ``(v_k, i_k)``; all functions are pure ``jax.numpy``.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

import pyosc.models.float64  # noqa: F401  (JAX in double precision)
from pyosc.errors import InvalidInputError, as_real_array, check_positive


@dataclass(frozen=True)
class VdPCircuit:
    """Element values of one oscillator (SI units or any consistent set).

    ``L`` inductance (H), ``C`` capacitance (F), ``a`` small-signal negative conductance (S),
    ``b`` cubic saturation coefficient (S/V^2).
    """

    L: float = 1.0
    C: float = 1.0
    a: float = 0.1
    b: float = 1.0 / 3.0

    def __post_init__(self):
        for name in ("L", "C", "a", "b"):
            object.__setattr__(self, name, check_positive(name, getattr(self, name)))

    @property
    def omega0(self) -> float:
        """Small-signal LC frequency 1/sqrt(LC) (rad per unit time)."""
        return 1.0 / np.sqrt(self.L * self.C)

    @property
    def nonlinearity(self) -> float:
        """eps = a sqrt(L/C): << 1 near-harmonic, >> 1 relaxation oscillations (stiff)."""
        return self.a * np.sqrt(self.L / self.C)

    @property
    def weak_amplitude(self) -> float:
        """Limit-cycle voltage amplitude 2 sqrt(a/(3b)) in the near-harmonic limit (V)."""
        return 2.0 * np.sqrt(self.a / (3.0 * self.b))


def check_conductances(G, n_units: int | None = None) -> np.ndarray:
    """Validate a signed conductance matrix: square, symmetric, zero diagonal, finite; float64 copy."""
    G = as_real_array("G", G, ndim=2)
    if G.shape[0] != G.shape[1] or (n_units is not None and G.shape[0] != n_units):
        raise InvalidInputError(f"G must be a square (N, N) matrix{'' if n_units is None else f' with N = {n_units}'}, "
                                f"got shape {G.shape}")
    if not np.allclose(G, G.T, rtol=0, atol=1e-14):
        raise InvalidInputError("G must be symmetric (a memristor conducts both ways)")
    if np.any(np.diag(G) != 0):
        raise InvalidInputError("G must have a zero diagonal (no self-coupling)")
    return G


def memristor_conductance(state, g_on: float, g_off: float) -> np.ndarray:
    """Conductance G_off + w (G_on - G_off) of memristors with internal state w in [0, 1] (linear window)."""
    w = as_real_array("state", state)
    if np.any((w < 0) | (w > 1)):
        raise InvalidInputError("memristor state must lie in [0, 1]")
    g_on, g_off = check_positive("g_on", g_on), check_positive("g_off", g_off)
    if g_off >= g_on:
        raise InvalidInputError(f"need g_off < g_on, got g_off = {g_off}, g_on = {g_on}")
    return g_off + w * (g_on - g_off)


def nonlinear_current(v: jnp.ndarray, c: VdPCircuit) -> jnp.ndarray:
    """g(v) = -a v + b v^3 (A)."""
    return -c.a * v + c.b * v ** 3


def coupling_current(v: jnp.ndarray, G: jnp.ndarray) -> jnp.ndarray:
    """I_k = sum_j G_kj v_j - (sum_j |G_kj|) v_k, shape of ``v`` (..., N)."""
    return v @ G - v * jnp.sum(jnp.abs(G), axis=-1)


def vector_field(x: jnp.ndarray, G: jnp.ndarray, c: VdPCircuit) -> jnp.ndarray:
    """d(v, i)/dt for states ``x`` of shape (..., N, 2)."""
    v, i = x[..., 0], x[..., 1]
    dv = (-i - nonlinear_current(v, c) + coupling_current(v, G)) / c.C
    return jnp.stack([dv, v / c.L], axis=-1)


def jacobian(x: jnp.ndarray, G: jnp.ndarray, c: VdPCircuit) -> jnp.ndarray:
    """Jacobian of :func:`vector_field` for one network state ``x`` (N, 2), as a (2N, 2N) matrix in
    the flattened order (v_0, i_0, v_1, i_1, ...)."""
    n = x.shape[-2]
    v = x[..., 0]
    dv_dv = (G - jnp.diag(jnp.sum(jnp.abs(G), axis=-1)) + jnp.diag(c.a - 3 * c.b * v ** 2)) / c.C
    J = jnp.zeros((n, 2, n, 2))
    J = J.at[:, 0, :, 0].set(dv_dv)
    J = J.at[jnp.arange(n), 0, jnp.arange(n), 1].set(-1.0 / c.C)
    J = J.at[jnp.arange(n), 1, jnp.arange(n), 0].set(1.0 / c.L)
    return J.reshape(2 * n, 2 * n)
