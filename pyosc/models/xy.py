"""XY (Kuramoto-type) phase-oscillator network with an energy, after Wang, Wanjura & Marquardt (arXiv 2402.08579).

Units i = 1..N carry unwrapped real phases phi_i (radians). The energy is

    E(phi) = -1/2 sum_ij W_ij cos(phi_i - phi_j) - sum_i h_i cos(phi_i - psi_i),

with W real symmetric and zero on the diagonal (coupling strengths, in units of the inverse time
of the overdamped dynamics), h the bias (drive) amplitudes and psi the bias phases. The dynamics is
the gradient flow d phi / dt = -dE/dphi, with clamped (input) units held fixed.

Outputs are compared to target phases tau with
  * the distance (paper's Eq. 3, for monitoring)  D = 1/2 sum_k [1 - cos(phi_k - tau_k)],
  * the log cost (paper's Eq. 4, for nudging)      C = -sum_k log(1 + cos(phi_k - tau_k)),
    whose force on output k is -beta tan((phi_k - tau_k)/2); it diverges at anti-alignment.

All functions are pure ``jax.numpy`` functions of one parameter set ``XYParams`` and phases of shape ``(..., N)``
(any leading batch axes); the energy, its phase derivatives and the costs are ``jax.jit``-wrapped (one compiled
program per shape when called on arrays, inlined in the programs that call them). Energy derivatives with respect to
parameters are per *pair*: dE/dW_ij = -cos(phi_i - phi_j) applies to both W_ij and W_ji, keeping W symmetric.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import pyosc.models.float64  # noqa: F401  (JAX in double precision)
from pyosc.errors import InvalidInputError
from pyosc.models import registry
from pyosc.topology import Topology


class XYParams(NamedTuple):
    """Trainable parameters. ``W``: (..., N, N) couplings; ``h``: (..., N) bias amplitudes; ``psi``: (..., N) bias phases (rad).

    A leading axis, when present, stacks independent networks (training runs).
    """

    W: jnp.ndarray
    h: jnp.ndarray
    psi: jnp.ndarray


def validate_params(params, n_units: int | None = None) -> XYParams:
    """Check shapes, finiteness, symmetry and zero diagonal (:func:`pyosc.models.registry.validate_params`);
    return the parameters (a mapping or :class:`XYParams`) as float64 NumPy arrays."""
    return XYParams(**registry.validate_params("xy", params, n_units)[0])


def init_params(topology: Topology, rng: np.random.Generator, *, scheme: str = "xor", n_runs: int | None = None) -> XYParams:
    """Random initial parameters with the paper's recipes (couplings only on the topology's pairs).

    ``scheme``:
      * ``"xor"``: A ~ N(0, 1), W = (A + A^T)/2 (off-diagonal std 1/sqrt 2); h ~ U(-1/2, 1/2); psi ~ U(-pi, pi).
      * ``"all-to-all"``: A ~ sqrt(2/N) N(0, 1), W = (A + A^T)/2 (std 1/sqrt N); h = 0; psi ~ U(-pi, pi).
      * ``"layered"``: W between layers k, k+1 ~ N(0, 1)/sqrt(n_k + n_{k+1}); h = 0; psi ~ U(-pi, pi).
    With ``n_runs`` the arrays get a leading axis of that many independent draws.
    """
    if n_runs is not None:
        draws = [init_params(topology, rng, scheme=scheme) for _ in range(n_runs)]
        return XYParams(*(np.stack(a) for a in zip(*draws)))
    n = topology.n_units
    mask = topology.coupling_mask
    if scheme in ("xor", "all-to-all"):
        scale = 1.0 if scheme == "xor" else np.sqrt(2.0 / n)
        a = scale * rng.standard_normal((n, n))
        W = (a + a.T) / 2
        h = rng.uniform(-0.5, 0.5, n) if scheme == "xor" else np.zeros(n)
    elif scheme == "layered":
        if topology.layers is None:
            raise InvalidInputError(f"scheme 'layered' needs a layered topology, got {topology.name}")
        W = np.zeros((n, n))
        starts = np.cumsum((0,) + topology.layers)
        for k in range(len(topology.layers) - 1):
            a, b = slice(starts[k], starts[k + 1]), slice(starts[k + 1], starts[k + 2])
            block = rng.standard_normal((topology.layers[k], topology.layers[k + 1]))
            W[a, b] = block / np.sqrt(topology.layers[k] + topology.layers[k + 1])
            W[b, a] = W[a, b].T
        h = np.zeros(n)
    else:
        raise InvalidInputError(f"unknown init scheme {scheme!r}; use 'xor', 'all-to-all' or 'layered'")
    psi = rng.uniform(-np.pi, np.pi, n)
    return XYParams(np.where(mask, W, 0.0), h, psi)


def grow_layers(params, old: Topology, new: Topology, rng: np.random.Generator) -> XYParams:
    """Parameters of the layered network ``new``, grown from those of ``old`` (same input and output layers, each
    hidden layer at least as wide) without changing what it computes.

    Unit k of a layer of ``old`` is unit k of that layer of ``new`` and keeps its parameters. The added hidden units
    get the ``"layered"`` initialisation's couplings to the inputs and to each other (h = 0, random psi), and zero
    couplings to the old free units: those stay where they were, so every equilibrium of ``old`` is (with the added
    units at their own equilibrium) one of ``new``, with the same outputs. Training then couples the added units in
    (EP's gradient on a zero coupling to an output is not zero).
    """
    if old.layers is None or new.layers is None or len(old.layers) != len(new.layers) \
            or old.layers[0] != new.layers[0] or old.layers[-1] != new.layers[-1] \
            or any(b < a for a, b in zip(old.layers, new.layers)):
        raise InvalidInputError(f"cannot grow {old.name} into {new.name}: both must be layered, with the same input "
                                f"and output layers and hidden layers at least as wide")
    p = validate_params(params, old.n_units)
    fresh = init_params(new, rng, scheme="layered")
    starts = np.cumsum((0,) + new.layers)[:-1]
    kept = np.concatenate([s + np.arange(n) for s, n in zip(starts, old.layers)])
    added = np.setdiff1d(np.arange(new.n_units), kept)
    old_free = kept[~old.clamped]
    W, h, psi = np.array(fresh.W), np.array(fresh.h), np.array(fresh.psi)
    W[np.ix_(added, old_free)] = W[np.ix_(old_free, added)] = 0.0
    W[np.ix_(kept, kept)] = p.W
    h[kept], psi[kept] = p.h, p.psi
    return XYParams(W, h, psi)


def with_spread(params, spread: float, rng: np.random.Generator) -> XYParams:
    """A fabricated copy of a network: every coupling and bias amplitude off by a random factor,
    W_ij (1 + spread xi_ij) (xi_ij = xi_ji standard normal) and h_i (1 + spread xi_i); the bias phases exact."""
    p = validate_params(params)
    if not (np.isfinite(spread) and spread >= 0):
        raise InvalidInputError(f"spread must be finite and >= 0, got {spread!r}")
    xi = np.triu(rng.standard_normal(p.W.shape), 1)
    return XYParams(np.asarray(p.W) * (1 + spread * (xi + xi.T)),
                    np.asarray(p.h) * (1 + spread * rng.standard_normal(p.h.shape)), np.asarray(p.psi))


# --- energy, forces, Hessian -------------------------------------------------------------------

@jax.jit
def energy(phi: jnp.ndarray, p: XYParams) -> jnp.ndarray:
    """E(phi), shape ``phi.shape[:-1]``."""
    z = jnp.exp(1j * phi)
    pair = jnp.real(jnp.sum(jnp.conj(z) * (z @ p.W), axis=-1))
    return -0.5 * pair - jnp.sum(p.h * jnp.cos(phi - p.psi), axis=-1)


@jax.jit
def energy_grad_phi(phi: jnp.ndarray, p: XYParams) -> jnp.ndarray:
    """dE/dphi_i = sum_j W_ij sin(phi_i - phi_j) + h_i sin(phi_i - psi_i)."""
    z = jnp.exp(1j * phi)
    return jnp.imag(z * jnp.conj(z @ p.W)) + p.h * jnp.sin(phi - p.psi)


@jax.jit
def energy_hessian_diag(phi: jnp.ndarray, p: XYParams) -> jnp.ndarray:
    """Diagonal of the Hessian: sum_j W_ij cos(phi_i - phi_j) + h_i cos(phi_i - psi_i)."""
    z = jnp.exp(1j * phi)
    return jnp.real(jnp.conj(z) * (z @ p.W)) + p.h * jnp.cos(phi - p.psi)


def coupling_hessian_block(phi: jnp.ndarray, W: jnp.ndarray, rows: np.ndarray, cols: np.ndarray) -> jnp.ndarray:
    """Coupling part of the Hessian on ``rows x cols``: -W_ij cos(phi_i - phi_j) (zero for i == j).

    ``phi`` and ``W`` index the same units; add :func:`energy_hessian_diag` on the diagonal.
    """
    return -W[np.ix_(rows, cols)] * jnp.cos(phi[..., rows, None] - phi[..., None, cols])


@jax.jit
def energy_hessian(phi: jnp.ndarray, p: XYParams) -> jnp.ndarray:
    """Full Hessian d^2E/dphi_i dphi_j, shape ``phi.shape + (N,)``."""
    every = np.arange(phi.shape[-1])
    off = coupling_hessian_block(phi, p.W, every, every)
    return off + energy_hessian_diag(phi, p)[..., :, None] * jnp.eye(phi.shape[-1])


# --- costs -------------------------------------------------------------------------------------

@jax.jit
def distance(phi_out: jnp.ndarray, target: jnp.ndarray) -> jnp.ndarray:
    """Monitoring distance 1/(2 n_out) sum_k [1 - cos(phi_k - tau_k)] over the last axis, in [0, 1].

    For one output this is the paper's Eq. 3; for several it is Eq. 3 / n_out, the paper's digits convention.
    """
    return 0.5 * jnp.mean(1.0 - jnp.cos(phi_out - target), axis=-1)


@jax.jit
def log_cost(phi_out: jnp.ndarray, target: jnp.ndarray) -> jnp.ndarray:
    """Training cost -sum_k log(1 + cos(phi_k - tau_k)) over the last axis (+inf at anti-alignment)."""
    return -jnp.sum(jnp.log1p(jnp.cos(phi_out - target)), axis=-1)


@jax.jit
def log_cost_grad(phi_out: jnp.ndarray, target: jnp.ndarray) -> jnp.ndarray:
    """dC/dphi_k = sin(d) / (1 + cos d) = tan(d / 2) with d = phi_k - tau_k."""
    d = phi_out - target
    return jnp.sin(d) / (1.0 + jnp.cos(d))


@jax.jit
def log_cost_curvature(phi_out: jnp.ndarray, target: jnp.ndarray) -> jnp.ndarray:
    """d^2C/dphi_k^2 = 1 / (1 + cos d)."""
    return 1.0 / (1.0 + jnp.cos(phi_out - target))


# --- derivatives with respect to parameters (for equilibrium propagation) ---------------------

def energy_param_grad(phi: jnp.ndarray, p: XYParams, rows: np.ndarray | None = None) -> XYParams:
    """dE/dtheta averaged over all leading axes of ``phi`` (samples, initial states).

    dE/dW_ij = -<cos(phi_i - phi_j)> (per pair, both entries), dE/dh_i = -<cos(phi_i - psi_i)>,
    dE/dpsi_i = -h_i <sin(phi_i - psi_i)>. The W diagonal is zero. Couplings absent from the
    network must be masked by the caller. With ``rows`` (unit indices) only the pairs that involve one of these
    units are computed; the others are zero (e.g. pairs of clamped units, whose EP gradient vanishes).
    """
    n = phi.shape[-1]
    flat = phi.reshape(-1, n)
    z = jnp.exp(1j * flat)
    if rows is None:
        dW = -(jnp.real(jnp.conj(z).T @ z) / flat.shape[0]) * (1.0 - jnp.eye(n))
    else:
        part = jnp.zeros((n, n)).at[rows].set(jnp.real(jnp.conj(z[:, rows]).T @ z) / flat.shape[0])
        both = np.zeros((n, n), dtype=bool)
        both[np.ix_(rows, rows)] = True
        dW = -jnp.where(both, 0.5 * (part + part.T), part + part.T) * (1.0 - jnp.eye(n))
    dh = -jnp.mean(jnp.cos(flat - p.psi), axis=0)
    dpsi = -p.h * jnp.mean(jnp.sin(flat - p.psi), axis=0)
    return XYParams(dW, dh, dpsi)



# --- the network seen from its free units (clamped units folded into a drive) -----------------

def real_matmul(z: jnp.ndarray, W: jnp.ndarray) -> jnp.ndarray:
    """``z @ W`` for complex ``z`` and real ``W`` with two real products (half the work of a complex one)."""
    return jax.lax.complex(jnp.real(z) @ W, jnp.imag(z) @ W)


def clamped_drive(phi: jnp.ndarray, p: XYParams, free: np.ndarray, clamped: np.ndarray) -> jnp.ndarray:
    """Complex drive on the free units, constant while the clamped units are held:

    c_f = h_f exp(i psi_f) + sum_{k clamped} W_kf exp(i phi_k),  shape ``phi.shape[:-1] + (len(free),)``.
    With it, E = -1/2 Re sum_f conj(z_f) (u_f + c_f) + const, where u = z_free @ W_ff + c is the
    local field; dE/dphi_f = Im(z_f conj(u_f)) and the Hessian diagonal is
    Re(conj(z_f) u_f).
    """
    bias = p.h[free] * jnp.exp(1j * p.psi[free])
    if clamped.size == 0:
        return jnp.broadcast_to(bias, phi.shape[:-1] + (free.size,)).astype(jnp.complex128)
    return bias + real_matmul(jnp.exp(1j * phi[..., clamped]), p.W[np.ix_(clamped, free)])

