"""Basin-faithful relaxation for the XY / ONN Newton loop (prototype for issue 16).

Algorithm ("flow, then certified Newton"), per state, batched, in the engine's stages:

* Flow mode. Integrate the gradient flow dphi/dt = -g(phi) with ROS2, the two-stage L-stable Rosenbrock
  method of Verwer et al. (1999), gamma = 1 + 1/sqrt 2, with the analytic Hessian H on the free units
  (Schur-eliminated independent set as in the engine). One Cholesky factorisation of A = H + mu I,
  mu = 1/(gamma dt), per step, two solves, two field evaluations:
      z1 = A^-1 (-g(y));  y1 = y + z1/gamma
      z2 = A^-1 (-g(y1) - 2 mu z1)
      y+ = y + (3 z1 + z2) / (2 gamma);   err = max|z1 + z2| / (2 gamma)   (embedded 1st-order estimate)
  Accept iff A is positive definite, err <= err_tol (rad), max|y+ - y| <= cap (rad, trust region) and
  F(y+) <= F(y) + 1e-13 (1 + |F|). Step size: dt *= clip(0.9 sqrt(err_tol/err), 0.2, 5), also
  <= 0.9 cap / max|y+ - y|; after a rejection at most x 0.5 (x 0.25 if A was not positive definite).
  First dt = step0 / max|g| (the first step moves about step0 rad).
* Switch test (certificate). H(.) is L-Lipschitz in the 2-norm, with L = max_i (4 sum_j |W_ij| + |h_i|)
  (+ the nudge's curvature slope on the outputs). If H(x) - c I is positive definite with
  c = 2 sqrt(L ||g(x)||_2), then lambda = lambda_min(H(x)) > c, the Newton step s has ||s|| <= ||g||/lambda and
  h = L ||s|| / lambda < 1/4. Kantorovich: Newton from x converges to the unique zero x* of g in
  B(x, 1.2 ||s||). Since 4 L ||s|| < lambda, F is strongly convex on B(x, 4 ||s||), which contains
  B(x*, |x - x*|): along the flow d/dt |x - x*|^2 = -2 (x - x*).g(x) < 0 there, so the flow from x stays in
  that ball and converges to the same x*. Hence after the switch, pure Newton ends exactly where the flow
  from the switch point ends. The test costs one factorisation (mu = -c); it is tried when c < min_i H_ii
  (necessary) and ||g|| has fallen 4x since the last failed test.
* Newton mode: s = -H^-1 g, always accepted (falls back to flow mode if H stops being positive definite,
  which the certificate excludes up to rounding).
* Converged: max|g| <= tol and H positive definite.
"""
from __future__ import annotations

import sys
from functools import partial
from typing import NamedTuple

sys.path.insert(0, "/work/scratch16/base")
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import cho_solve

from pyosc.engines.jax_engine import _Local, _ops, _stage_sizes, _plan, _relax_batch  # noqa: F401

GAMMA = 1.0 + 1.0 / np.sqrt(2.0)
D23 = 1.0 / (2.0 + np.sqrt(2.0))
E32 = 6.0 + np.sqrt(2.0)


class BasinOptions(NamedTuple):
    tol: float = 1e-10        # converged: max |g| <= tol
    max_iter: int = 400       # safeguard (iterations of the batched loop)
    err_tol: float = 1e-3     # local error per ROS2 step, rad (max over units)
    cap: float = 0.2          # trust region: max |dphi| per flow step, rad
    step0: float = 0.05       # first step moves about this much, rad
    kappa: float = 1.0        # certificate: c = 2 sqrt(kappa L ||g||); kappa = 1 is the proven bound
    certify: bool = True      # False: never switch, ROS2 all the way
    debug: bool = False
    scheme: str = "ode23s"    # or "euler": linearly implicit Euler, cap only (no error estimate)
    grow: float = 2.0         # euler: dt growth per accepted step


class _Factor(NamedTuple):
    chol: jnp.ndarray   # Cholesky factor of the (Schur complement on the kept units of) H + mu
    cross: jnp.ndarray  # eliminated-kept coupling block (or empty)
    de: jnp.ndarray     # eliminated diagonal + mu (NaN where <= 0)


def _factor(loc: _Local, W, mu, plan, ops) -> _Factor:
    """Factorise H + mu I on the free units (NaN factor where it is not positive definite)."""
    ne = plan.n_eliminated
    e, k = slice(0, ne), slice(ne, None)
    mu_ = mu[..., None]
    nk = loc.phi.shape[-1] - ne
    t = ops.tables(loc.phi)
    schur = ops.block(t, W.kk, k, k) + (loc.diag[..., k] + mu_)[..., None] * jnp.eye(nk)
    if ne:
        cross = ops.block(t, W.ek, e, k)
        de = loc.diag[..., e] + mu_
        de = jnp.where(de > 0, de, jnp.nan)
        schur = schur - jnp.swapaxes(cross, -1, -2) @ (cross / de[..., None])
    else:
        cross = de = jnp.zeros(loc.phi.shape[:-1] + (0,))
    return _Factor(jnp.linalg.cholesky(schur), cross, de)


UNROLL = 0


def _cho_solve(chol, b):
    """(L L^T)^-1 b for a batch of small factors: unrolled forward/back substitution up to UNROLL unknowns
    (about 2-3x faster than XLA's batched triangular solve on CPU for n <= 21), else cho_solve."""
    n = b.shape[-1]
    if n > UNROLL:
        return cho_solve((chol, True), b[..., None])[..., 0]
    ys = []
    for i in range(n):
        acc = b[..., i]
        if i:
            acc = acc - jnp.einsum("...j,...j->...", chol[..., i, :i], jnp.stack(ys, -1))
        ys.append(acc / chol[..., i, i])
    xs = [None] * n
    for i in reversed(range(n)):
        acc = ys[i]
        if i < n - 1:
            acc = acc - jnp.einsum("...j,...j->...", chol[..., i + 1:, i], jnp.stack(xs[i + 1:], -1))
        xs[i] = acc / chol[..., i, i]
    return jnp.stack(xs, -1)


def _solve(f: _Factor, r, ne):
    """(H + mu)^-1 r with the factor (Schur complement when ne > 0)."""
    chol_solve = lambda b: _cho_solve(f.chol, b)
    if not ne:
        return chol_solve(r)
    r_e, r_k = r[..., :ne], r[..., ne:]
    rhs_k = r_k - jnp.einsum("...ek,...e->...k", f.cross, r_e / f.de)
    y_k = chol_solve(rhs_k)
    y_e = (r_e - jnp.einsum("...ek,...k->...e", f.cross, y_k)) / f.de
    return jnp.concatenate([y_e, y_k], axis=-1)


def lipschitz_constants(model, p, plan):
    """Parameter-only constants of the certificate: for XY, rho = || |W_FF| ||_2 (spectral norm of the
    entrywise |W| among the free units) and Gamma = 2 max_i (sum_j |W_ij| + |h_i|) over free i, all j (bounds
    the Hessian's inf-norm, so |g(y) - g(x)|_inf <= Gamma |y - x|_inf). For ONN with harmonics b_n the coupling
    terms carry sum_n n^2 |b_n| (rho) and sum_n n |b_n| (Gamma), and the diagonal term is bounded by row sums
    (``extra``) instead of |g|."""
    order = np.asarray(plan.order, dtype=int)
    Wf = jnp.abs(p.W[np.ix_(order, order)])
    rho = jnp.linalg.eigvalsh(Wf)[-1]
    rowsum = jnp.sum(jnp.abs(p.W[order]), axis=-1)
    if model == "xy":
        return rho, 2 * jnp.max(rowsum + jnp.abs(p.h[order])), 0.0
    n = jnp.arange(1, p.sin.shape[-1] + 1, dtype=jnp.float64)
    s2, s1 = jnp.sum(n * n * jnp.abs(p.sin)), jnp.sum(n * jnp.abs(p.sin))
    gam = 2 * jnp.max(rowsum * s1 + jnp.abs(p.h[order]) + 2 * jnp.abs(p.shil[order]))
    extra = jnp.max(rowsum * s2 + jnp.abs(p.h[order]) + 4 * jnp.abs(p.shil[order]))
    return rho * s2, gam, extra


def basin_relax(model, p, phi0, targets, beta, plan, opts: BasinOptions):
    """Drop-in for jax_engine._newton_relax: phi0 (B, N), targets (B, n_out) -> (phi, converged, force, iters)."""
    order = np.asarray(plan.order, dtype=int)
    ne = plan.n_eliminated
    out = list(plan.outputs)
    gmax = lambda g: jnp.max(jnp.abs(g), axis=-1)
    W, ops, per_state = _ops(model, p, phi0, targets, beta, plan)
    rho, Gam, extra = lipschitz_constants(model, p, plan)
    loc0 = ops.local(phi0[..., order], per_state)
    B = phi0.shape[0]
    dt0 = opts.step0 / jnp.maximum(gmax(loc0.g), 1e-300)
    sel = lambda c, a, b: jax.tree_util.tree_map(lambda x, y: jnp.where(c.reshape(c.shape + (1,) * (x.ndim - c.ndim)), x, y), a, b)

    def step(per_state, s):
        loc, dt, mode, gtest, iters, k = s
        active = gmax(loc.g) > opts.tol
        gnorm = jnp.sqrt(jnp.sum(loc.g * loc.g, axis=-1))
        # certificate shift c: lambda_min(H) > c  =>  Newton from here ends where the flow ends (docstring)
        if out:
            dd = loc.phi[..., out] - per_state[1]
            c3 = jnp.where(beta > 0, beta * jnp.abs(jnp.sin(dd)) / (1 + jnp.cos(dd)) ** 2, 0.0)  # third derivative of beta C
            gE = loc.g.at[..., out].add(-jnp.where(beta > 0, beta * jnp.tan(dd / 2), 0.0))
            nud = jnp.max(c3, axis=-1)
        else:
            gE, nud = loc.g, 0.0
        first = extra if model != "xy" else jnp.max(jnp.abs(gE), axis=-1)
        L_base = 3 * rho + first + 2 * nud   # 2 x nud: margin for the nudge's own change over the ball (heuristic)
        c0 = jnp.sqrt(3 * opts.kappa * L_base * gnorm)
        R = 2.54 * gnorm / jnp.maximum(c0, 1e-300)
        c = jnp.sqrt(3 * opts.kappa * (L_base + Gam * R) * gnorm)
        test = (opts.certify & active & (mode == 0) & (c < jnp.min(loc.diag, axis=-1)) & (gnorm < 0.25 * gtest))
        mu = jnp.where(mode == 1, 0.0, jnp.where(test, -c, 1.0 / ((D23 if opts.scheme == 'ode23s' else 1.0) * dt)))
        f = _factor(loc, W, mu, plan, ops)
        m_ = mu[..., None]
        h_ = dt[..., None]
        nw = (mode == 1)[..., None]
        F0 = -loc.g
        z1 = _solve(f, F0, ne)                     # Newton: the Newton step
        pd = jnp.all(jnp.isfinite(z1), axis=-1)
        k1 = m_ * z1                               # ode23s (Shampine-Reichelt): W = I + h d H = h d (H + mu)
        l1 = ops.local(loc.phi + jnp.where(nw | (opts.scheme == "euler"), z1, 0.5 * h_ * k1), per_state)
        F1 = -l1.g
        z2 = _solve(f, jnp.where(nw, F1, F1 - k1), ne)
        k2 = m_ * z2 + k1
        dphi = h_ * k2
        big = jnp.max(jnp.abs(dphi), axis=-1)
        # Newton mode: a chord step y1 + H(y)^-1 (-g(y1)) with the same factor
        l2 = ops.local(jnp.where(nw, l1.phi + z2, loc.phi + dphi), per_state)
        F2 = -l2.g
        k3 = m_ * _solve(f, F2 - E32 * (k2 - F1) - 2 * (k1 - F0), ne)
        err = jnp.max(jnp.abs(h_ * (k1 - 2 * k2 + k3)), axis=-1) / 6
        if opts.scheme == "euler":   # y+ = y + z1 with (H + 1/dt) z1 = -g
            dphi = jnp.where(nw, dphi, z1)
            big = jnp.max(jnp.abs(z1), axis=-1)
            l2 = sel(mode == 1, l2, l1)
            err = jnp.zeros_like(err)
        flow = (mode == 0) & ~test & active
        ok_flow = (pd & jnp.isfinite(err) & (err <= opts.err_tol) & (big <= opts.cap) & jnp.isfinite(l2.F)
                   & (l2.F <= loc.F + 1e-13 * (1 + jnp.abs(loc.F))))
        newton = (mode == 1) & active
        ok_newton = pd & jnp.isfinite(l2.F)
        new_loc = sel((newton & ok_newton) | (flow & ok_flow), l2, loc)
        fac = jnp.clip(0.9 * (opts.err_tol / jnp.maximum(err, 1e-300)) ** (1 / 3), 0.2, 5.0)
        if opts.scheme == "euler":
            fac = jnp.full_like(fac, opts.grow)
        fac = jnp.minimum(fac, 0.9 * opts.cap / jnp.maximum(big, 1e-300))
        fac = jnp.where(~pd | ~jnp.isfinite(fac), 0.25, jnp.where(ok_flow, fac, jnp.minimum(fac, 0.5)))
        if opts.debug:
            jax.debug.print("k={k} mode={m} test={t} pd={pd} |g|={g:.2e} dt={dt:.2e} err={e:.2e} big={b:.2e} okf={o} c={c:.2e} mind={md:.2e}",
                            k=k, m=mode[0], t=test[0], pd=pd[0], g=gmax(loc.g)[0], dt=dt[0], e=err[0], b=big[0], o=ok_flow[0],
                            c=c[0], md=jnp.min(loc.diag, axis=-1)[0])
        dt = jnp.where(flow, jnp.minimum(dt * fac, 1e12), dt)
        mode = jnp.where(test & pd, 1, jnp.where(newton & ~ok_newton, 0, mode))
        gtest = jnp.where(test, gnorm, gtest)
        return new_loc, dt, mode, gtest, iters + active, k + 1

    def run(per_state, state, k, n_left):
        cond = lambda s: (s[-1] < opts.max_iter) & (jnp.sum(gmax(s[0].g) > opts.tol) > n_left)
        *state, k = jax.lax.while_loop(cond, partial(step, per_state), (*state, k))
        return tuple(state), k

    zeros = jnp.zeros(B)
    sizes = _stage_sizes(B)
    stops = [*sizes[1:], 0]
    init = (loc0, dt0, jnp.zeros(B, dtype=jnp.int32), zeros + jnp.inf, zeros)
    state, k = run(per_state, init, 0, stops[0])
    for size, n_left in zip(sizes[1:], stops[1:]):
        moving = jnp.argsort(-gmax(state[0].g))[:size]
        take = lambda tree, i=moving: jax.tree_util.tree_map(lambda a: a[i], tree)
        sub, k = run(take(per_state), take(state), k, n_left)
        state = jax.tree_util.tree_map(lambda a, b, i=moving: a.at[i].set(b), state, sub)
    loc, _, mode, _, iters = state
    force = gmax(loc.g)
    stable = jnp.all(jnp.isfinite(_solve(_factor(loc, W, zeros, plan, ops), loc.g, ne)), axis=-1)
    return phi0.at[..., order].set(loc.phi), (force <= opts.tol) & stable, force, iters


# --- glue: a relax / ep_step like the engine's, with the new loop -----------------------------------------

def relax_flat(model, p, phi0, targets, beta, plan, opts):
    return basin_relax(model, p, phi0, targets, beta, plan, opts)


def relax_batch(model, p, phi0, targets, beta, plan, opts):
    """phi0 (S, M, N), targets (S, n_out) -> (phi, converged, force, iters) shaped (S, M[, N])."""
    s, m, n = phi0.shape
    tg = jnp.broadcast_to(targets[:, None, :], (s, m, targets.shape[-1])).reshape(s * m, -1)
    o = basin_relax(model, p, phi0.reshape(s * m, n), tg, beta, plan, opts)
    return o[0].reshape(s, m, n), *(x.reshape(s, m) for x in o[1:])


_cache = {}


def compiled(kind, model, plan, opts, stacked):
    key = (kind, model, plan, opts, stacked)
    if key in _cache:
        return _cache[key]
    from pyosc.models import xy, onn
    param_grad = xy.energy_param_grad if model == "xy" else onn.energy_param_grad

    def relax(p, phi0, targets, beta):
        return relax_batch(model, p, phi0, targets, beta, plan, opts)

    def ep_step(p, phi0, targets, beta):
        free = relax_batch(model, p, phi0, targets, 0.0, plan, opts)
        nudged = relax_batch(model, p, free[0], targets, beta, plan, opts)
        grad = jax.tree_util.tree_map(lambda a, b: (a - b) / beta, param_grad(nudged[0], p), param_grad(free[0], p))
        return grad, free, nudged

    fn = {"relax": relax, "ep_step": ep_step}[kind]
    if stacked:
        fn = jax.vmap(fn, in_axes=(0, 0, None, None))
    _cache[key] = jax.jit(fn)
    return _cache[key]


def relax(model, params, phi0, topology, opts=BasinOptions(), targets=None, beta=0.0):
    p = type(params)(*(jnp.asarray(a) for a in params))
    stacked = p.W.ndim == 3
    if targets is None:
        targets = np.zeros((phi0.shape[-3], topology.n_outputs))
    out = compiled("relax", model, _plan(topology), opts, stacked)(p, jnp.asarray(phi0), jnp.asarray(targets), beta)
    return tuple(np.asarray(o) for o in out)


def ep_step(model, params, phi0, topology, targets, beta, opts=BasinOptions()):
    p = type(params)(*(jnp.asarray(a) for a in params))
    stacked = p.W.ndim == 3
    fn = compiled("ep_step", model, _plan(topology), opts, stacked)
    grad, free, nudged = fn(p, jnp.asarray(phi0), jnp.asarray(targets), beta)
    return (type(params)(*(np.asarray(g) for g in grad)), tuple(np.asarray(o) for o in free),
            tuple(np.asarray(o) for o in nudged))
