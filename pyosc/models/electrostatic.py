"""Electrostatic coupling of drum resonators from their geometry, SiN drum presets, weak-coupling check.

RECONSTRUCTED (arXiv 2604.11658 states only that SiN drums are coupled electrostatically, that the
coupling coefficients are derived and that numerical estimates confirm the coupling model for SiN
drums; see research/optomech_onn.md A.4, A.7). SI units throughout unless a name says otherwise.

Parallel-plate capacitor between drums j and k (area S, rest gap d, bias voltage V_jk): the gap is
g = d - e_j x_j - e_k x_k, where e = +-1 says whether a positive displacement of that drum closes the
gap. The co-energy W = C(g) V^2 / 2 with C = eps0 S / g gives the linearised force F_j = sum_k K_jk x_k,
K_jk = d^2 W / dx_j dx_k:

    K_jk = e_j e_k eps0 S V_jk^2 / d^3        (j != k; the geometric sign s_jk = e_j e_k)
    K_jj = sum_k eps0 S V_jk^2 / d^3 > 0      (electrostatic softening, always)

Face-to-face drums moving along the common axis (x_j closes and x_k opens the gap for the same sign,
e_j e_k = -1) give K_jk < 0. |K_jk| is proportional to V^2: the bias voltages are the physical knob,
the sign is fixed by the geometry. The softening lowers each drum's frequency by K_jj / (2 m Omega_m)
and must be compensated (e.g. by tuning the drum tension) or absorbed into the drive frame.

Dimensionless coupling for :mod:`pyosc.models.optomech`: k_jk = K_jk / (m Omega_m^2) (the term
u_j'' += sum_k k_jk u_k). The phase reduction needs max_j sum_k |k_jk| / 2 << gamma (the amplitude
decay rate in units of Omega_m; :func:`max_voltage` inverts this condition).

SiN membrane (fundamental mode of a circular drum under tensile stress sigma): f_m = 2.405 / (pi D)
sqrt(sigma / rho), effective mass m_eff = J_1(2.405)^2 m = 0.2695 m, m = rho pi (D/2)^2 h, damping
Gamma_m = Omega_m / Q. The presets are ILLUSTRATIVE values (the paper's table is not available).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import j1, jn_zeros

from pyosc.errors import InvalidInputError, as_real_array, check_positive
from pyosc.validation import COUNT, check

EPS0 = 8.8541878128e-12  # F/m
J01 = float(jn_zeros(0, 1)[0])  # 2.4048..., first zero of J_0
MODE_MASS_FRACTION = float(j1(J01) ** 2)  # 0.2695: m_eff / m of the fundamental drum mode


@dataclass(frozen=True)
class Drum:
    """A tensioned circular membrane: ``density`` (kg/m^3), ``stress`` (Pa), ``thickness``, ``diameter`` (m), ``Q``."""

    density: float
    stress: float
    thickness: float
    diameter: float
    Q: float

    def __post_init__(self):
        for name in ("density", "stress", "thickness", "diameter", "Q"):
            check_positive(name, getattr(self, name))

    @property
    def frequency(self) -> float:
        """Fundamental frequency f_m (Hz)."""
        return J01 / (np.pi * self.diameter) * np.sqrt(self.stress / self.density)

    @property
    def omega(self) -> float:
        """Angular frequency Omega_m (rad/s)."""
        return 2 * np.pi * self.frequency

    @property
    def mass(self) -> float:
        """Effective mass of the fundamental mode (kg)."""
        return MODE_MASS_FRACTION * self.density * np.pi * (self.diameter / 2) ** 2 * self.thickness

    @property
    def stiffness(self) -> float:
        """m_eff Omega_m^2 (N/m), the unit of the dimensionless coupling."""
        return self.mass * self.omega ** 2

    @property
    def damping(self) -> float:
        """Gamma_m = Omega_m / Q (1/s)."""
        return self.omega / self.Q


SIN_PRESETS: dict[str, Drum] = {
    "sin-50nm": Drum(density=3100.0, stress=1.0e9, thickness=50e-9, diameter=30e-6, Q=1e4),
    "sin-100nm": Drum(density=3100.0, stress=1.0e9, thickness=100e-9, diameter=30e-6, Q=1e5),
}
"""High-stress SiN drums of 30 um diameter (f_m = 14.5 MHz)."""


@dataclass(frozen=True)
class Capacitor:
    """Parallel-plate coupling capacitor: ``area`` (m^2) and rest ``gap`` (m)."""

    area: float = 7e-10
    gap: float = 0.5e-6

    def __post_init__(self):
        check_positive("area", self.area)
        check_positive("gap", self.gap)

    @property
    def stiffness_per_volt2(self) -> float:
        """eps0 S / d^3 (N m^-1 V^-2)."""
        return EPS0 * self.area / self.gap ** 3


def coupling_matrix(voltages, capacitor: Capacitor = Capacitor(), signs=None) -> np.ndarray:
    """Stiffness matrix K (N/m) of a network from the pair bias voltages ``voltages`` (N, N) in volts.

    ``signs``: (N, N) geometric signs e_j e_k of the pairs (default -1: face-to-face plates). Diagonal:
    softening sum_k eps0 S V_jk^2 / d^3. ``voltages`` must be symmetric with a zero diagonal.
    """
    V = as_real_array("voltages", voltages, ndim=2)
    n = V.shape[0]
    if V.shape != (n, n) or not np.allclose(V, V.T) or np.any(np.diag(V) != 0):
        raise InvalidInputError(f"voltages must be a symmetric (N, N) matrix with zero diagonal, got shape {V.shape}")
    s = -np.ones((n, n)) if signs is None else as_real_array("signs", signs, shape=(n, n))
    if not np.all(np.isin(s[~np.eye(n, dtype=bool)], (-1.0, 1.0))) or not np.array_equal(s, s.T):
        raise InvalidInputError("signs must be a symmetric matrix of -1 and +1 (off the diagonal)")
    k = capacitor.stiffness_per_volt2 * V ** 2
    return s * k * (1 - np.eye(n)) + np.diag(k.sum(axis=1))


def dimensionless(K, drum: Drum) -> np.ndarray:
    """k = K / (m_eff Omega_m^2), the coupling of the dimensionless models."""
    return as_real_array("K", K) / drum.stiffness


def frequency_softening(K, drum: Drum) -> np.ndarray:
    """Frequency shift of each drum by the diagonal (softening) terms, -K_jj / (2 m Omega_m), in rad/s."""
    return -np.diag(as_real_array("K", K, ndim=2)) / (2 * drum.mass * drum.omega)


def weak_coupling_ratio(K, drum: Drum, gamma: float) -> float:
    """max_j sum_{k != j} |k_jk| / 2 / gamma: the phase reduction is valid for ratio << 1.

    ``gamma``: the amplitude decay rate of the self-oscillating cell in units of Omega_m
    (:attr:`pyosc.models.optomech.LimitCycle.gamma`, of order Gamma_m / Omega_m = 1/Q).
    """
    check_positive("gamma", gamma)
    k = dimensionless(K, drum)
    off = np.abs(k) * (1 - np.eye(k.shape[0]))
    return float(off.sum(axis=1).max() / 2 / gamma)


def max_voltage(drum: Drum, gamma: float, capacitor: Capacitor = Capacitor(), n_neighbours: int = 1,
                ratio: float = 0.1) -> float:
    """Largest bias voltage (V) keeping the weak-coupling ratio below ``ratio`` with ``n_neighbours`` equal couplings."""
    check_positive("gamma", gamma)
    check_positive("ratio", ratio)
    check("n_neighbours", n_neighbours, COUNT)
    return float(np.sqrt(2 * ratio * gamma * drum.stiffness / (n_neighbours * capacitor.stiffness_per_volt2)))
