"""The JAX engine's relaxations: compiled, batched equilibria of energy models on CPU or GPU, float64.

Models (table :data:`MODELS`): ``"xy"`` (:mod:`pyosc.models.xy`, parameters :class:`~pyosc.models.xy.XYParams`)
and ``"onn"`` (:mod:`pyosc.models.onn`, the phase-deviation model with a coupling function H given by Fourier
coefficients, parameters :class:`~pyosc.models.onn.ONNParams`). XY is the first-harmonic case of
ONN; it keeps its own specialised local-field code, and the Newton loop is shared (:class:`_Ops`).
The ``"newton"`` and ``"continuation"`` methods need an energy: with ``"onn"`` H must be odd (detunings are
allowed, they tilt the energy). ``"ode"`` and :func:`trajectory` integrate the full ONN velocity, even
parts of H included.

Three relaxation methods (see :class:`~pyosc.engines.base.RelaxOptions`):

* ``"newton"`` (the default): follow the gradient flow (explicit Dormand-Prince steps while it is not stiff, then
  linearly implicit ode23s steps with the analytic Hessian) until a Kantorovich-type certificate proves that
  Newton's method from the current state ends where the flow ends, then Newton steps. It ends in the basin that
  the flow reaches from the initial phases (:mod:`pyosc.engines.jax.flow`, which states the criterion and the
  guarantee).
* ``"continuation"``: pseudo-transient continuation, the previous default. Each iteration takes an implicit-Euler
  step of the gradient flow, ``(H + mu) dphi = -g`` with ``mu = 1/dt`` (Levenberg-Marquardt), accepted only if
  F = E + beta C decreases; ``mu`` shrinks after good steps (dt grows toward a Newton step) and
  grows after rejections (Nielsen's rule). Fewer iterations than ``"newton"``, but for a few % of random starts
  (20 % on a layered digits network at initialisation) it ends in another local minimum than the flow.

In both, the Hessian is restricted to the free units; an independent set of free units (e.g. a hidden layer,
whose units are not coupled to each other) has a diagonal block and is eliminated by a Schur complement, so a
layered [64, 200, 10] network factorises only a 10 x 10 matrix per state. Converged = max |dphi/dt| < tol and
a positive-definite Hessian (a stable equilibrium). A large batch relaxes through a queue (:func:`_queued`): a
fixed number of slots step together and a slot whose state has settled takes the next one, so a batch costs about
its mean, not its slowest, number of iterations, in one compiled loop.

* ``"ode"``: diffrax integration of the flow per state, stopped by an event at the steady state
  (XY: free units only, with the same blocks and drive as the Newton loop). Converged also requires a stable
  end state (XY: positive-definite Hessian; ONN: a Jacobian with eigenvalues of negative real part), so a state
  started exactly at a saddle, where the flow stays, is flagged.

Every state is its own problem (vmapped; ``shared_steps`` integrates a batch as one ODE); finished
states stop changing. :func:`relax`, :func:`ep_step` and :func:`trajectory` take validated float64 arrays
(see :class:`~pyosc.engines.base.EquilibriumEngine`).
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, partial
from typing import NamedTuple

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from pyosc.engines.base import EPStep, Equilibrium, RelaxOptions
from pyosc.engines.jax import linalg
from pyosc.engines.jax.batching import flat_states
from pyosc.engines.jax.options import split, view
from pyosc.engines.jax.solvers import SOLVERS
from pyosc.engines.jax.trig import sincos
from pyosc.models import onn, xy
from pyosc.topology import Topology


class _Plan(NamedTuple):
    """Static (hashable) structure of a network, for compilation.

    The free units are relaxed in the order ``order`` = eliminated set first, then the kept units;
    ``n_eliminated`` splits the two, and ``outputs`` gives the output units' positions in that order.
    """

    n_units: int
    order: tuple[int, ...]
    clamped: tuple[int, ...]
    n_eliminated: int
    outputs: tuple[int, ...]


def _plan(topology: Topology) -> _Plan:
    """Split the free units into an independent set (eliminated) and the rest (kept, dense)."""
    free = np.flatnonzero(~topology.clamped)
    adj = topology.coupling_mask[np.ix_(free, free)]
    chosen, blocked = [], np.zeros(free.size, dtype=bool)
    for i in np.argsort(adj.sum(1), kind="stable"):  # greedy independent set, low degree first
        if not blocked[i]:
            chosen.append(i)
            blocked |= adj[i]
            blocked[i] = True
    if 2 * len(chosen) < free.size:  # not worth a Schur complement
        chosen = []
    elim = np.sort(np.asarray(chosen, dtype=int))
    order = free[np.concatenate([elim, np.setdiff1d(np.arange(free.size), elim)])]
    outputs = [int(np.flatnonzero(order == o)[0]) for o in topology.output_units]
    return _Plan(topology.n_units, tuple(order.tolist()), tuple(np.flatnonzero(topology.clamped).tolist()),
                 len(elim), tuple(outputs))


def _idx(t: tuple[int, ...]) -> np.ndarray | slice:
    """Static index: a slice when contiguous (cheap in XLA), else an integer array."""
    a = np.asarray(t, dtype=int)
    if a.size and np.array_equal(a, np.arange(a[0], a[0] + a.size)):
        return slice(int(a[0]), int(a[0]) + a.size)
    return a


class _Blocks(NamedTuple):
    """Couplings among the free units in relaxation order: eliminated-kept and kept-kept blocks."""

    ek: jnp.ndarray
    kk: jnp.ndarray


class _Local(NamedTuple):
    """F = E + beta C, its gradient and Hessian diagonal at free phases ``phi`` (per state), and the trigonometric
    tables (cos, sin) of the phases (XY) or of their harmonics (ONN) that the Hessian blocks are made of."""

    phi: jnp.ndarray
    F: jnp.ndarray
    g: jnp.ndarray
    diag: jnp.ndarray
    tables: tuple[jnp.ndarray, jnp.ndarray]


def _free_blocks(W: jnp.ndarray, plan: _Plan) -> _Blocks:
    """The couplings among the free units, in relaxation order, as :class:`_Blocks`."""
    order, ne = np.asarray(plan.order, dtype=int), plan.n_eliminated
    W_ff = W[np.ix_(order, order)]
    return _Blocks(W_ff[:ne, ne:], W_ff[ne:, ne:])


def _xy_free_system(p, phi0, plan: _Plan) -> tuple[_Blocks, jnp.ndarray]:
    """The XY network seen from its free units: coupling blocks and the constant drive of the clamped units."""
    order, clamped = np.asarray(plan.order, dtype=int), np.asarray(plan.clamped, dtype=int)
    return _free_blocks(p.W, plan), xy.clamped_drive(phi0, p, order, clamped)


def _local(phi, W: _Blocks, drive, targets, beta, plan) -> _Local:
    """Everything the Newton loop needs at ``phi`` from one local-field evaluation."""
    ne = plan.n_eliminated
    sin, cos = sincos(phi)
    z = jax.lax.complex(cos, sin)
    z_e, z_k = z[..., :ne], z[..., ne:]
    u_k = xy.real_matmul(z_k, W.kk)
    if ne:  # no couplings inside the eliminated set
        u = jnp.concatenate([xy.real_matmul(z_k, W.ek.T), u_k + xy.real_matmul(z_e, W.ek)], axis=-1) + drive
    else:
        u = u_k + drive
    F = -0.5 * jnp.sum(jnp.real(jnp.conj(z) * (u + drive)), axis=-1)
    g = jnp.imag(z * jnp.conj(u))
    diag = jnp.real(jnp.conj(z) * u)
    return _nudged(_Local(phi, F, g, diag, (cos, sin)), targets, beta, plan)


def _nudged(loc: _Local, targets, beta, plan) -> _Local:
    """Add beta C (log cost on the outputs) to F, its gradient and Hessian diagonal. The free phase
    (beta = 0) may sit exactly at anti-alignment, where C is infinite: it adds nothing there."""
    out = _idx(plan.outputs)
    po = loc.phi[..., out]
    on = beta > 0
    return loc._replace(F=loc.F + jnp.where(on, beta * xy.log_cost(po, targets), 0.0),
                        g=loc.g.at[..., out].add(jnp.where(on, beta * xy.log_cost_grad(po, targets), 0.0)),
                        diag=loc.diag.at[..., out].add(jnp.where(on, beta * xy.log_cost_curvature(po, targets), 0.0)))


def _onn_local(phi, W: _Blocks, drive, bias, targets, beta, plan) -> _Local:
    """:func:`_local` for the ONN model: harmonics n = 1..M of H's odd part b_n, drive (..., nf, M) from
    the clamped units, ``bias`` = (h, psi, omega, shil, b) with the first four on the free units."""
    ne = plan.n_eliminated
    b = bias[4]
    n = jnp.arange(1, b.shape[-1] + 1, dtype=jnp.float64)
    sin, cos = sincos(n * phi[..., None])
    z = jax.lax.complex(cos, sin)
    z_e, z_k = z[..., :ne, :], z[..., ne:, :]
    u_k = jnp.einsum("...jm,jk->...km", z_k, W.kk.astype(z.dtype))
    if ne:
        ek = W.ek.astype(z.dtype)
        u = jnp.concatenate([jnp.einsum("...km,ek->...em", z_k, ek),
                             u_k + jnp.einsum("...em,ek->...km", z_e, ek)], axis=-2) + drive
    else:
        u = u_k + drive
    h, psi, omega, shil = bias[:4]
    F = (-0.5 * jnp.sum(jnp.real(jnp.conj(z) * (u + drive)) * (b / n), axis=(-2, -1))
         - jnp.sum(h * jnp.cos(phi - psi), axis=-1) - jnp.sum(omega * phi, axis=-1)
         - 0.5 * jnp.sum(shil * jnp.cos(2 * phi), axis=-1))
    g = jnp.sum(b * jnp.imag(z * jnp.conj(u)), axis=-1) + h * jnp.sin(phi - psi) - omega + shil * jnp.sin(2 * phi)
    diag = (jnp.sum(n * b * jnp.real(jnp.conj(z) * u), axis=-1) + h * jnp.cos(phi - psi)
            + 2 * shil * jnp.cos(2 * phi))
    return _nudged(_Local(phi, F, g, diag, (cos, sin)), targets, beta, plan)


class _Ops(NamedTuple):
    """The model-specific parts of the Newton loop: ``local(phi, per_state)`` -> :class:`_Local`, where
    ``per_state`` = (clamped drive, targets) has the batch as leading axis; ``block(tables, W_block, rows, cols)``
    -> the coupling block of the Hessian on ``rows x cols`` from :attr:`_Local.tables`; ``eliminate(tables, de,
    g_e)`` -> the eliminated units' contributions to the Schur complement (``cross^T diag(1/de) cross``, with
    ``cross`` the Hessian's eliminated-kept block) and to its right-hand side (``cross^T g_e / de``), and the map
    ``y_k -> cross y_k`` (see :func:`_dense_elimination`)."""

    local: Callable
    block: Callable
    eliminate: Callable


def _xy_ops(p, phi0, targets, beta, plan) -> tuple[_Blocks, _Ops, tuple]:
    """Coupling blocks, model parts and per-state data (drive, targets) of the Newton loop for XY."""
    W, drive = _xy_free_system(p, phi0, plan)
    block = lambda t, Wb, rows, cols: _couplings(t[0], t[1], Wb, rows, cols)
    ne, nk = W.ek.shape
    eliminate = _xy_elimination(W, ne) if ne * nk * nk <= 4_000_000 else _dense_elimination(block, W, ne)
    return W, _Ops(lambda phi, s: _local(phi, W, s[0], s[1], beta, plan), block, eliminate), (drive, targets)


def _onn_ops(p, phi0, targets, beta, plan) -> tuple[_Blocks, _Ops, tuple]:
    """:func:`_xy_ops` for the ONN model (H's odd part)."""
    order, clamped = np.asarray(plan.order, dtype=int), np.asarray(plan.clamped, dtype=int)
    W = _free_blocks(p.W, plan)
    n = jnp.arange(1, p.sin.shape[-1] + 1, dtype=jnp.float64)
    if clamped.size:
        z_c = jnp.exp(1j * n * phi0[..., clamped, None])
        drive = jnp.einsum("...cm,cf->...fm", z_c, p.W[np.ix_(clamped, order)].astype(z_c.dtype))
    else:
        drive = jnp.zeros(phi0.shape[:-1] + (order.size, n.size), dtype=jnp.complex128)
    bias = (p.h[order], p.psi[order], p.omega[order], p.shil[order], p.sin)
    weights = n * p.sin

    def block(t, Wb, rows, cols):
        c, s = t
        return -Wb * jnp.sum(weights * (c[..., rows, None, :] * c[..., None, cols, :]
                                        + s[..., rows, None, :] * s[..., None, cols, :]), axis=-1)

    return W, _Ops(lambda phi, s: _onn_local(phi, W, s[0], bias, s[1], beta, plan), block,
                   _dense_elimination(block, W, plan.n_eliminated)), (drive, targets)


def _couplings(c, s, W_block, rows: slice, cols: slice):
    """-W_ij cos(phi_i - phi_j) for a block of the free units, from c = cos(phi), s = sin(phi)
    (cos(a - b) = cos a cos b + sin a sin b: products instead of a cosine per pair)."""
    return -W_block * (c[..., rows, None] * c[..., None, cols] + s[..., rows, None] * s[..., None, cols])


def _dense_elimination(block: Callable, W: _Blocks, ne: int) -> Callable:
    """:attr:`_Ops.eliminate` from the eliminated-kept Hessian block itself (a batch of small matrix products)."""
    e, k = slice(0, ne), slice(ne, None)

    def eliminate(t, de, g_e):
        cross = block(t, W.ek, e, k)
        scaled = cross / de[..., None]
        return (jnp.swapaxes(cross, -1, -2) @ scaled, jnp.einsum("...ek,...e->...k", scaled, g_e),
                lambda y_k: jnp.einsum("...ek,...k->...e", cross, y_k))

    return eliminate


def _xy_elimination(W: _Blocks, ne: int) -> Callable:
    """:attr:`_Ops.eliminate` for XY as matrix products over the whole batch (the batched small products of
    :func:`_dense_elimination` run far below the machine's speed on CPU).

    With z = exp(i phi) and cross_ek = -W_ek Re(conj(z_e) z_k), Re(a) Re(b) = (Re(ab) + Re(a conj(b))) / 2 gives
    sum_e cross_ek cross_el / de_e = Re(z_k z_l A_kl) / 2 + Re(z_k conj(z_l)) R_kl / 2 with
    A_kl = sum_e W_ek W_el conj(z_e)^2 / de_e and R_kl = sum_e W_ek W_el / de_e: products of (batch, n_e) with the
    constant (n_e, n_k^2) table W_ek W_el. Memory n_e n_k^2: used when that is at most 4 million entries.
    """
    nk = W.ek.shape[1]
    pairs = (W.ek[:, :, None] * W.ek[:, None, :]).reshape(ne, nk * nk)
    square = lambda a: a.reshape(a.shape[:-1] + (nk, nk))

    def eliminate(t, de, g_e):
        c, s = t
        c_e, s_e, c_k, s_k = c[..., :ne], s[..., :ne], c[..., ne:], s[..., ne:]
        inv = 1.0 / de
        a_re, a_im = square(((c_e * c_e - s_e * s_e) * inv) @ pairs), square((-2.0 * c_e * s_e * inv) @ pairs)
        cc = c_k[..., :, None] * c_k[..., None, :]
        ss = s_k[..., :, None] * s_k[..., None, :]
        cs = c_k[..., :, None] * s_k[..., None, :]
        schur = 0.5 * ((cc - ss) * a_re - (cs + jnp.swapaxes(cs, -1, -2)) * a_im + (cc + ss) * square(inv @ pairs))
        w = g_e * inv
        rhs = -(c_k * ((c_e * w) @ W.ek) + s_k * ((s_e * w) @ W.ek))
        back = lambda y_k: -(c_e * ((c_k * y_k) @ W.ek.T) + s_e * ((s_k * y_k) @ W.ek.T))
        return schur, rhs, back

    return eliminate


class Factor(NamedTuple):
    """H + mu on the free units, factorised: Cholesky factor of (the Schur complement on the kept units of) it and
    the maps of the eliminated units (:attr:`pyosc.engines.jax.relax._Ops.eliminate`)."""

    chol: object  # see pyosc.engines.jax.linalg.cholesky
    de: jnp.ndarray | None  # eliminated diagonal + mu, NaN where <= 0
    forward: object  # r_e -> cross^T (r_e / de)
    back: object  # y_k -> cross y_k


def factor(loc: _Local, W: _Blocks, mu, plan: _Plan, ops: _Ops) -> Factor:
    """H + mu (mu per state) at ``loc``, factorised for :func:`solve`."""
    ne = plan.n_eliminated
    e, k = slice(0, ne), slice(ne, None)
    nk = loc.phi.shape[-1] - ne
    t = loc.tables
    schur = ops.block(t, W.kk, k, k) + (loc.diag[..., k] + mu[..., None])[..., None] * jnp.eye(nk)
    if not ne:
        return Factor(linalg.cholesky(schur), None, None, None)
    de = loc.diag[..., e] + mu[..., None]
    de = jnp.where(de > 0, de, jnp.nan)
    schur_e, _, back = ops.eliminate(t, de, jnp.zeros_like(de))
    return Factor(linalg.cholesky(schur - schur_e), de, lambda r_e: ops.eliminate(t, de, r_e)[1], back)


def solve(f: Factor, r, ne: int):
    """(H + mu)^-1 r with the factor of :func:`factor` (NaN where H + mu is not positive definite)."""
    if not ne:
        return linalg.cho_solve(f.chol, r)
    r_e, r_k = r[..., :ne], r[..., ne:]
    y_k = linalg.cho_solve(f.chol, r_k - f.forward(r_e))
    return jnp.concatenate([(r_e - f.back(y_k)) / f.de, y_k], axis=-1)


def _damped_newton_step(loc: _Local, W: _Blocks, mu, plan, ops: _Ops):
    """Solve (H + mu) d = -g on the free units; NaN where H + mu is not positive definite."""
    return -solve(factor(loc, W, mu, plan, ops), loc.g, plan.n_eliminated)


def _positive_definite(loc: _Local, W: _Blocks, plan, ops: _Ops):
    """Whether H is positive definite at ``loc`` (per state): a stable equilibrium where the force vanishes."""
    return jnp.all(jnp.isfinite(_damped_newton_step(loc, W, jnp.zeros(loc.phi.shape[:-1]), plan, ops)), axis=-1)


QUEUE_MIN = 64
"""Batches of more states than this relax in a queue (:func:`_queued`)."""


def queue_width(n_states: int) -> int:
    """States relaxed at a time: the whole batch up to ``QUEUE_MIN`` states, else an eighth of it (at least
    ``QUEUE_MIN``)."""
    return n_states if n_states <= QUEUE_MIN else max(QUEUE_MIN, -(-n_states // 8))


def _select(c, a, b):
    """a where c (per state) else b, for trees of per-state arrays."""
    return jax.tree_util.tree_map(lambda x, y: jnp.where(c.reshape(c.shape + (1,) * (x.ndim - c.ndim)), x, y), a, b)


def _queued(step, moving, state, per_state, max_iter, width):
    """Run ``step`` until no state moves (``moving(state)``, per state) or after ``max_iter`` steps of a state.

    ``state[0]`` holds the per-state arrays (leading axis: states), ``state[1]`` a step counter; ``per_state`` the
    states' fixed data. Batches of at most ``width`` states step together. Larger ones go through a queue: ``width``
    slots step together, and a slot whose state has finished takes the next state of the batch, so a batch costs
    its total number of iterations, not its slowest state's times its size, in one compiled loop. States are
    independent: each ends where the loop over the whole batch takes it, after the same number of steps."""
    take = lambda tree, i: jax.tree_util.tree_map(lambda a: a[i], tree)
    n = jax.tree_util.tree_leaves(state[0])[0].shape[0]
    if n <= width:
        cond = lambda s: (s[1] < max_iter) & jnp.any(moving(s[0]))
        return jax.lax.while_loop(cond, partial(step, per_state), state)[0]

    def body(c):
        out, work, data, slot, age, queued, k = c
        work, k = step(data, (work, k))
        age = age + 1
        out = jax.tree_util.tree_map(lambda o, w: o.at[slot].set(w, mode="drop"), out, work)
        done = ~moving(work) | (age >= max_iter)
        new = queued + jnp.cumsum(done) - 1
        refill = done & (new < n)
        fresh = lambda tree, cur: _select(refill, take(tree, jnp.minimum(new, n - 1)), cur)
        slot = jnp.where(refill, new, jnp.where(done, n, slot))  # finished, none left to take: the slot retires
        return (out, fresh(state[0], work), fresh(per_state, data), slot, jnp.where(refill, 0, age),
                queued + jnp.sum(done), k)

    def cond(c):
        work, slot, age, queued = c[1], c[3], c[4], c[5]
        return (queued < n) | jnp.any(moving(work) & (age < max_iter) & (slot < n))

    slot = jnp.arange(width)
    init = (state[0], take(state[0], slot), take(per_state, slot), slot, jnp.zeros(width, dtype=jnp.int32), width,
            state[1])
    return jax.lax.while_loop(cond, body, init)[0]


def _newton_relax(model, p, phi0, targets, beta, plan, tol, max_iter, mu_scale):
    """Pseudo-transient continuation on a flat batch phi0 (B, N) with targets (B, n_out) (:func:`_queued`)."""
    order = np.asarray(plan.order, dtype=int)
    gmax = lambda g: jnp.max(jnp.abs(g), axis=-1)
    W, ops, per_state = MODELS[model].ops(p, phi0, targets, beta, plan)
    loc0 = ops.local(phi0[..., order], per_state)
    mu0 = mu_scale * jnp.maximum(jnp.max(jnp.abs(loc0.diag), axis=-1), 1e-3)

    def step(per_state, s):
        (loc, mu, nu, iters), k = s
        active = gmax(loc.g) > tol
        d = _damped_newton_step(loc, W, mu, plan, ops)
        trial = ops.local(loc.phi + d, per_state)
        predicted = 0.5 * (mu * jnp.sum(d * d, axis=-1) - jnp.sum(loc.g * d, axis=-1))  # quadratic model
        actual = loc.F - trial.F
        ok = jnp.isfinite(trial.F) & jnp.all(jnp.isfinite(d), axis=-1) & (actual >= -1e-13 * (1.0 + jnp.abs(loc.F)))
        accept = ok & active
        rho = jnp.clip(actual / jnp.where(predicted > 0, predicted, 1.0), 0.0, 1.0)
        mu = jnp.where(accept, mu * jnp.maximum(1 / 3, 1 - (2 * rho - 1) ** 3), jnp.where(active, mu * nu, mu))
        return (_select(accept, trial, loc), mu, jnp.where(accept, 2.0, nu * 2.0), iters + active), k + 1

    zeros = jnp.zeros(phi0.shape[0])
    loc, _, _, iters = _queued(step, lambda s: gmax(s[0].g) > tol, ((loc0, mu0, zeros + 2.0, zeros), 0), per_state,
                               max_iter, queue_width(phi0.shape[0]))
    force = gmax(loc.g)
    return phi0.at[..., order].set(loc.phi), (force <= tol) & _positive_definite(loc, W, plan, ops), force, iters


def _onn_descent(phi, p):
    """Minus the full ONN velocity (even parts of H included): dE/dphi when H is odd."""
    return -onn.velocity(phi, p)


def _gradient(descent, phi, p, targets, beta, plan):
    """-dphi/dt on all units (zero on clamped ones), for the ODE right-hand side: the model's ``descent``
    (dE/dphi for a gradient flow, minus the velocity) plus the nudge."""
    out = np.asarray(plan.order)[list(plan.outputs)]
    base = descent(phi, p)
    g = base.at[..., out].add(jnp.where(beta > 0, beta * xy.log_cost_grad(phi[..., out], targets), 0.0))
    return g.at[..., list(plan.clamped)].set(0.0)


def _xy_flow(p, phi0, targets, beta, plan):
    """XY's relaxation flow on the free units only, with the clamped units folded into a constant drive and the
    couplings in the plan's blocks (a layered [64, 200, 10] network costs 4,000 products per field instead of
    75,000): (field, initial state, args, map from the final state to all phases)."""
    order = np.asarray(plan.order, dtype=int)
    W, drive = _xy_free_system(p, phi0, plan)  # the drive is passed as real parts: diffrax warns on complex args
    field = lambda t, y, args: -_local(y, W, jax.lax.complex(args[0], args[1]), args[2], beta, plan).g
    return field, phi0[..., order], (jnp.real(drive), jnp.imag(drive), targets), lambda y: phi0.at[..., order].set(y)


def _onn_flow(p, phi0, targets, beta, plan):
    """:func:`_xy_flow` for ONN: every unit with its full velocity (even parts of H included)."""
    field = lambda t, y, args: -_gradient(_onn_descent, y, p, args[0], beta, plan)
    return field, phi0, (targets,), lambda y: y


def _ode_relax(model, p, phi0, targets, beta, plan, options):
    """diffrax integration of each state (the model's flow) until max |dphi/dt| < tol (or t_max)."""
    field, y0, args, finish = MODELS[model].flow(p, phi0, targets, beta, plan)
    steady = diffrax.Event(lambda t, y, args, **kw: jnp.max(jnp.abs(field(t, y, args))) < options.tol)

    def solve(y0, args):
        sol = diffrax.diffeqsolve(diffrax.ODETerm(field), SOLVERS[options.integrator](), 0.0, options.t_max,
                                  None, y0, args=args,
                                  stepsize_controller=diffrax.PIDController(rtol=options.rtol, atol=options.atol),
                                  event=steady, max_steps=options.max_steps, throw=False)
        return sol.ys[-1], sol.ts[-1]

    if options.shared_steps:
        y, t_end = solve(y0, args)
        t_end = jnp.full(y.shape[0], t_end)
    else:
        y, t_end = jax.vmap(solve)(y0, args)
    force = jnp.max(jnp.abs(field(0.0, y, args)), axis=-1)
    from pyosc.engines.jax.flow import stable_end  # (flow.py builds on this module)
    stable = stable_end(model, p, finish(y), targets, beta, plan)  # a state at a saddle is steady but unstable
    return finish(y), (force < options.tol) & (t_end < options.t_max) & stable, force, t_end


def _relax_flat(model, p, phi0, targets, beta, plan, options, mu_scale):
    if options.method == "newton":
        from pyosc.engines.jax.flow import flow_newton_relax  # (flow.py builds on this module)
        return flow_newton_relax(model, p, phi0, targets, beta, plan, options)
    if options.method == "continuation":
        return _newton_relax(model, p, phi0, targets, beta, plan, options.tol, options.max_iter, mu_scale)
    return _ode_relax(model, p, phi0, targets, beta, plan, options)


def _relax_batch(model, p, phi0, targets, beta, plan, options, mu_scale):
    """phi0 (S, M, N), targets (S, n_out) -> Equilibrium fields of shape (S, M[, N])."""
    s, m, n = phi0.shape
    tg = jnp.broadcast_to(targets[:, None, :], (s, m, targets.shape[-1])).reshape(s * m, -1)
    out = _relax_flat(model, p, phi0.reshape(s * m, n), tg, beta, plan, options, mu_scale)
    return out[0].reshape(s, m, n), *(o.reshape(s, m) for o in out[1:])


def _ep_step(model: str, plan: _Plan, options, p, phi0, targets, beta):
    """Free relaxation, nudged relaxation from the free equilibrium, EP gradient (a parameter record). The two
    phases are the two steps of one ``lax.scan`` over (beta, mu_scale), so that their relaxation compiles once."""
    param_grad = MODELS[model].param_grad

    def phase(phi, nudge):
        out = _relax_batch(model, p, phi, targets, nudge[0], plan, options, nudge[1])
        return out[0], out

    nudges = (jnp.stack([jnp.zeros_like(beta), beta]), jnp.array([1.0, 1e-3]))  # (beta, mu_scale) per phase
    equilibria = jax.lax.scan(phase, phi0, nudges)[1]
    free, nudged = (tuple(a[i] for a in equilibria) for i in (0, 1))
    free_units = np.asarray(plan.order, dtype=int)  # pairs of clamped units have no EP gradient
    g_free = param_grad(free[0], p, free_units)
    g_nudged = param_grad(nudged[0], p, free_units)
    grad = jax.tree_util.tree_map(lambda a, b: (a - b) / beta, g_nudged, g_free)
    return grad, free, nudged


STATIC = ("method", "integrator", "max_steps", "shared_steps")
"""The fields of :class:`~pyosc.engines.base.RelaxOptions` that shape a compiled relaxation (one compilation per
value); the others (tolerances, iteration cap, trust region, horizon) are traced arguments (:mod:`.options`)."""


@lru_cache(maxsize=64)
def _compiled(kind: str, model: str, plan: _Plan, key: tuple, stacked: bool):
    """jit-compiled relax / EP step for one model, network structure and static options (:data:`STATIC`); vmapped
    over runs when ``stacked``. Called as ``fn(p, phi0, targets, beta, numbers)``."""

    def relax(p, phi0, targets, beta, numbers):
        return _relax_batch(model, p, phi0, targets, beta, plan, view(key, numbers), 1.0)

    def ep_step(p, phi0, targets, beta, numbers):
        return _ep_step(model, plan, view(key, numbers), p, phi0, targets, beta)

    fn = {"relax": relax, "ep_step": ep_step}[kind]
    if stacked:
        fn = jax.vmap(fn, in_axes=(0, 0, None, None, None))
    return jax.jit(fn)


def ep_step_program(model: str, topology: Topology, options: RelaxOptions, stacked: bool) -> Callable:
    """:meth:`~pyosc.engines.base.EquilibriumEngine.ep_step_program`: the (not yet compiled) EP step on parameter
    dicts; the same function object for the same network structure and options (callers cache on it)."""
    return _ep_step_program(model, _plan(topology), options, stacked)


@lru_cache(maxsize=64)
def _ep_step_program(model: str, plan: _Plan, options: RelaxOptions, stacked: bool) -> Callable:
    step = partial(_ep_step, model, plan, view(*split(options, STATIC)))
    if stacked:
        step = jax.vmap(step, in_axes=(0, 0, None, None))

    def program(params, phi0, targets, beta):
        grad, free, nudged = step(MODELS[model].params(**params), phi0, targets, beta)
        return grad._asdict(), free, nudged

    return program


@lru_cache(maxsize=16)
def _trajectory_fn(model: str, plan: _Plan, key: tuple, stacked: bool):
    def run(p, phi0, targets, beta, times, numbers):
        options = view(key, numbers)
        s, m, n = phi0.shape
        tg = jnp.broadcast_to(targets[:, None, :], (s, m, targets.shape[-1])).reshape(s * m, -1)
        field = lambda t, y, args: -_gradient(MODELS[model].descent, y, p, args, beta, plan)

        def one(y0, target):
            sol = diffrax.diffeqsolve(diffrax.ODETerm(field), SOLVERS[options.integrator](), 0.0, times[-1],
                                      None, y0, args=target, saveat=diffrax.SaveAt(ts=times),
                                      stepsize_controller=diffrax.PIDController(rtol=options.rtol, atol=options.atol),
                                      max_steps=options.max_steps)
            return sol.ys

        return jax.vmap(one)(phi0.reshape(s * m, n), tg).reshape(s, m, times.shape[0], n)

    if stacked:
        run = jax.vmap(run, in_axes=(0, 0, None, None, None, None))
    return jax.jit(run)


class Model(NamedTuple):
    """The JAX parts of an energy model: its parameter record (``params``); the Newton loop's coupling blocks, parts
    and per-state data (``ops``, as :func:`_xy_ops`); dE/dphi of its flow without the nudge (``descent``); the
    ``"ode"`` relaxation's flow (``flow``, as :func:`_xy_flow`); dE/dtheta for EP (``param_grad(phi, p, rows)``, the
    couplings of pairs without one of ``rows`` may be left zero)."""

    params: type
    ops: Callable
    descent: Callable
    flow: Callable
    param_grad: Callable


MODELS = {"xy": Model(xy.XYParams, _xy_ops, xy.energy_grad_phi, _xy_flow, xy.energy_param_grad),
          "onn": Model(onn.ONNParams, _onn_ops, _onn_descent, _onn_flow, lambda phi, p, rows: onn.energy_param_grad(phi, p))}


def _jax_params(model: str, params: dict[str, np.ndarray]):
    return MODELS[model].params(**{k: jnp.asarray(v) for k, v in params.items()})


def _equilibrium(out, shape: tuple[int, ...]) -> Equilibrium:
    """An :class:`Equilibrium` of states of ``shape`` (the caller's phi0) from the flat results."""
    phi, *per_state = (np.asarray(o) for o in out)
    return Equilibrium(phi.reshape(shape), *(a.reshape(shape[:-1]) for a in per_state))


def relax(model: str, params: dict[str, np.ndarray], phi0: np.ndarray, topology: Topology, targets: np.ndarray,
          beta: float, options: RelaxOptions) -> Equilibrium:
    """:meth:`~pyosc.engines.base.EquilibriumEngine.relax` on validated inputs (``beta`` = 0.0: no nudge)."""
    key, numbers = split(options, STATIC)
    fn = _compiled("relax", model, _plan(topology), key, phi0.ndim == 4)
    return _equilibrium(fn(_jax_params(model, params), *flat_states(phi0, 1, targets), beta, numbers), phi0.shape)


def ep_step(model: str, params: dict[str, np.ndarray], phi0: np.ndarray, topology: Topology, targets: np.ndarray,
            beta: float, options: RelaxOptions) -> EPStep:
    """:meth:`~pyosc.engines.base.EquilibriumEngine.ep_step` on validated inputs."""
    key, numbers = split(options, STATIC)
    fn = _compiled("ep_step", model, _plan(topology), key, phi0.ndim == 4)
    grad, free, nudged = fn(_jax_params(model, params), *flat_states(phi0, 1, targets), beta, numbers)
    return EPStep({k: np.asarray(v) for k, v in grad._asdict().items()}, _equilibrium(free, phi0.shape),
                  _equilibrium(nudged, phi0.shape))


def trajectory(model: str, params: dict[str, np.ndarray], phi0: np.ndarray, topology: Topology, times: np.ndarray,
               targets: np.ndarray, beta: float, options: RelaxOptions) -> np.ndarray:
    """:meth:`~pyosc.engines.base.EquilibriumEngine.trajectory` on validated inputs."""
    key, numbers = split(options, STATIC)
    fn = _trajectory_fn(model, _plan(topology), key, phi0.ndim == 4)
    phis = fn(_jax_params(model, params), *flat_states(phi0, 1, targets), beta, jnp.asarray(times), numbers)
    return np.asarray(phis).reshape(phi0.shape[:-1] + (times.size, phi0.shape[-1]))
