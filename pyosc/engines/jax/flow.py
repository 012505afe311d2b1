"""The JAX engine's default relaxation: follow the gradient flow, then certified Newton (issue 16).

DRAFT (under development).
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import cho_solve

D = 1.0 / (2.0 + np.sqrt(2.0))   # ode23s (Shampine & Reichelt 1997): W = I - h D J
E32 = 6.0 + np.sqrt(2.0)

# explicit Runge-Kutta pairs (FSAL): (a rows, b, b - b_embedded, error order q)
_BS3 = ([[1 / 2], [0.0, 3 / 4], [2 / 9, 1 / 3, 4 / 9]], [2 / 9, 1 / 3, 4 / 9, 0.0],
        [2 / 9 - 7 / 24, 1 / 3 - 1 / 4, 4 / 9 - 1 / 3, -1 / 8], 3)
_DP5 = ([[1 / 5], [3 / 40, 9 / 40], [44 / 45, -56 / 15, 32 / 9],
         [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
         [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
         [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84]],
        [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0],
        [35 / 384 - 5179 / 57600, 0.0, 500 / 1113 - 7571 / 16695, 125 / 192 - 393 / 640,
         -2187 / 6784 + 92097 / 339200, 11 / 84 - 187 / 2100, -1 / 40], 5)
_EXPLICIT = {"bs3": _BS3, "dp5": _DP5}


UNROLL = 10
"""Factorisations of at most this many (kept) units are unrolled into elementwise arithmetic over the batch, several
times faster on CPU than a batch of LAPACK calls on small matrices."""


def _cholesky(a):
    """Lower Cholesky factor of a batch of small symmetric matrices (..., n, n): unrolled (a list of rows of
    entries) for n <= UNROLL, else LAPACK's. NaN where a matrix is not positive definite."""
    n = a.shape[-1]
    if n > UNROLL:
        return jnp.linalg.cholesky(a)
    L = [[None] * n for _ in range(n)]
    for j in range(n):
        d = a[..., j, j] - sum(L[j][k] * L[j][k] for k in range(j))
        d = jnp.sqrt(jnp.where(d > 0, d, jnp.nan))
        L[j][j] = d
        inv = 1.0 / d
        for i in range(j + 1, n):
            L[i][j] = (a[..., i, j] - sum(L[i][k] * L[j][k] for k in range(j))) * inv
    return L


def _cho_solve(L, b):
    """(L L^T)^-1 b for a factor of :func:`_cholesky`, b (..., n)."""
    if not isinstance(L, list):
        return cho_solve((L, True), b[..., None])[..., 0]
    n = len(L)
    y = []
    for i in range(n):
        y.append((b[..., i] - sum(L[i][k] * y[k] for k in range(i))) / L[i][i])
    x = [None] * n
    for i in reversed(range(n)):
        x[i] = (y[i] - sum(L[k][i] * x[k] for k in range(i + 1, n))) / L[i][i]
    return jnp.stack(x, -1)


class _Factor(NamedTuple):
    """Cholesky factor of (the Schur complement on the kept units of) H + mu on the free units, with the maps of the
    eliminated units (see :attr:`pyosc.engines.jax.relax._Ops.eliminate`)."""

    chol: object             # see _cholesky
    de: jnp.ndarray          # eliminated diagonal + mu, NaN where <= 0 (empty without elimination)
    forward: object          # r_e -> cross^T (r_e / de)
    back: object             # y_k -> cross y_k


def _factor(loc, W, mu, plan, ops) -> _Factor:
    ne = plan.n_eliminated
    e, k = slice(0, ne), slice(ne, None)
    mu_ = mu[..., None]
    nk = loc.phi.shape[-1] - ne
    t = loc.tables
    schur = ops.block(t, W.kk, k, k) + (loc.diag[..., k] + mu_)[..., None] * jnp.eye(nk)
    if not ne:
        return _Factor(_cholesky(schur), None, None, None)
    de = loc.diag[..., e] + mu_
    de = jnp.where(de > 0, de, jnp.nan)
    schur_e, _, back = ops.eliminate(t, de, jnp.zeros_like(de))
    return _Factor(_cholesky(schur - schur_e), de, lambda r_e: ops.eliminate(t, de, r_e)[1], back)


def _solve(f: _Factor, r, ne: int):
    """(H + mu)^-1 r with the factor (NaN where H + mu is not positive definite)."""
    if not ne:
        return _cho_solve(f.chol, r)
    r_e, r_k = r[..., :ne], r[..., ne:]
    y_k = _cho_solve(f.chol, r_k - f.forward(r_e))
    y_e = (r_e - f.back(y_k)) / f.de
    return jnp.concatenate([y_e, y_k], axis=-1)


def _constants(model, p, plan):
    """Parameter-only constants of the certificate (see the module docstring): (rho, gamma, extra)."""
    order = np.asarray(plan.order, dtype=int)
    Wf = jnp.abs(p.W[np.ix_(order, order)])
    rho = jnp.linalg.eigvalsh(Wf)[-1]
    rowsum = jnp.sum(jnp.abs(p.W[order]), axis=-1)
    h = jnp.abs(p.h[order])
    if model == "xy":
        return rho, jnp.max(2 * rowsum + h), jnp.zeros(())
    n = jnp.arange(1, p.sin.shape[-1] + 1, dtype=jnp.float64)
    s2, s1 = jnp.sum(n * n * jnp.abs(p.sin)), jnp.sum(n * jnp.abs(p.sin))
    shil = jnp.abs(p.shil[order])
    gamma = jnp.max(2 * rowsum * s1 + h + 2 * shil)
    extra = jnp.max(rowsum * s2 + h + 4 * shil)
    return rho * s2, gamma, extra


def flow_newton_relax(model, p, phi0, targets, beta, plan, options, *, stats=False):
    """Flow, then certified Newton, on a flat batch phi0 (B, N), targets (B, n_out)."""
    from pyosc.engines.jax.relax import MODELS, _stage_sizes
    from pyosc.models import xy

    order = np.asarray(plan.order, dtype=int)
    ne = plan.n_eliminated
    out = np.asarray(plan.outputs, dtype=int)
    tol, cap, err_tol = options.tol, options.trust, options.flow_tol
    gmax = lambda g: jnp.max(jnp.abs(g), axis=-1)
    W, ops, per_state = MODELS[model].ops(p, phi0, targets, beta, plan)
    rho, gamma, extra = _constants(model, p, plan)
    loc0 = ops.local(phi0[..., order], per_state)
    B = phi0.shape[0]
    dt0 = 0.2 / jnp.maximum(gmax(loc0.g), 1e-300)

    def sel(c, a, b):
        return jax.tree_util.tree_map(lambda x, y: jnp.where(c.reshape(c.shape + (1,) * (x.ndim - c.ndim)), x, y), a, b)

    def shift(loc, tg):
        """The certificate's shift c (lambda_min(H) > c proves Newton ends where the flow ends)."""
        gn = jnp.sqrt(jnp.sum(loc.g * loc.g, axis=-1))
        if out.size:
            d = loc.phi[..., out] - tg
            on = beta > 0
            gE = loc.g.at[..., out].add(-jnp.where(on, beta * xy.log_cost_grad(loc.phi[..., out], tg), 0.0))
        else:
            gE = loc.g
        first = jnp.max(jnp.abs(gE), axis=-1) if model == "xy" else extra
        R = 2.6 * gn / jnp.maximum(jnp.sqrt(3 * (3 * rho + first) * gn), 1e-300)  # a first radius
        nud = 0.0
        if out.size:
            a = jnp.minimum(jnp.abs(jnp.angle(jnp.exp(1j * d))) + R[..., None], np.pi)
            nud = jnp.where(on, beta * jnp.max(jnp.sin(a) / (1 + jnp.cos(a)) ** 2, axis=-1), 0.0)
            nud = jnp.where(a.max(-1) < 0.99 * np.pi, nud, jnp.inf)
        L = 3 * rho + nud + (first + gamma * R if model == "xy" else extra)
        return jnp.sqrt(3 * L * gn), gn

    def step(per_state, s):
        loc, dt, mode, gtest, iters, k, st = s
        active = gmax(loc.g) > tol
        tstop = getattr(options, "t_stop", 0.0)
        if tstop:
            active = active & (st[..., 9] < tstop)
            dt_keep = dt
            dt = jnp.minimum(dt, jnp.maximum(tstop - st[..., 9], 1e-12))
        c, gn = shift(loc, per_state[1])
        test = active & (mode == 0) & (c < jnp.min(loc.diag, axis=-1)) & (gn < 0.25 * gtest)
        rodas = getattr(options, "scheme", "ode23s") == "rodas3"
        mu = jnp.where(mode == 1, 0.0, jnp.where(test, -c, (2.0 if rodas else 1.0 / D) / dt))
        f = _factor(loc, W, mu, plan, ops)
        m_, h_ = mu[..., None], dt[..., None]
        nw = (mode == 1)[..., None]
        F0 = -loc.g
        if rodas:  # RODAS3 (Sandu et al. 1997): (H + 2/h) K_i = f(y + sum a_ij K_j) + sum c_ij K_j / h
            K1 = _solve(f, F0, ne)
            pd = jnp.all(jnp.isfinite(K1), axis=-1)
            K2 = _solve(f, F0 + 4.0 / h_ * K1, ne)
            a3 = jnp.where(nw, 1.0, 2.0)
            l3 = ops.local(loc.phi + a3 * K1, per_state)
            K3 = _solve(f, -l3.g + jnp.where(nw, 0.0, (K1 - K2) / h_), ne)
            l4 = ops.local(loc.phi + a3 * K1 + K3, per_state)
            K4 = _solve(f, -l4.g + jnp.where(nw, 0.0, (K1 - K2 - 8.0 / 3.0 * K3) / h_), ne)
            dphi = a3 * K1 + K3 + K4
            big = gmax(dphi)
            l2 = ops.local(loc.phi + dphi, per_state)
            err = gmax(K4)
        else:
            z1 = _solve(f, F0, ne)
            pd = jnp.all(jnp.isfinite(z1), axis=-1)
            k1 = m_ * z1
            l1 = ops.local(loc.phi + jnp.where(nw, z1, 0.5 * h_ * k1), per_state)
            F1 = -l1.g
            z2 = _solve(f, jnp.where(nw, F1, F1 - k1), ne)
            k2 = m_ * z2 + k1
            dphi = h_ * k2
            big = gmax(dphi)
            l2 = ops.local(jnp.where(nw, l1.phi + z2, loc.phi + dphi), per_state)
            F2 = -l2.g
            k3 = m_ * _solve(f, F2 - E32 * (k2 - F1) - 2 * (k1 - F0), ne)
            err = gmax(h_ * (k1 - 2 * k2 + k3)) / 6
        flow = (mode == 0) & ~test & active
        ok_flow = (pd & jnp.isfinite(err) & (err <= err_tol) & (big <= cap) & jnp.isfinite(l2.F)
                   & (l2.F <= loc.F + 1e-13 * (1 + jnp.abs(loc.F))))
        newton = (mode == 1) & active
        ok_newton = pd & jnp.isfinite(l2.F)
        new_loc = sel((newton & ok_newton) | (flow & ok_flow), l2, loc)
        fac = jnp.clip(0.9 * (err_tol / jnp.maximum(err, 1e-300)) ** (1 / 3), 0.2, 5.0)
        fac = jnp.minimum(fac, getattr(options, "target", 0.9) * cap / jnp.maximum(big, 1e-300))
        fac = jnp.where(~pd | ~jnp.isfinite(fac), 0.25, jnp.where(ok_flow, fac, jnp.minimum(fac, 0.5)))
        if tstop:
            st = st.at[..., 9].add(jnp.where(flow & ok_flow, dt, 0.0))
            dt = jnp.where(flow & ok_flow & (dt < dt_keep), dt_keep, dt)
            test = test & False
        dt = jnp.where(flow, jnp.minimum(dt * fac, 1e12), dt)
        mode = jnp.where(test & pd, 1, jnp.where(newton & ~ok_newton, 0, mode))
        gtest = jnp.where(test, gn, gtest)
        if stats:
            capbind = big > cap
            errbind = err > err_tol
            fe = jnp.clip(0.9 * (err_tol / jnp.maximum(err, 1e-300)) ** (1 / 3), 0.2, 5.0)
            fc = 0.9 * cap / jnp.maximum(big, 1e-300)
            acc = flow & ok_flow
            st = st + jnp.stack([acc, flow & ~ok_flow, flow & ~ok_flow & capbind,
                                 flow & ~ok_flow & errbind, test, test & pd, newton,
                                 acc & (fc < fe), acc & (fe < fc) & (fe < 5.0), acc & (fe >= 5.0) & (fc >= 5.0),
                                 jnp.where(acc, big, 0.0), flow & ~ok_flow & ~capbind & ~errbind & pd],
                                -1).astype(st.dtype)
        return new_loc, dt, mode, gtest, iters + active, k + 1, st

    def run(per_state, state, k, n_left):
        cond = lambda s: (s[5] < options.max_iter) & (jnp.sum(gmax(s[0].g) > tol) > n_left)
        out_ = jax.lax.while_loop(cond, partial(step, per_state), (*state[:5], k, state[5]))
        return (*out_[:5], out_[6]), out_[5]

    zeros = jnp.zeros(B)
    sizes = _stage_sizes(B)
    stops = [*sizes[1:], 0]
    k = 0
    iters0 = zeros
    st0 = jnp.zeros((B, 12))
    explicit = getattr(options, "explicit", "none")
    if explicit != "none":
        A, b, eb, q = _EXPLICIT[explicit]
        e_tol, e_cap, stiff = options.exp_tol, options.exp_cap, options.stiff

        def estep(per_state, s):
            loc, dt, on, iters, k, st = s
            active = on & (gmax(loc.g) > tol)
            h = dt[..., None]
            ks, args = [-loc.g], []
            for row in A[:-1]:
                args.append(loc.phi + h * sum(a * kk for a, kk in zip(row, ks) if a))
                ks.append(-ops.local(args[-1], per_state).g)
            dphi = h * sum(bb * kk for bb, kk in zip(b, ks) if bb)
            new = ops.local(loc.phi + dphi, per_state)
            ks.append(-new.g)
            err = gmax(h * sum(e * kk for e, kk in zip(eb, ks) if e))
            big = gmax(dphi)
            # stiffness (Hairer): stages 6 and 7 are at the same time; |k7 - k6| / |y7 - y6| ~ the curvature
            dk, dy = ks[6] - ks[5], new.phi - args[-1]
            lam = jnp.sqrt(jnp.sum(dk * dk, axis=-1) / jnp.maximum(jnp.sum(dy * dy, axis=-1), 1e-300))
            ok = (active & jnp.isfinite(err) & (err <= e_tol) & (big <= e_cap) & jnp.isfinite(new.F)
                  & (new.F <= loc.F + 1e-13 * (1 + jnp.abs(loc.F))))
            fac = jnp.clip(0.9 * (e_tol / jnp.maximum(err, 1e-300)) ** (1 / q), 0.2, 5.0)
            fac = jnp.minimum(fac, 0.9 * e_cap / jnp.maximum(big, 1e-300))
            fac = jnp.where(jnp.isfinite(fac), jnp.where(ok, fac, jnp.minimum(fac, 0.5)), 0.25)
            hn = h[..., 0] * fac
            on_next = active & (hn * lam <= stiff)  # stability, not accuracy, would limit the step: Rosenbrock
            loc = sel(ok, new, loc)
            dt = jnp.where(active, jnp.where(on_next, hn, jnp.minimum(hn, stiff / lam)), dt)
            if stats:
                st = (st.at[..., 0].add(ok).at[..., 1].add(active & ~ok).at[..., 10].add(jnp.where(ok, big, 0.0))
                      .at[..., 9].add(jnp.where(ok, h[..., 0], 0.0)))
            return loc, dt, on_next, iters + active, k + 1, st

        def erun(per_state, state, k, n_left):
            cond = lambda s: (s[4] < options.max_iter) & (jnp.sum(s[2]) > n_left)
            out_ = jax.lax.while_loop(cond, partial(estep, per_state), (*state[:4], k, state[4]))
            return (*out_[:4], out_[5]), out_[4]

        estate = (loc0, dt0, jnp.ones(B, dtype=bool), zeros, st0)
        estate, k = erun(per_state, estate, 0, stops[0])
        for size, n_left in zip(sizes[1:], stops[1:]):
            moving = jnp.argsort(-estate[2].astype(jnp.int32))[:size]
            take = lambda tree, i=moving: jax.tree_util.tree_map(lambda a: a[i], tree)
            sub, k = erun(take(per_state), take(estate), k, n_left)
            estate = jax.tree_util.tree_map(lambda a, b, i=moving: a.at[i].set(b), estate, sub)
        loc0, dt0, _, iters0, st0 = estate
        st0 = st0.at[..., 11].set(iters0)
        if getattr(options, "only_explicit", False):
            return phi0.at[..., order].set(loc0.phi), zeros > 0, gmax(loc0.g), iters0, st0
        k = 0
    init = (loc0, dt0, jnp.zeros(B, dtype=jnp.int32), zeros + jnp.inf, iters0, st0)
    state, k = run(per_state, init, k, stops[0])
    for size, n_left in zip(sizes[1:], stops[1:]):
        moving = jnp.argsort(-gmax(state[0].g))[:size]
        take = lambda tree, i=moving: jax.tree_util.tree_map(lambda a: a[i], tree)
        sub, k = run(take(per_state), take(state), k, n_left)
        state = jax.tree_util.tree_map(lambda a, b, i=moving: a.at[i].set(b), state, sub)
    loc, _, _, _, iters, st = state
    force = gmax(loc.g)
    stable = jnp.all(jnp.isfinite(_solve(_factor(loc, W, zeros, plan, ops), loc.g, ne)), axis=-1)
    res = (phi0.at[..., order].set(loc.phi), (force <= tol) & stable, force, iters)
    return (*res, st) if stats else res


def stable_end(model, p, phi, targets, beta, plan):
    """Whether the states ``phi`` (B, N) are stable equilibria of the flow on the free units: XY, a positive-definite
    Hessian of F (a Cholesky factorisation); ONN, a Jacobian of the full velocity (even parts of H included) whose
    eigenvalues all have negative real parts."""
    from pyosc.engines.jax.relax import MODELS, _gradient

    order = np.asarray(plan.order, dtype=int)
    if model == "xy":
        W, ops, per_state = MODELS[model].ops(p, phi, targets, beta, plan)
        loc = ops.local(phi[..., order], per_state)
        zeros = jnp.zeros(phi.shape[:-1])
        return jnp.all(jnp.isfinite(_solve(_factor(loc, W, zeros, plan, ops), loc.g, plan.n_eliminated)), axis=-1)

    def jacobian(y, target):
        field = lambda y: -_gradient(MODELS[model].descent, y, p, target, beta, plan)[order]
        return jax.jacfwd(field)(y)[:, order]

    J = jax.vmap(jacobian)(phi, targets)
    return jnp.max(jnp.real(jnp.linalg.eigvals(J)), axis=-1) < 0
