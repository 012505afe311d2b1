"""The JAX engine's default relaxation (``RelaxOptions(method="newton")``): follow the gradient flow, then Newton once
a certificate proves that Newton ends where the flow ends (issue 16).

EP needs the equilibria that the oscillators' own dynamics d phi/dt = -dF/dphi reach from their initial phases
(F = E + beta C); a relaxation that jumps into another local minimum computes a gradient that the hardware never
sees. Pseudo-transient continuation (``method="continuation"``) does so for a few % of random starts (20 % on a
layered digits network at initialisation). This relaxation ends in the flow's basin up to the accuracy of the
integration, then converges quadratically. Per state (batched, through the engine's queue of states,
:func:`~pyosc.engines.jax.relax._queued`), three phases:

1. Explicit flow (networks of more than ``EXPLICIT_MIN_FREE`` free units). Dormand-Prince 5(4) steps of the flow
   (six field evaluations, no factorisation), local error at most ``EXPLICIT_TOL`` x ``flow_tol`` rad and phase
   changes at most ``EXPLICIT_TRUST`` rad per step, while the flow is not stiff: a state leaves this phase once its
   step would be limited by stability rather than accuracy (h lambda > ``STIFF``, lambda estimated from the last two
   stages as in Hairer's DOPRI5). Most of the path from a random start, and the part where errors matter most, is
   covered here, cheaply and to 5th order.
2. Linearly implicit flow. ode23s (the Rosenbrock method of Shampine & Reichelt 1997; W = H + mu with
   mu = 1 / (d h), d = 1 / (2 + sqrt 2), H the analytic Hessian of F on the free units, an independent set of them
   eliminated by a Schur complement; one factorisation, three solves, two field evaluations per step), accepted
   when its local error estimate is at most ``flow_tol`` rad, no phase changes by more than ``trust`` rad, W is
   positive definite and F does not increase.
3. Certified Newton. H is L-Lipschitz on a ball B(x, R) around the state, with L from the parameters and the
   state (XY: L = 3 rho + max |dE/dphi| + Gamma R + the nudge's third derivative, rho the spectral norm of |W| on
   the free units, Gamma a bound on the Hessian's row sums; ONN: with the harmonics' weights). When H - c I is
   positive definite for c = sqrt(3 L |g|) (one Cholesky factorisation, tried once |g| has fallen 4-fold since the
   last try), lambda_min(H) > c, the Newton step s has |s| <= |g| / lambda and h = L |s| / lambda < 1/3:
   Kantorovich's theorem gives one zero x* of g in B(x, 1.27 |s|), reached by Newton's method; and F is strongly
   convex on B(x, 2.6 |s|) (lambda - 2.6 L |s| > 0), which contains B(x*, |x - x*|), so the flow from x stays in
   it and ends at x* too. Newton (with a chord step per factorisation) from there ends exactly where the flow
   from x ends.

Converged: max |dF/dphi| <= ``tol`` at a positive-definite H (a stable equilibrium). The guarantee is therefore
that of the flow's integration in phases 1 and 2 (local errors of about ``flow_tol``; a state whose flow passes
closer to a basin boundary than the accumulated error may still land on the other side: on the conformance
suite's networks about 1 state in 2,000 for a layered digits network at initialisation, none on the others) and
exact after the certificate. Cost: about twice the iterations of the continuation, at a similar cost per
iteration (the explicit steps need no factorisation; small factorisations are unrolled:
:mod:`pyosc.engines.jax.linalg`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from pyosc.engines.jax.relax import (
    MODELS,
    _gradient,
    _positive_definite,
    _queued,
    _select,
    factor,
    queue_width,
    solve,
)
from pyosc.models import xy

D = 1.0 / (2.0 + np.sqrt(2.0))  # ode23s: W = I + h D H
E32 = 6.0 + np.sqrt(2.0)

# Dormand-Prince 5(4): rows of a (stages 2..7, stage 7 at the new state), weights b, b - b_embedded
_DP5_A = ((1 / 5,), (3 / 40, 9 / 40), (44 / 45, -56 / 15, 32 / 9),
          (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
          (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656))
_DP5_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_DP5_E = (35 / 384 - 5179 / 57600, 0.0, 500 / 1113 - 7571 / 16695, 125 / 192 - 393 / 640,
          -2187 / 6784 + 92097 / 339200, 11 / 84 - 187 / 2100, -1 / 40)

EXPLICIT_TOL = 0.1
"""Local error of an explicit step, as a fraction of ``RelaxOptions.flow_tol``."""
EXPLICIT_TRUST = 1.0
"""Largest phase change of an explicit step (rad)."""
STIFF = 3.0
"""An explicit step with h lambda above this would be limited by stability (Dormand-Prince: about 3.3): the state
goes on with linearly implicit steps."""
EXPLICIT_MIN_FREE = 16
"""Networks with more free units than this start with the explicit phase; smaller ones go straight to the linearly
implicit flow, whose factorisations are then cheap: the explicit phase would cost more than it saves (XOR, 3 free
units: 11-12 ms per EP iteration of 100 runs x 4 samples without it, 14-19 ms with it) and doubles the compile time
of the relaxation. (Digits all-to-all N = 85, 21 free units: 98-120 ms with it, 134-147 ms without.)"""
def _constants(model, p, plan):
    """Parameter-only constants of the certificate: (rho, gamma, extra); see the module docstring."""
    order = np.asarray(plan.order, dtype=int)
    rho = jnp.linalg.eigvalsh(jnp.abs(p.W[np.ix_(order, order)]))[-1]
    rowsum = jnp.sum(jnp.abs(p.W[order]), axis=-1)
    h = jnp.abs(p.h[order])
    if model == "xy":
        return rho, jnp.max(2 * rowsum + h), jnp.zeros(())
    n = jnp.arange(1, p.sin.shape[-1] + 1, dtype=jnp.float64)
    s2, s1 = jnp.sum(n * n * jnp.abs(p.sin)), jnp.sum(n * jnp.abs(p.sin))
    shil = jnp.abs(p.shil[order])
    return rho * s2, jnp.max(2 * rowsum * s1 + h + 2 * shil), jnp.max(rowsum * s2 + h + 4 * shil)


def flow_newton_relax(model, p, phi0, targets, beta, plan, options):
    """The relaxation of the module docstring on a flat batch phi0 (B, N), targets (B, n_out):
    (phi, converged, force, iterations)."""
    order = np.asarray(plan.order, dtype=int)
    ne = plan.n_eliminated
    out = np.asarray(plan.outputs, dtype=int)
    tol, trust, flow_tol = options.tol, options.trust, options.flow_tol
    gmax = lambda g: jnp.max(jnp.abs(g), axis=-1)
    W, ops, per_state = MODELS[model].ops(p, phi0, targets, beta, plan)
    rho, gamma, extra = _constants(model, p, plan)
    loc0 = ops.local(phi0[..., order], per_state)
    n_states = phi0.shape[0]
    width = queue_width(n_states)
    zeros = jnp.zeros(n_states)

    def shift(loc, tg):
        """The certificate's shift c and |g| (module docstring)."""
        gn = jnp.sqrt(jnp.sum(loc.g * loc.g, axis=-1))
        on = beta > 0
        if out.size:
            d = jnp.angle(jnp.exp(1j * (loc.phi[..., out] - tg)))
            gE = loc.g.at[..., out].add(-jnp.where(on, beta * xy.log_cost_grad(loc.phi[..., out], tg), 0.0))
        else:
            gE = loc.g
        first = jnp.max(jnp.abs(gE), axis=-1) if model == "xy" else extra
        R = 2.6 * gn / jnp.maximum(jnp.sqrt(3 * (3 * rho + first) * gn), 1e-300)
        nudge = 0.0
        if out.size:  # beta C''' on the outputs over the ball (|d| + R < pi)
            a = jnp.abs(d) + R[..., None]
            third = jnp.where(a < 0.99 * np.pi, jnp.sin(a) / (1 + jnp.cos(a)) ** 2, jnp.inf)
            nudge = jnp.where(on, beta * jnp.max(third, axis=-1), 0.0)
        L = 3 * rho + nudge + (first + gamma * R if model == "xy" else extra)
        return jnp.sqrt(3 * L * gn), gn

    # 1. explicit flow (Dormand-Prince 5(4)) while not stiff
    e_tol, e_trust = EXPLICIT_TOL * flow_tol, EXPLICIT_TRUST

    def explicit(per_state, s):
        (loc, dt, on, iters), k = s
        active = on & (gmax(loc.g) > tol)
        h = dt[..., None]
        ks, args = [-loc.g], []
        for row in _DP5_A:
            args.append(loc.phi + h * sum(a * kk for a, kk in zip(row, ks)))
            ks.append(-ops.local(args[-1], per_state).g)
        dphi = h * sum(b * kk for b, kk in zip(_DP5_B, ks) if b)
        new = ops.local(loc.phi + dphi, per_state)
        ks.append(-new.g)
        err = gmax(h * sum(e * kk for e, kk in zip(_DP5_E, ks) if e))
        big = gmax(dphi)
        dk, dy = ks[6] - ks[5], dphi - (args[-1] - loc.phi)  # stages 6 and 7 are both at t + h
        lam = jnp.sqrt(jnp.sum(dk * dk, axis=-1) / jnp.maximum(jnp.sum(dy * dy, axis=-1), 1e-300))
        ok = (active & jnp.isfinite(err) & (err <= e_tol) & (big <= e_trust) & jnp.isfinite(new.F)
              & (new.F <= loc.F + 1e-13 * (1 + jnp.abs(loc.F))))
        fac = jnp.clip(0.9 * (e_tol / jnp.maximum(err, 1e-300)) ** 0.2, 0.2, 5.0)
        fac = jnp.minimum(fac, 0.9 * e_trust / jnp.maximum(big, 1e-300))
        fac = jnp.where(jnp.isfinite(fac), jnp.where(ok, fac, jnp.minimum(fac, 0.5)), 0.25)
        h_next = h[..., 0] * fac
        on_next = active & (h_next * lam <= STIFF)
        dt = jnp.where(active, jnp.where(on_next, h_next, jnp.minimum(h_next, STIFF / lam)), dt)
        return (_select(ok, new, loc), dt, on_next, iters + active), k + 1

    dt0, iters0 = 0.2 / jnp.maximum(gmax(loc0.g), 1e-300), zeros
    if order.size > EXPLICIT_MIN_FREE:
        loc0, dt0, _, iters0 = _queued(explicit, lambda s: s[2], ((loc0, dt0, gmax(loc0.g) > tol, zeros), 0),
                                       per_state, options.max_iter, width)

    # 2. linearly implicit flow (ode23s) and 3. certified Newton

    def implicit(per_state, s):
        (loc, dt, mode, g_tried, iters), k = s
        active = gmax(loc.g) > tol
        c, gn = shift(loc, per_state[1])
        test = active & (mode == 0) & (c < jnp.min(loc.diag, axis=-1)) & (gn < 0.25 * g_tried)
        mu = jnp.where(mode == 1, 0.0, jnp.where(test, -c, 1.0 / (D * dt)))
        f = factor(loc, W, mu, plan, ops)
        m_, h_ = mu[..., None], dt[..., None]
        nw = (mode == 1)[..., None]
        F0 = -loc.g
        z1 = solve(f, F0, ne)  # Newton mode: the Newton step
        pd = jnp.all(jnp.isfinite(z1), axis=-1)
        k1 = m_ * z1
        l1 = ops.local(loc.phi + jnp.where(nw, z1, 0.5 * h_ * k1), per_state)
        F1 = -l1.g
        z2 = solve(f, jnp.where(nw, F1, F1 - k1), ne)  # Newton mode: a chord step
        k2 = m_ * z2 + k1
        dphi = h_ * k2
        l2 = ops.local(jnp.where(nw, l1.phi + z2, loc.phi + dphi), per_state)
        k3 = m_ * solve(f, -l2.g - E32 * (k2 - F1) - 2 * (k1 - F0), ne)
        err = gmax(h_ * (k1 - 2 * k2 + k3)) / 6
        big = gmax(dphi)
        flow = (mode == 0) & ~test & active
        ok_flow = (pd & jnp.isfinite(err) & (err <= flow_tol) & (big <= trust) & jnp.isfinite(l2.F)
                   & (l2.F <= loc.F + 1e-13 * (1 + jnp.abs(loc.F))))
        newton = (mode == 1) & active
        ok_newton = pd & jnp.isfinite(l2.F)
        fac = jnp.clip(0.9 * (flow_tol / jnp.maximum(err, 1e-300)) ** (1 / 3), 0.2, 5.0)
        fac = jnp.minimum(fac, 0.8 * trust / jnp.maximum(big, 1e-300))
        fac = jnp.where(~pd | ~jnp.isfinite(fac), 0.25, jnp.where(ok_flow, fac, jnp.minimum(fac, 0.5)))
        loc = _select((newton & ok_newton) | (flow & ok_flow), l2, loc)
        dt = jnp.where(flow, jnp.minimum(dt * fac, 1e12), dt)
        mode = jnp.where(test & pd, 1, jnp.where(newton & ~ok_newton, 0, mode))
        return (loc, dt, mode, jnp.where(test, gn, g_tried), iters + active), k + 1

    init = (loc0, dt0, jnp.zeros(n_states, dtype=jnp.int32), zeros + jnp.inf, iters0)
    loc, _, _, _, iters = _queued(implicit, lambda s: gmax(s[0].g) > tol, (init, 0), per_state, options.max_iter,
                                  width)
    force = gmax(loc.g)
    return phi0.at[..., order].set(loc.phi), (force <= tol) & _positive_definite(loc, W, plan, ops), force, iters


def stable_end(model, p, phi, targets, beta, plan):
    """Whether the states ``phi`` (B, N) are stable equilibria of the flow on the free units: XY, a positive-definite
    Hessian of F (a Cholesky factorisation); ONN, a Jacobian of the full velocity (even parts of H included) whose
    eigenvalues all have negative real parts."""
    order = np.asarray(plan.order, dtype=int)
    if model == "xy":
        W, ops, per_state = MODELS[model].ops(p, phi, targets, beta, plan)
        return _positive_definite(ops.local(phi[..., order], per_state), W, plan, ops)

    def jacobian(y, target):
        field = lambda y: -_gradient(MODELS[model].descent, y, p, target, beta, plan)[order]
        return jax.jacfwd(field)(y)[:, order]

    J = jax.vmap(jacobian)(phi, targets)
    return jnp.max(jnp.real(jnp.linalg.eigvals(J)), axis=-1) < 0
