"""Phase-deviation model of weakly coupled oscillators (an oscillatory neural network, ONN).

Reconstructed after Gemo, Bonnin & Corinto, Neuromorph. Comput. Eng. 6 (2026) 024016 (only the abstract
is available) from the group's earlier work (Corinto-Bonnin-Gilli; Zoppo et al., ISCAS 2022); see
shared/research/optomech_onn.md, Part B. By Malkin's theorem the phase deviations phi_k (rad, relative
to the free-running limit cycle, in its rotating frame) obey

    dphi_k/dt = omega_k + sum_j W_kj H(phi_j - phi_k) + h_k sin(psi_k - phi_k) - s_k sin(2 phi_k),

with a coupling function given by its Fourier series (per unit coupling, rad per unit time)

    H(x) = a_0 + sum_{n=1..M} [a_n cos(n x) + b_n sin(n x)],

W symmetric with a zero diagonal (e.g. the memristor conductances), omega_k the frequency detunings
from the reference frequency, and (h_k, psi_k) an external injection-locking drive of amplitude h_k and
phase psi_k (first harmonic). s_k >= 0 is a second-harmonic injection (SHIL: a drive at twice the
oscillation frequency, locked to the reference frame), which makes the binary states phi_k in {0, pi}
stiffer by 2 s_k; it is the usual binarising input of oscillator Ising machines and associative
memories (RECONSTRUCTED: the paper's abstract does not say whether it is used). Time is in units of
the circuit's time (e.g. sqrt(LC)).

Energy. If H is odd (a_n = 0 for every n >= 0) the flow is a gradient flow, dphi/dt = -dE/dphi, with

    E(phi) = -1/2 sum_kj W_kj U(phi_k - phi_j) - sum_k h_k cos(phi_k - psi_k) - sum_k omega_k phi_k
             - 1/2 sum_k s_k cos(2 phi_k),
    U(x)   = sum_n (b_n / n) cos(n x),

so E never increases along the dynamics. The XY model (:mod:`pyosc.models.xy`) is the special case
M = 1, b_1 = 1, omega = 0. Detunings tilt the landscape (the -omega.phi term is not periodic): the
energy still decreases, but equilibria exist only while the couplings lock the detunings, so
:func:`energy_status` flags them. An even part of H (a_n != 0) has no potential: there is no energy,
equilibria need not be minima of anything, and equilibrium propagation's gradient is biased.

EP derivatives are per *pair*: dE/dW_kj = -U(phi_k - phi_j) applies to both entries W_kj and W_jk.
Phases have shape ``(..., N)``; every function is pure ``jax.numpy`` (the velocity and the energy with its phase
derivatives ``jax.jit``-wrapped, as in :mod:`pyosc.models.xy`).
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import pyosc.models.float64  # noqa: F401  (JAX in double precision)
from pyosc.errors import InvalidInputError, as_real_array
from pyosc.models import registry, xy


class PhaseModelWarning(UserWarning):
    """The phase model has no (periodic) energy: EP is biased or equilibria may not exist."""


class CouplingFunction(NamedTuple):
    """Fourier coefficients of H: ``sin`` = (b_1 .. b_M), ``cos`` = (a_0, a_1 .. a_M) (rad per unit time
    per unit coupling)."""

    sin: np.ndarray
    cos: np.ndarray

    @property
    def n_harmonics(self) -> int:
        return int(np.shape(self.sin)[-1])

    @property
    def is_odd(self) -> bool:
        return bool(np.all(np.asarray(self.cos) == 0))

    @property
    def even_fraction(self) -> float:
        """||a|| / ||(a, b)||: 0 for odd H, 1 for even H."""
        a, b = np.asarray(self.cos), np.asarray(self.sin)
        return float(np.linalg.norm(a) / np.linalg.norm(np.concatenate([a, b])))

    def scaled(self, factor: float) -> CouplingFunction:
        """H multiplied by ``factor`` (e.g. 1/b_1 to normalise the first harmonic to 1)."""
        return CouplingFunction(np.asarray(self.sin) * factor, np.asarray(self.cos) * factor)

    def odd_part(self) -> CouplingFunction:
        """The odd part (sin terms only): the part that derives from an energy."""
        return CouplingFunction(np.asarray(self.sin), np.zeros_like(np.asarray(self.cos)))

    def __call__(self, x):
        """H(x) for an array ``x`` (rad)."""
        n = np.arange(1, self.n_harmonics + 1)
        x = as_real_array("x", x, finite=False)[..., None]
        return (np.asarray(self.cos)[0] + np.sum(np.asarray(self.cos)[1:] * np.cos(n * x)
                                                  + np.asarray(self.sin) * np.sin(n * x), axis=-1))


def coupling_function(sin=(1.0,), cos=None) -> CouplingFunction:
    """Validated :class:`CouplingFunction`; ``cos`` defaults to zeros (odd H). ``sin=(1,)`` is the XY model."""
    b = as_real_array("sin", sin, ndim=1)
    if b.size < 1:
        raise InvalidInputError("sin must hold at least one coefficient (b_1)")
    a = np.zeros(b.size + 1) if cos is None else as_real_array("cos", cos, shape=(b.size + 1,))
    if not np.any(b) and not np.any(a[1:]):
        raise InvalidInputError("H must depend on the phase difference: some b_n or a_n (n >= 1) must be non-zero")
    return CouplingFunction(b, a)


class ONNParams(NamedTuple):
    """Parameters of the phase model. ``W``: (..., N, N) symmetric couplings, zero diagonal;
    ``h``, ``psi``: (..., N) drive amplitudes and phases (rad); ``omega``: (..., N) detunings (rad per
    unit time); ``shil``: (..., N) second-harmonic injection amplitudes; ``sin``: (..., M) and ``cos``: (..., M+1) Fourier coefficients of H (fixed by the
    circuit, not trained). A leading axis, when present, stacks independent networks."""

    W: jnp.ndarray
    h: jnp.ndarray
    psi: jnp.ndarray
    omega: jnp.ndarray
    shil: jnp.ndarray
    sin: jnp.ndarray
    cos: jnp.ndarray


def make_params(W, H: CouplingFunction, h=None, psi=None, omega=None, shil=None) -> ONNParams:
    """Parameters with zero drives, detunings and SHIL unless given (arrays or scalars broadcast to the
    units); ``H`` is broadcast over a leading runs axis."""
    W = as_real_array("W", W, ndim=(2, 3))
    zeros = np.zeros(W.shape[:-1])
    lead = W.shape[:-2]

    def unit(name, v):
        if v is None:
            return zeros.copy()
        v = as_real_array(name, v)
        try:
            return np.broadcast_to(v, zeros.shape).copy()
        except ValueError:
            raise InvalidInputError(f"{name} must be a scalar or one value per unit (shape {zeros.shape}), "
                                    f"got shape {v.shape}") from None

    return ONNParams(W, unit("h", h), unit("psi", psi), unit("omega", omega), unit("shil", shil),
                     np.broadcast_to(np.asarray(H.sin, float), lead + (H.n_harmonics,)).copy(),
                     np.broadcast_to(np.asarray(H.cos, float), lead + (H.n_harmonics + 1,)).copy())


def validate_params(params, n_units: int | None = None) -> ONNParams:
    """Shapes, finiteness, symmetry, shil >= 0 and H's coefficient counts
    (:func:`pyosc.models.registry.validate_params`); the parameters (a mapping or :class:`ONNParams`) as float64
    NumPy arrays."""
    return ONNParams(**registry.validate_params("onn", params, n_units)[0])


def energy_status(params: ONNParams, *, warn: bool = True, rtol: float = 1e-12) -> dict[str, bool]:
    """Flags ``odd_coupling`` (H odd: an energy exists) and ``identical_frequencies`` (no detuning: the
    energy is periodic). Each failed flag issues a :class:`PhaseModelWarning` when ``warn``."""
    a, b = np.asarray(params.cos), np.asarray(params.sin)
    scale = max(float(np.max(np.abs(b), initial=0.0)), float(np.max(np.abs(a), initial=0.0)))
    odd = bool(np.all(np.abs(a) <= rtol * scale))
    omega = np.asarray(params.omega)
    same = bool(np.all(np.abs(omega) <= rtol * max(scale, 1.0)))
    if warn and not odd:
        warnings.warn("the coupling function H has even (cosine) parts: the phase model has no energy function, "
                      "its equilibria are not energy minima and the equilibrium-propagation gradient is biased",
                      PhaseModelWarning, stacklevel=2)
    if warn and not same:
        warnings.warn("the oscillator frequencies disperse (omega != 0): the energy is tilted by -omega.phi and "
                      "not periodic; equilibria exist only where the couplings lock the detunings, and EP is "
                      "valid only on locked states", PhaseModelWarning, stacklevel=2)
    return {"odd_coupling": odd, "identical_frequencies": same}


# --- dynamics ----------------------------------------------------------------------------------

def _harmonics(b: jnp.ndarray) -> jnp.ndarray:
    return jnp.arange(1, b.shape[-1] + 1, dtype=jnp.float64)


@jax.jit
def velocity(phi: jnp.ndarray, p: ONNParams) -> jnp.ndarray:
    """dphi_k/dt of the full phase-deviation model (any H, detunings and drives), shape of ``phi``.

    Uses sum_j W_kj e^{i n phi_j}: one complex matrix product per harmonic.
    """
    n = _harmonics(p.sin)
    z = jnp.exp(1j * n * phi[..., None])                       # (..., N, M)
    u = jnp.einsum("...kj,...jm->...km", p.W.astype(z.dtype), z)  # sum_j W_kj e^{i n phi_j}
    rel = u * jnp.conj(z)                                       # sum_j W_kj e^{i n (phi_j - phi_k)}
    coupled = jnp.sum(p.sin[..., None, :] * jnp.imag(rel) + p.cos[..., None, 1:] * jnp.real(rel), axis=-1)
    coupled = coupled + p.cos[..., None, 0] * jnp.sum(p.W, axis=-1)
    return p.omega + coupled + p.h * jnp.sin(p.psi - phi) - p.shil * jnp.sin(2 * phi)


@jax.jit
def energy(phi: jnp.ndarray, p: ONNParams) -> jnp.ndarray:
    """E(phi) of the odd part of H (the energy when H is odd), shape ``phi.shape[:-1]``."""
    n = _harmonics(p.sin)
    z = jnp.exp(1j * n * phi[..., None])
    u = jnp.einsum("...kj,...jm->...km", p.W.astype(z.dtype), z)
    pair = jnp.sum(jnp.real(jnp.conj(z) * u) * (p.sin / n)[..., None, :], axis=(-2, -1))
    return (-0.5 * pair - jnp.sum(p.h * jnp.cos(phi - p.psi), axis=-1) - jnp.sum(p.omega * phi, axis=-1)
            - 0.5 * jnp.sum(p.shil * jnp.cos(2 * phi), axis=-1))


@jax.jit
def energy_grad_phi(phi: jnp.ndarray, p: ONNParams) -> jnp.ndarray:
    """dE/dphi of :func:`energy` (= -velocity when H is odd)."""
    return -velocity(phi, p._replace(cos=jnp.zeros_like(p.cos)))


@jax.jit
def energy_hessian(phi: jnp.ndarray, p: ONNParams) -> jnp.ndarray:
    """d^2E/dphi_k dphi_j, shape ``phi.shape + (N,)``; off-diagonal W_kj U''(phi_k - phi_j) =
    -W_kj sum_n n b_n cos(n (phi_k - phi_j)), diagonal minus the row sum plus h_k cos(phi_k - psi_k) + 2 s_k cos(2 phi_k)."""
    n = _harmonics(p.sin)
    d = phi[..., :, None, None] - phi[..., None, :, None]
    off = -p.W * jnp.sum(p.sin[..., None, None, :] * n * jnp.cos(n * d), axis=-1)
    diag = -jnp.sum(off, axis=-1) + p.h * jnp.cos(phi - p.psi) + 2 * p.shil * jnp.cos(2 * phi)
    return off * (1.0 - jnp.eye(phi.shape[-1])) + diag[..., :, None] * jnp.eye(phi.shape[-1])


def energy_param_grad(phi: jnp.ndarray, p: ONNParams) -> ONNParams:
    """dE/dtheta averaged over the leading axes of ``phi`` (the parameters' runs axis excluded).

    dE/dW_kj = -<U(phi_k - phi_j)> per pair (both entries), dE/dh_k = -<cos(phi_k - psi_k)>,
    dE/dpsi_k = -h_k <sin(phi_k - psi_k)>, dE/domega_k = -<phi_k>, dE/ds_k = -<cos(2 phi_k)>/2; H's
    coefficients are not trained (zero). For H = sin this equals :func:`pyosc.models.xy.energy_param_grad`.
    """
    nunits = phi.shape[-1]
    flat = phi.reshape(-1, nunits)
    n = _harmonics(p.sin)
    z = jnp.exp(1j * n * flat[..., None])                                   # (S, N, M)
    gram = jnp.real(jnp.einsum("skm,sjm->kjm", jnp.conj(z), z)) / flat.shape[0]
    gram = 0.5 * (gram + jnp.swapaxes(gram, 0, 1))  # exactly symmetric (optimizers amplify rounding asymmetry)
    dW = -jnp.sum(gram * (p.sin / n), axis=-1) * (1.0 - jnp.eye(nunits))
    dh = -jnp.mean(jnp.cos(flat - p.psi), axis=0)
    dpsi = -p.h * jnp.mean(jnp.sin(flat - p.psi), axis=0)
    return ONNParams(dW, dh, dpsi, -jnp.mean(flat, axis=0), -0.5 * jnp.mean(jnp.cos(2 * flat), axis=0),
                     jnp.zeros_like(p.sin), jnp.zeros_like(p.cos))


def from_xy(p: xy.XYParams) -> ONNParams:
    """The XY network as a phase model with H(x) = sin x and no detuning."""
    return make_params(p.W, coupling_function((1.0,)), h=p.h, psi=p.psi)
