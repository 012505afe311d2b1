"""Numerical phase reduction of the Van der Pol circuit: limit cycle, phase response, coupling function.

Method (Malkin's theorem; Hoppensteadt & Izhikevich 1997, ch. 9; Corinto, Bonnin & Gilli):

1. Limit cycle x^s(t) of one oscillator, period T, omega = 2 pi / T: Newton iteration on the
   Poincare map of the section v = 0, dv/dt > 0 (the phase origin, theta = 0), then one period
   sampled uniformly. Integrations use LSODA (stiffness switching) with the analytic Jacobian.
2. Phase response (perturbation-projection vector) z(t): the T-periodic solution of the adjoint
   equation dz/dt = -Df(x^s(t))^T z. Integrated backward in time (the stable direction for the
   adjoint) over one period from two basis vectors, it gives the adjoint monodromy matrix, whose
   eigenvector of multiplier 1 starts the periodic solution; it is then normalised so that z(t)^T dx^s/dt = 1 (z in time-shift units:
   a current pulse q into node k shifts its phase by z_v q / C seconds). The product is constant
   along the cycle for the exact periodic solution; :attr:`PeriodicOrbit.normalisation` returns it at
   every sample as a check.
3. Coupling function of the resistive coupling of :mod:`pyosc.models.vdp`. Node k receives the
   current G (s v_j - v_k); averaging over one period gives, in angle units (phi = omega theta),

       dphi_k/dt = sum_j [ G_kj H(phi_j - phi_k) + |G_kj| lambda ],
       H(x)   = (omega / C) <z_v(t) v^s(t + x / omega)>_t,     lambda = -(omega / C) <z_v v^s>_t,

   computed exactly from the FFT of the sampled z_v and v^s: with Z_m, V_m their Fourier
   coefficients and q_m = conj(Z_m) V_m, a_0 = (omega/C) q_0, a_m = 2 (omega/C) Re q_m,
   b_m = -2 (omega/C) Im q_m. ``lambda`` is the frequency shift from loading node k with its
   memristors (zero in the near-harmonic limit). RECONSTRUCTED: an inverted (negative) coupling
   gives exactly -H because the Van der Pol cycle is half-wave symmetric, v^s(t + T/2) = -v^s(t)
   (so only odd harmonics appear), while the load term keeps its sign.

The full circuit (for validation) is integrated with SciPy's LSODA (switches to BDF when stiff, as
in the relaxation regime) and the analytic Jacobian; upward zero crossings of every v_k are located
as events, and :func:`circuit_phases` turns them into phase deviations comparable with the phase model.
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import solve_ivp
from scipy.interpolate import CubicSpline
from scipy.linalg import block_diag

import pyosc.models.float64  # noqa: F401  (JAX in double precision)
from pyosc.errors import (
    ConvergenceError,
    InvalidInputError,
    as_real_array,
    check_positive,
)
from pyosc.models import onn, vdp
from pyosc.validation import Interval, check


@dataclass(frozen=True)
class PeriodicOrbit:
    """One period of the limit cycle and its phase response, sampled at ``t`` = k T / M.

    ``x``: (M, 2) states (v, i); ``prc``: (M, 2) the normalised adjoint solution z(t);
    ``floquet_exponent``: (1/T) ln of the non-trivial Floquet multiplier (< 0: stable).
    """

    circuit: vdp.VdPCircuit
    period: float
    t: np.ndarray
    x: np.ndarray
    prc: np.ndarray
    floquet_exponent: float

    @property
    def omega(self) -> float:
        return 2 * np.pi / self.period

    @property
    def normalisation(self) -> np.ndarray:
        """z(t)^T dx^s/dt at every sample: 1 for a correctly normalised periodic PRC."""
        return np.sum(self.prc * _field(self.circuit)(self.x), axis=-1)

    def state_at(self, phase) -> np.ndarray:
        """Points x^s(phase / omega) on the cycle for phases (rad) of any shape: shape ``phase.shape + (2,)``."""
        phase = as_real_array("phase", phase)
        spline = CubicSpline(np.append(self.t, self.period), np.vstack([self.x, self.x[:1]]), bc_type="periodic")
        return spline(np.mod(phase / self.omega, self.period))


def _field(c: vdp.VdPCircuit):
    """Vector field of one oscillator on states (..., 2), NumPy in and out."""
    def f(x):
        v, i = x[..., 0], x[..., 1]
        return np.stack([(-i - (-c.a * v + c.b * v ** 3)) / c.C, v / c.L], axis=-1)
    return f


def _jac(c: vdp.VdPCircuit, v: float) -> np.ndarray:
    return np.array([[(c.a - 3 * c.b * v * v) / c.C, -1.0 / c.C], [1.0 / c.L, 0.0]])


def periodic_orbit(circuit: vdp.VdPCircuit = vdp.VdPCircuit(), n_samples: int = 2048, rtol: float = 1e-12,
                   atol: float = 1e-13) -> PeriodicOrbit:
    """Limit cycle and phase response of one oscillator (see the module docstring)."""
    check("n_samples", n_samples, Interval(Integral, 64, None))
    c = circuit
    f = _field(c)
    rhs = lambda t, y: f(y)
    jac = lambda t, y: _jac(c, y[0])
    up = lambda t, y: y[0]
    up.direction = 1.0

    def next_crossing(i0: float, t_max: float):
        """Integrate from (v, i) = (0, i0) to the next upward crossing of v: (period, i there)."""
        sol = solve_ivp(rhs, (0.0, t_max), [0.0, i0], method="LSODA", jac=jac, rtol=rtol, atol=atol, events=up)
        tc = sol.t_events[0]
        tc, ic = tc[tc > 1e-9 * t_max], sol.y_events[0][tc > 1e-9 * t_max]
        if not sol.success or tc.size == 0:
            raise ConvergenceError(f"no limit cycle found for {circuit}: {sol.message}")
        return float(tc[0]), float(ic[0, 1])

    t_guess = 2 * np.pi * np.sqrt(c.L * c.C) * max(1.0, 0.26 * c.nonlinearity)
    _, i0 = next_crossing(-c.weak_amplitude * np.sqrt(c.C / c.L), 3 * t_guess)
    for _ in range(30):  # Newton on the Poincare map of the section v = 0, dv/dt > 0
        period, i1 = next_crossing(i0, 3 * t_guess)
        step = 1e-7 * max(abs(i0), 1e-3)
        slope = (next_crossing(i0 + step, 3 * t_guess)[1] - i1) / step
        new = i0 - (i1 - i0) / (slope - 1.0)
        if abs(new - i0) <= 1e-12 * max(abs(i0), 1e-3):
            i0 = new
            break
        i0 = new
    else:
        raise ConvergenceError(f"the Poincare-map Newton iteration for {circuit} did not converge")
    period, _ = next_crossing(i0, 3 * t_guess)
    one = solve_ivp(rhs, (0.0, period), [0.0, i0], method="LSODA", jac=jac, rtol=rtol, atol=atol, dense_output=True)
    t = np.arange(n_samples) * period / n_samples
    x = one.sol(t).T
    x[0] = (0.0, i0)
    floquet = float(np.mean((c.a - 3 * c.b * x[:, 0] ** 2) / c.C))  # (1/T) ln det(monodromy) = non-trivial exponent
    if floquet >= 0:
        raise ConvergenceError(f"the limit cycle of {circuit} is not stable (Floquet exponent {floquet:g})")
    spline = CubicSpline(np.append(t, period), np.vstack([x, x[:1]]), bc_type="periodic")
    adj = lambda s, z: -_jac(c, spline(np.mod(s, period))[0]).T @ z
    adj_jac = lambda s, z: -_jac(c, spline(np.mod(s, period))[0]).T

    def backward(zT, dense=False):
        return solve_ivp(adj, (period, 0.0), zT, method="LSODA", jac=adj_jac, rtol=rtol, atol=atol, dense_output=dense)

    monodromy = np.column_stack([backward(e).y[:, -1] for e in np.eye(2)])  # backward: multipliers 1, e^(floquet T)
    mult, vecs = np.linalg.eig(monodromy)
    k = int(np.argmin(np.abs(mult - 1.0)))
    if abs(mult[k] - 1.0) > 1e-6:
        raise ConvergenceError(f"adjoint monodromy has no unit multiplier (closest {mult[k]:.3g})")
    z = backward(np.real(vecs[:, k]), dense=True).sol(t).T
    z = z / np.mean(np.sum(z * f(x), axis=-1))
    return PeriodicOrbit(circuit, period, t, x, z, floquet)


class Reduction(NamedTuple):
    """Result of :func:`reduce_coupling`: ``H`` per unit conductance (rad per unit time per S) and
    ``load`` = lambda, the frequency shift per unit of sum_j |G_kj| (rad per unit time per S)."""

    H: onn.CouplingFunction
    load: float


def reduce_coupling(cycle: PeriodicOrbit, n_harmonics: int = 5) -> Reduction:
    """Fourier coefficients of H for the resistive (memristive) v-coupling, up to ``n_harmonics``."""
    check("n_harmonics", n_harmonics, Interval(Integral, 1, cycle.t.size // 4, closed="left"))
    m = cycle.t.size
    Z = np.fft.rfft(cycle.prc[:, 0]) / m
    V = np.fft.rfft(cycle.x[:, 0]) / m
    q = np.conj(Z) * V
    scale = cycle.omega / cycle.circuit.C
    a = scale * np.concatenate([[q[0].real], 2 * q[1:n_harmonics + 1].real])
    b = -2 * scale * q[1:n_harmonics + 1].imag
    load = -scale * float(np.mean(cycle.prc[:, 0] * cycle.x[:, 0]))
    return Reduction(onn.CouplingFunction(b, a), load)


# --- the full circuit, for validation --------------------------------------------------------

class CircuitRun(NamedTuple):
    """``x``: (..., len(times), N, 2) states; ``crossings``: per network and unit (object array of
    shape (..., N)), the times of the upward zero crossings of v."""

    times: np.ndarray
    x: np.ndarray
    crossings: np.ndarray


def simulate_circuit(circuit: vdp.VdPCircuit, G, x0, times, *, rtol: float = 1e-9, atol: float = 1e-11) -> CircuitRun:
    """Integrate coupled Van der Pol networks (LSODA, analytic block-diagonal Jacobian).

    ``G``: (N, N) signed conductances; ``x0``: (..., N, 2) initial states (several networks are
    integrated as one block-diagonal system); ``times``: increasing output times starting at >= 0.
    """
    G = vdp.check_conductances(G)
    n = G.shape[0]
    x0 = as_real_array("x0", x0)
    if x0.ndim < 2 or x0.shape[-2:] != (n, 2):
        raise InvalidInputError(f"x0 must have shape (..., {n}, 2), got {x0.shape}")
    times = as_real_array("times", times, ndim=1)
    if times.size < 1 or times[0] < 0 or np.any(np.diff(times) <= 0):
        raise InvalidInputError("times must be non-empty, non-negative and strictly increasing")
    check_positive("rtol", rtol)
    batch = x0.shape[:-2]
    n_net = int(np.prod(batch))
    shape = (n_net, n, 2)
    Gj = jnp.asarray(G)
    rhs = jax.jit(lambda y: vdp.vector_field(y.reshape(shape), Gj, circuit).reshape(-1))
    jac1 = jax.jit(jax.vmap(lambda x: vdp.jacobian(x, Gj, circuit)))
    fun = lambda t, y: np.asarray(rhs(y))
    jac = lambda t, y: block_diag(*np.asarray(jac1(y.reshape(shape))))
    events = [_upward_crossing(2 * k) for k in range(n_net * n)]
    sol = solve_ivp(fun, (0.0, float(times[-1])), x0.reshape(-1), method="LSODA", jac=jac, t_eval=times,
                    rtol=rtol, atol=atol, events=events)
    if not sol.success:
        raise ConvergenceError(f"circuit integration failed: {sol.message}")
    x = sol.y.T.reshape((times.size,) + shape)
    crossings = np.empty(n_net * n, dtype=object)
    crossings[:] = [np.asarray(tc) for tc in sol.t_events]
    return CircuitRun(times, np.moveaxis(x, 0, 1).reshape(batch + (times.size, n, 2)), crossings.reshape(batch + (n,)))


def _upward_crossing(index: int):
    """solve_ivp event: component ``index`` (a node voltage) crosses zero upward."""
    def event(t, y):
        return y[index]
    event.direction = 1.0
    return event


def circuit_phases(run: CircuitRun, cycle: PeriodicOrbit, phi0) -> np.ndarray:
    """Phase deviations phi_k(t) (rad) of a circuit run, shape (..., len(times), N); NaN before the
    first crossing and after the last one of a unit.

    The total phase of unit k is 2 pi (m + (t - t_m) / (t_{m+1} - t_m)) between its m-th and
    (m+1)-th upward crossings (exact at crossings, linear between them); the deviation is that minus
    omega t, shifted by the multiple of 2 pi that brings its first value closest to ``phi0``
    (the initial phases, shape (..., N)) so that the phases are continuous from t = 0.
    """
    phi0 = as_real_array("phi0", phi0, shape=run.crossings.shape)
    out = np.full(run.crossings.shape[:-1] + (run.times.size, run.crossings.shape[-1]), np.nan)
    for idx in np.ndindex(run.crossings.shape):
        tc = run.crossings[idx]
        if tc.size < 2:
            continue
        total = 2 * np.pi * np.interp(run.times, tc, np.arange(tc.size), left=np.nan, right=np.nan)
        dev = total - cycle.omega * run.times
        dev = dev + 2 * np.pi * np.round((phi0[idx] + cycle.omega * tc[0]) / (2 * np.pi))  # deviation -omega tc[0] there
        out[idx[:-1] + (slice(None), idx[-1])] = dev
    return out
