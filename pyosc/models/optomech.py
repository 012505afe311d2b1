"""Self-oscillating optomechanical cells and networks (after Gaspari, Avriller, Marquardt & Pistolesi,
arXiv 2604.11658; the full text was not available, so the model below is RECONSTRUCTED from
Marquardt, Harris & Girvin, PRL 96, 103901 (2006) and Heinrich et al., PRL 107, 043603 (2011);
see research/optomech_onn.md, Part A).

Units and conventions (all dimensionless, every rate in units of the mechanical frequency Omega_m):

* time tau = Omega_m t; displacement u = G x / Omega_m (the cavity frequency shift it causes);
  cavity field a = alpha / alpha_max with alpha_max = 2 sqrt(kappa_ex) alpha_in / kappa;
* cell parameters :class:`Cell`: cavity decay ``kappa``, laser detuning ``detuning`` = Delta =
  omega_L - omega_c (blue detuning, the self-oscillating side, is Delta > 0), mechanical damping
  ``gamma_m`` = Gamma_m / Omega_m, power parameter ``power`` = P = hbar G^2 |alpha_max|^2 / (m Omega_m^3).

Three model levels, each a pure ``jax.numpy`` function of (time, state, params, inputs):

1. **Microscopic** (``"optomech-micro"``), state (..., N, 4) = (Re a, Im a, u, du/dtau) per cell::

       da_j/dtau  = [i (Delta + u_j) - kappa/2] a_j + kappa/2
       u_j''      = -Gamma u_j' - u_j + P |a_j|^2 + sum_k K_jk u_k + Re[D_j exp(i w_d tau)]

   K is the dimensionless linear coupling (stiffness) matrix K_jk / (m Omega_m^2) (see
   :mod:`pyosc.models.electrostatic`); its diagonal is the frequency softening. D_j = f_j exp(i psi_j)
   (+ f_in exp(i x_j) on input cells) is a resonant force at frequency w_d = 1 + ``frame``.
   Stiff: the cavity (kappa) and the carrier (1) are far faster than Gamma and the couplings.

2. **Averaged** (``"optomech-averaged"``), state (..., N, 2) = (Re c, Im c) with
   u_j = ubar + Re[c_j exp(i w_d tau)] (averaging over one period, valid for Gamma, K, f << 1)::

       dc_j/dtau = c_j [g(|c_j|^2) + i (dOmega(|c_j|^2) - frame)] - (i/2) sum_k K_jk c_k - (i/2) D_j

   with growth rate g(A^2) = -Gamma/2 + P Im S(A) / A and optical-spring frequency shift
   dOmega(A^2) = -P Re S(A) / A from the Bessel sums below (evaluated through an exact cubic-Hermite
   table in A^2, see :func:`amplitude_table`; g and dOmega are even in A, so A^2 is the smooth variable
   and no square root of the state is needed).

3. **Phase-only** (``"optomech-phase"``, Heinrich et al.'s modified Kuramoto model), state (..., N, 1)::

       dphi_j/dtau = omega + sum_k [J_jk sin(phi_k - phi_j) - C_jk cos(phi_k - phi_j)]
                     + h_j sin(psi_j - phi_j) - b_j cos(psi_j - phi_j)      (+ the same for input drives)

   obtained by adiabatic elimination of the amplitudes (needs |K|, f / A0 << gamma): C = K/2,
   J = zeta K/2, b = f/(2 A0), h = zeta f/(2 A0), omega = dOmega(A0) - frame, with the decay rate
   gamma and non-isochronicity zeta of :class:`LimitCycle`. Its XY limit (zeta -> infinity with
   zeta K fixed: C, b -> 0) is the gradient flow of the XY energy (:func:`xy_limit`).

Limit cycle (MHG 2006): for u = ubar + A cos tau the cavity solves exactly as
a(tau) = exp(i A sin tau) sum_n a_n exp(i n tau), a_n = (kappa/2) J_n(-A) / (i n + kappa/2 - i (Delta + ubar)),
with the static shift self-consistent, ubar = P sum_n |a_n|^2. With S(A) = sum_n a_{n+1} conj(a_n),
the radiation-pressure power is P A Im S and the friction power Gamma A^2 / 2; the limit cycle A0 is
their balance on the branch connected to A = 0 (so A0 = 0 below threshold, even where a stable
large-amplitude branch exists: hard excitation is not followed). Decay rate of the amplitude
gamma = -d(dA/dtau)/dA at A0 = Gamma (1 - nu/2), nu = dln P_rad / dln A (reconstructed meaning of the
paper's "gamma scales with the energy injection rate"); zeta = A0 dOmega'(A0) / gamma.

Reconstructed choices (not from the paper): the drive is a resonant force on the drum (electrostatic AC
or modulated laser) whose phase defines the lab frame; inputs are such drives of fixed strength
``f_in`` on the input cells at the input phases; the static displacement caused by couplings
(K ubar, of order |K| P) is neglected in the averaged and phase models; higher mechanical
nonlinearities and thermal noise are left out, as in the paper.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from numbers import Integral
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import brentq

import pyosc.models.float64  # noqa: F401  (JAX in double precision)
from pyosc.errors import InvalidInputError, as_real_array, check_positive
from pyosc.models.xy import XYParams
from pyosc.validation import Interval, check

N_HARMONICS = 40   # cavity harmonics |n| <= 40: enough for A up to about 20
N_QUADRATURE = 256  # points of the periodic trapezoid rule for J_n (spectrally exact here)


class Cell(NamedTuple):
    """One optomechanical cell in units of Omega_m: ``kappa``, ``detuning`` (Delta > 0: blue),
    ``gamma_m`` (mechanical damping), ``power`` (P)."""

    kappa: float
    detuning: float
    gamma_m: float
    power: float


REFERENCE_CELL = Cell(kappa=2.0, detuning=1.0, gamma_m=0.01, power=0.06)
"""The checked parameter set of research/optomech_onn.md A.8 (A0 = 1.9297, shift 3.49e-3)."""

LOCKING_CELL = Cell(kappa=0.5, detuning=0.25, gamma_m=0.01, power=0.24)
"""A cell for trained networks (RECONSTRUCTED choice; the paper's parameters are unknown): resolved sideband
(kappa = Omega_m / 2), detuning Omega_m / 4, power 3.09 x threshold: A0 = 1.608, gamma = 0.0135,
zeta = +1.72. With |zeta| > 1 a coupling acts mainly through the amplitude-mediated sin term (J = zeta K / 2,
dissipative: it locks phases) rather than the reactive cos term (C = K / 2: frequency pulling). For the
reference cell zeta = -0.44, and trained networks often have initial states that never lock (they drift in
the drive frame); see studies/results/optomech/README.md."""

CELLS = {"reference": REFERENCE_CELL, "locking": LOCKING_CELL}


def validate_cell(cell: Cell) -> Cell:
    """Positive kappa, gamma_m and power; finite detuning."""
    if not isinstance(cell, Cell):
        raise InvalidInputError(f"cell must be a pyosc.models.optomech.Cell, got {type(cell).__name__}")
    det = float(cell.detuning)
    if not np.isfinite(det):
        raise InvalidInputError(f"detuning must be finite, got {cell.detuning!r}")
    return Cell(check_positive("kappa", cell.kappa), det, check_positive("gamma_m", cell.gamma_m),
                check_positive("power", cell.power))


# --- Bessel power balance ----------------------------------------------------------------------

def bessel_j(n: jnp.ndarray, x: jnp.ndarray) -> jnp.ndarray:
    """J_n(x) for integer orders ``n`` (any shape) and real ``x`` (broadcast), differentiable in x.

    Periodic trapezoid rule of J_n(x) = (1/2 pi) int exp(i (n theta - x sin theta)) dtheta; with 256
    points the error is of order J_{256-|n|}(x), negligible for |n| <= 40 and |x| < 50.
    """
    theta = 2 * jnp.pi * jnp.arange(N_QUADRATURE) / N_QUADRATURE
    x = jnp.asarray(x, dtype=jnp.float64)[..., None, None]
    phase = jnp.asarray(n)[..., :, None] * theta - x * jnp.sin(theta)
    return jnp.mean(jnp.cos(phase), axis=-1)


def cavity_harmonics(amplitude, cell: Cell) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Harmonics a_n (n = -40..40) of the cavity field on the cycle u = ubar + A cos tau, and ubar.

    ubar = P sum |a_n|^2 is solved by Newton's method (12 steps, quadratic convergence from ubar = 0).
    """
    n = jnp.arange(-N_HARMONICS, N_HARMONICS + 1)
    jn = bessel_j(n, -jnp.asarray(amplitude, dtype=jnp.float64))
    k2 = cell.kappa / 2

    def coeffs(ubar):
        return k2 * jn / (1j * n + k2 - 1j * (cell.detuning + ubar))

    def residual(ubar):
        return ubar - cell.power * jnp.sum(jnp.abs(coeffs(ubar)) ** 2)

    def newton(_, ubar):
        r, dr = jax.jvp(residual, (ubar,), (jnp.ones(()),))
        return ubar - r / dr

    ubar = jax.lax.fori_loop(0, 12, newton, jnp.zeros(()))
    return coeffs(ubar), ubar


def overlap(amplitude, cell: Cell) -> jnp.ndarray:
    """S(A) = sum_n a_{n+1} conj(a_n) (complex): the first Fourier component of |a|^2 is 2 S."""
    a, _ = cavity_harmonics(amplitude, cell)
    return jnp.sum(a[1:] * jnp.conj(a[:-1]))


def amplitude_rate(amplitude, cell: Cell) -> jnp.ndarray:
    """dA/dtau of the averaged single cell: -Gamma A / 2 + P Im S(A) = (P_rad - P_fric) / A."""
    return -0.5 * cell.gamma_m * amplitude + cell.power * jnp.imag(overlap(amplitude, cell))


def radiation_power(amplitude, cell: Cell) -> jnp.ndarray:
    """Mean radiation-pressure power on the drum, P A Im S(A)."""
    return cell.power * amplitude * jnp.imag(overlap(amplitude, cell))


def friction_power(amplitude, cell: Cell) -> jnp.ndarray:
    """Mean power lost to friction, Gamma A^2 / 2."""
    return 0.5 * cell.gamma_m * jnp.asarray(amplitude) ** 2


def frequency_shift(amplitude, cell: Cell) -> jnp.ndarray:
    """Optical-spring shift of the oscillation frequency, dOmega(A) = -P Re S(A) / A (A > 0)."""
    return -cell.power * jnp.real(overlap(amplitude, cell)) / amplitude


def _growth(amplitude, cell: Cell) -> jnp.ndarray:
    return amplitude_rate(amplitude, cell) / amplitude


# compiled scalar versions for root finding (the cell is a pytree of floats: one trace for all cells)
_rate_c = jax.jit(amplitude_rate)
_rate_grad_c = jax.jit(jax.grad(amplitude_rate))
_shift_c = jax.jit(frequency_shift)
_shift_grad_c = jax.jit(jax.grad(frequency_shift))
_growth_c = jax.jit(_growth)
_harmonics_c = jax.jit(cavity_harmonics)
_ubar_c = jax.jit(lambda a, cell: cavity_harmonics(a, cell)[1])
_rates_c = jax.jit(jax.vmap(amplitude_rate, in_axes=(0, None)))


def _small_amplitude(fn: Callable, cell: Cell, eps: float = 1e-3) -> tuple[float, float]:
    """(f(0), df/d(A^2) at 0) of an even function f(A) known only for A > 0 (Richardson, O(eps^4))."""
    f1, f2 = float(fn(eps, cell)), float(fn(2 * eps, cell))
    return (4 * f1 - f2) / 3, (f2 - f1) / (3 * eps ** 2)


def optical_damping(cell: Cell) -> float:
    """Optomechanical damping at zero amplitude, Gamma_opt(0) = -2 P Im S(A)/A |_{A->0} (< 0: anti-damping)."""
    cell = validate_cell(cell)
    g0, _ = _small_amplitude(_growth_c, cell)
    return -2.0 * (g0 + 0.5 * cell.gamma_m)


def threshold_power(kappa: float, detuning: float, gamma_m: float, p_max: float = 1e3) -> float:
    """The power P at which Gamma_opt(0) = -Gamma_m: cells start oscillating from rest above it.

    Raises InvalidInputError if no P in (0, p_max] reaches it (e.g. red detuning, Delta < 0).
    """
    def excess(p):
        return -optical_damping(Cell(kappa, detuning, gamma_m, p)) - gamma_m

    p_lo, p_hi = 1e-9, 1e-9
    while excess(p_hi) <= 0:
        p_lo, p_hi = p_hi, 2 * p_hi
        if p_hi > p_max:
            raise InvalidInputError(f"no self-oscillation threshold below power {p_max:g} for kappa={kappa}, "
                                    f"detuning={detuning}, gamma_m={gamma_m} (blue detuning, detuning > 0, is needed)")
    return brentq(excess, p_lo, p_hi, xtol=1e-14, rtol=1e-12)


class LimitCycle(NamedTuple):
    """Free-running limit cycle of one cell (amplitude 0 below threshold).

    ``amplitude`` A0 (units of Omega_m / G); ``shift`` dOmega(A0) (units of Omega_m); ``gamma``
    amplitude decay rate; ``zeta`` = A0 dOmega'(A0) / gamma (non-isochronicity); ``ubar`` static shift;
    ``threshold_ratio`` = -Gamma_opt(0) / Gamma_m (> 1: oscillates from rest).
    """

    amplitude: float
    shift: float
    gamma: float
    zeta: float
    ubar: float
    threshold_ratio: float


def limit_cycle(cell: Cell, a_max: float = 20.0) -> LimitCycle:
    """Limit cycle on the branch connected to A = 0 (first zero of dA/dtau where it turns negative)."""
    return _limit_cycle(validate_cell(cell), float(a_max))


@lru_cache(maxsize=32)
def _limit_cycle(cell: Cell, a_max: float) -> LimitCycle:
    ratio = -optical_damping(cell) / cell.gamma_m
    if ratio <= 1:
        w0, _ = _small_amplitude(_shift_c, cell)
        return LimitCycle(0.0, w0, cell.gamma_m * (1 - ratio) / 2, 0.0, float(_ubar_c(0.0, cell)), ratio)
    grid = np.linspace(a_max / 400, a_max, 400)
    rates = np.asarray(_rates_c(jnp.asarray(grid), cell))
    down = np.flatnonzero((rates[:-1] > 0) & (rates[1:] <= 0))
    if down.size == 0:
        raise InvalidInputError(f"no limit cycle below amplitude a_max={a_max}; raise a_max")
    i = down[0]
    a0 = brentq(lambda a: float(_rate_c(a, cell)), grid[i], grid[i + 1], xtol=1e-15, rtol=1e-14)
    gamma = -float(_rate_grad_c(a0, cell))
    return LimitCycle(a0, float(_shift_c(a0, cell)), gamma, a0 * float(_shift_grad_c(a0, cell)) / gamma,
                      float(_ubar_c(a0, cell)), ratio)


# --- the tabulated averaged model --------------------------------------------------------------

class AmplitudeTable(NamedTuple):
    """g(s) and dOmega(s) with their s-derivatives on the uniform grid s = A^2 in [0, s_max]."""

    s_max: np.ndarray
    growth: np.ndarray
    growth_ds: np.ndarray
    shift: np.ndarray
    shift_ds: np.ndarray


def amplitude_table(cell: Cell, s_max: float = 36.0, n_grid: int = 2001) -> AmplitudeTable:
    """Exact Bessel values of growth rate g and frequency shift dOmega at the nodes s_i = A_i^2.

    Derivatives d/ds = (d/dA) / (2A) by automatic differentiation (at s = 0 by Richardson
    extrapolation of the even functions). The cubic-Hermite interpolant in s has errors of order
    (s_max / n_grid)^4, about 1e-10 relative with the defaults (checked in the tests).
    """
    check_positive("s_max", s_max)
    check("n_grid", n_grid, Interval(Integral, 4, None))
    return _amplitude_table(validate_cell(cell), float(s_max), int(n_grid))


_table_c = jax.jit(jax.vmap(lambda amp, cell: jax.jvp(lambda a: (_growth(a, cell), frequency_shift(a, cell)),
                                                      (amp,), (jnp.ones(()),)), in_axes=(0, None)))


@lru_cache(maxsize=8)
def _amplitude_table(cell: Cell, s_max: float, n_grid: int) -> AmplitudeTable:
    s = np.linspace(0.0, s_max, n_grid)
    a = jnp.asarray(np.sqrt(s[1:]))
    values, slopes = _table_c(a, cell)
    g0 = _small_amplitude(_growth_c, cell)
    w0 = _small_amplitude(_shift_c, cell)
    amp = np.asarray(a)

    def column(at0, v, dv):
        return (np.concatenate([[at0[0]], np.asarray(v)]), np.concatenate([[at0[1]], np.asarray(dv) / (2 * amp)]))

    arrays = (np.asarray(s_max), *column(g0, values[0], slopes[0]), *column(w0, values[1], slopes[1]))
    for x in arrays:
        x.setflags(write=False)  # cached: shared between callers
    return AmplitudeTable(*arrays)


def interpolate(table, s: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(g(s), dOmega(s)) by cubic Hermite interpolation; s is clipped to [0, s_max]."""
    n = table["growth"].shape[-1]
    h = table["s_max"] / (n - 1)
    x = jnp.clip(s / h, 0.0, n - 1 - 1e-12)
    i = jnp.floor(x).astype(jnp.int32)
    t = x - i
    h00, h10 = (1 + 2 * t) * (1 - t) ** 2, t * (1 - t) ** 2
    h01, h11 = t * t * (3 - 2 * t), t * t * (t - 1)

    def hermite(v, dv):
        return h00 * v[i] + h10 * h * dv[i] + h01 * v[i + 1] + h11 * h * dv[i + 1]

    return hermite(table["growth"], table["growth_ds"]), hermite(table["shift"], table["shift_ds"])


# --- network right-hand sides ------------------------------------------------------------------

def _drive(p, inputs: jnp.ndarray, n_units: int) -> jnp.ndarray:
    """Complex drive D_j = f_j exp(i psi_j) + f_in exp(i x_j) on the input cells j < n_in."""
    d = p["f"] * jnp.exp(1j * p["psi"])
    n_in = inputs.shape[-1]
    pad = jnp.zeros(inputs.shape[:-1] + (n_units - n_in,))
    return d + p["f_in"] * jnp.concatenate([jnp.exp(1j * inputs), pad.astype(jnp.complex128)], axis=-1)


def micro_rhs(t, y: jnp.ndarray, p, inputs: jnp.ndarray) -> jnp.ndarray:
    """Microscopic network, y (..., N, 4) = (Re a, Im a, u, u'); params: kappa, detuning, gamma_m,
    power, K (N, N), f, psi (N,), f_in, frame (scalars)."""
    a = y[..., 0] + 1j * y[..., 1]
    u, v = y[..., 2], y[..., 3]
    da = (1j * (p["detuning"] + u) - 0.5 * p["kappa"]) * a + 0.5 * p["kappa"]
    force = jnp.real(_drive(p, inputs, y.shape[-2]) * jnp.exp(1j * (1.0 + p["frame"]) * t))
    dv = -p["gamma_m"] * v - u + p["power"] * jnp.abs(a) ** 2 + u @ p["K"].T + force
    return jnp.stack([jnp.real(da), jnp.imag(da), v, dv], axis=-1)


def micro_phase(t, y: jnp.ndarray, p) -> jnp.ndarray:
    """Oscillation phase in the drive frame: arg[(u - ubar - i u' / w_d) exp(-i w_d t)], w_d = 1 + frame.

    Instantaneous readout; errors of order the harmonic content of u (a few 1e-3 rad for the reference cell).
    """
    w = 1.0 + p["frame"]
    c = (y[..., 2] - p["ubar"] - 1j * y[..., 3] / w) * jnp.exp(-1j * w * t)
    return jnp.angle(c)


def averaged_rhs(t, y: jnp.ndarray, p, inputs: jnp.ndarray) -> jnp.ndarray:
    """Averaged network, y (..., N, 2) = (Re c, Im c); params: the :class:`AmplitudeTable` fields,
    K (N, N), f, psi (N,), f_in, frame (scalars)."""
    c = y[..., 0] + 1j * y[..., 1]
    g, w = interpolate(p, y[..., 0] ** 2 + y[..., 1] ** 2)
    dc = c * (g + 1j * (w - p["frame"])) - 0.5j * (c @ p["K"].T) - 0.5j * _drive(p, inputs, y.shape[-2])
    return jnp.stack([jnp.real(dc), jnp.imag(dc)], axis=-1)


def averaged_phase(t, y: jnp.ndarray, p) -> jnp.ndarray:
    """arg c_j, the oscillation phase in the drive frame."""
    return jnp.arctan2(y[..., 1], y[..., 0])


def phase_rhs(t, y: jnp.ndarray, p, inputs: jnp.ndarray) -> jnp.ndarray:
    """Phase-only network, y (..., N, 1); params: omega, h_in, b_in (scalars), J, C (N, N), h, b, psi (N,)."""
    phi = y[..., 0]
    d = phi[..., None, :] - phi[..., :, None]  # phi_k - phi_j at [j, k]
    dphi = p["omega"] + jnp.sum(p["J"] * jnp.sin(d) - p["C"] * jnp.cos(d), axis=-1)
    dphi = dphi + p["h"] * jnp.sin(p["psi"] - phi) - p["b"] * jnp.cos(p["psi"] - phi)
    n_in = inputs.shape[-1]
    if n_in:
        x = inputs - phi[..., :n_in]
        dphi = dphi.at[..., :n_in].add(p["h_in"] * jnp.sin(x) - p["b_in"] * jnp.cos(x))
    return dphi[..., None]


def phase_phase(t, y: jnp.ndarray, p) -> jnp.ndarray:
    """The phases themselves."""
    return y[..., 0]


class Dynamics(NamedTuple):
    """The equations of a network model: right-hand side ``rhs(t, y, params, inputs)`` and phase readout
    ``phase(t, y, params)``. Its parameters and state size are described in :mod:`pyosc.models.registry`."""

    rhs: Callable
    phase: Callable


DYNAMICS: dict[str, Dynamics] = {
    "optomech-micro": Dynamics(micro_rhs, micro_phase),
    "optomech-averaged": Dynamics(averaged_rhs, averaged_phase),
    "optomech-phase": Dynamics(phase_rhs, phase_phase),
}


# --- building network parameters --------------------------------------------------------------

def micro_params(cell: Cell, K, f, psi, *, f_in: float = 0.0, frame: float | None = None) -> dict[str, np.ndarray]:
    """Parameters of ``"optomech-micro"``; ``frame`` defaults to the free-running shift dOmega(A0)."""
    cell = validate_cell(cell)
    lc = limit_cycle(cell)
    frame = lc.shift if frame is None else frame
    return {"kappa": np.asarray(cell.kappa), "detuning": np.asarray(cell.detuning),
            "gamma_m": np.asarray(cell.gamma_m), "power": np.asarray(cell.power), "K": np.asarray(K, float),
            "f": np.asarray(f, float), "psi": np.asarray(psi, float), "f_in": np.asarray(float(f_in)),
            "frame": np.asarray(float(frame)), "ubar": np.asarray(lc.ubar)}


def averaged_params(table: AmplitudeTable, K, f, psi, *, f_in: float = 0.0, frame: float = 0.0) -> dict[str, np.ndarray]:
    """Parameters of ``"optomech-averaged"`` from a table and the network arrays."""
    return {**table._asdict(), "K": np.asarray(K, float), "f": np.asarray(f, float), "psi": np.asarray(psi, float),
            "f_in": np.asarray(float(f_in)), "frame": np.asarray(float(frame))}


def phase_params(cycle: LimitCycle, K, f, psi, *, f_in: float = 0.0, frame: float | None = None) -> dict[str, np.ndarray]:
    """Phase-only parameters by adiabatic elimination of the amplitudes around ``cycle``.

    C = K/2, J = zeta K/2, b = f/(2 A0), h = zeta b (and b_in, h_in from f_in), omega = dOmega(A0) - frame.
    """
    if cycle.amplitude <= 0:
        raise InvalidInputError("the cell does not self-oscillate (amplitude 0): no phase model")
    K = np.asarray(K, float)
    frame = cycle.shift if frame is None else frame
    b = np.asarray(f, float) / (2 * cycle.amplitude)
    b_in = float(f_in) / (2 * cycle.amplitude)
    return {"omega": np.asarray(cycle.shift - frame), "J": cycle.zeta * K / 2, "C": K / 2, "h": cycle.zeta * b, "b": b,
            "psi": np.asarray(psi, float), "h_in": np.asarray(cycle.zeta * b_in), "b_in": np.asarray(b_in)}


def xy_limit(phase: dict[str, np.ndarray]) -> XYParams:
    """The XY model the phase-only model becomes when zeta -> infinity at fixed J and h (C, b, omega dropped).

    d phi/dtau = sum_k J_jk sin(phi_k - phi_j) + h_j sin(psi_j - phi_j) = -dE/dphi_j with W = J (zero diagonal).
    """
    J = as_real_array("J", phase["J"], ndim=(2, 3)).copy()
    J[..., np.arange(J.shape[-1]), np.arange(J.shape[-1])] = 0.0
    return XYParams(J, as_real_array("h", phase["h"]), as_real_array("psi", phase["psi"]))


def micro_initial_state(cell: Cell, c) -> np.ndarray:
    """Microscopic states (..., N, 4) on the free limit cycle through complex amplitudes ``c`` (..., N).

    u = ubar + Re c, u' = Re(i c) and the cavity field of the cycle at that phase,
    a = exp(i A sin phi) sum_n a_n exp(i n phi) (phi = arg c), so no cavity transient is excited.
    """
    cell = validate_cell(cell)
    c = np.asarray(c, dtype=np.complex128)
    out = np.empty(c.shape + (4,))
    n = np.arange(-N_HARMONICS, N_HARMONICS + 1)
    for idx, ci in np.ndenumerate(c):
        amp, ph = abs(ci), np.angle(ci)
        a_n, ubar = _harmonics_c(amp, cell)
        a = np.exp(1j * amp * np.sin(ph)) * np.sum(np.asarray(a_n) * np.exp(1j * n * ph))
        out[idx] = (a.real, a.imag, float(ubar) + ci.real, -ci.imag)
    return out


def weak_coupling_ratio(cycle: LimitCycle, K, f=None) -> float:
    """max_j [sum_k |K_jk| / 2 + f_j / (2 A0)] / gamma: the adiabatic elimination needs it << 1."""
    K = np.asarray(K, float)
    rate = 0.5 * np.abs(K).sum(-1)
    if f is not None:
        rate = rate + np.abs(np.asarray(f, float)) / (2 * cycle.amplitude)
    return float(rate.max() / cycle.gamma)
