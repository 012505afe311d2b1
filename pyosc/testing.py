"""Conformance checks that every engine must pass, in the spirit of scikit-learn's ``check_estimator``.

:func:`check_engine` runs the named checks of :func:`engine_checks` on small networks and raises AssertionError
naming the failed check and its numbers::

    from pyosc.engines import get_engine
    from pyosc.testing import check_engine

    check_engine(get_engine("jax"))

The references are independent of any engine: the energy of the phase models (XY is ONN with H = sin), its
force and Hessian written out in NumPy; SciPy's ``solve_ivp`` (DOP853, tolerances 1e-12) on the models' own
right-hand sides for trajectories; central finite differences of the loss for gradients; the implicit-function
theorem for the limit of equilibrium propagation. Checks of models an engine does not implement pass untested.
The whole suite takes seconds plus the engine's compilation.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from functools import cache
from typing import NamedTuple

import jax
import numpy as np
from scipy.integrate import solve_ivp

from pyosc import topology as T
from pyosc.engines import get_engine
from pyosc.engines.base import (
    BaseEngine,
    DynamicsEngine,
    EquilibriumEngine,
    FinalLoss,
    IntegrateOptions,
    Nudge,
    RelaxOptions,
    SteadyStateOptions,
)
from pyosc.errors import InvalidInputError
from pyosc.models import optomech, registry

NEWTON = RelaxOptions()
ODE = RelaxOptions(method="ode", tol=1e-9, rtol=1e-11, atol=1e-11, t_max=2000.0)
FLOW = RelaxOptions(rtol=1e-10, atol=1e-10)  # trajectories
TIMES = np.linspace(0.0, 20.0, 81)
DYNAMICS = IntegrateOptions(rtol=1e-11, atol=1e-11, max_steps=20_000)


# --- engine-independent references -----------------------------------------------------------------

def _harmonics(model: str, p) -> tuple:
    """(W, h, psi, omega, shil, b): the phase model's energy data; XY is b = (1,), omega = shil = 0."""
    if model == "xy":
        zero = np.zeros_like(p["h"])
        return p["W"], p["h"], p["psi"], zero, zero, np.ones(1)
    return p["W"], p["h"], p["psi"], p["omega"], p["shil"], p["sin"]


def energy(model: str, p, phi: np.ndarray) -> np.ndarray:
    """E = -1/2 sum_kj W_kj sum_n (b_n / n) cos(n (phi_k - phi_j)) - sum h cos(phi - psi) - sum omega phi
    - 1/2 sum shil cos(2 phi), shape ``phi.shape[:-1]``."""
    W, h, psi, omega, shil, b = _harmonics(model, p)
    n = np.arange(1, b.size + 1)
    d = phi[..., :, None, None] - phi[..., None, :, None]
    pair = np.sum(W[..., None] * (b / n) * np.cos(n * d), axis=(-3, -2, -1))
    return (-0.5 * pair - np.sum(h * np.cos(phi - psi), axis=-1) - np.sum(omega * phi, axis=-1)
            - 0.5 * np.sum(shil * np.cos(2 * phi), axis=-1))


def energy_gradient(model: str, p, phi: np.ndarray) -> np.ndarray:
    """dE/dphi (minus the force), shape of ``phi``."""
    W, h, psi, omega, shil, b = _harmonics(model, p)
    n = np.arange(1, b.size + 1)
    d = phi[..., :, None, None] - phi[..., None, :, None]
    return (np.sum(W[..., None] * b * np.sin(n * d), axis=(-2, -1)) + h * np.sin(phi - psi) - omega
            + shil * np.sin(2 * phi))


def energy_hessian(model: str, p, phi: np.ndarray) -> np.ndarray:
    """d^2E/dphi_k dphi_j, shape ``phi.shape + (N,)``."""
    W, h, psi, _, shil, b = _harmonics(model, p)
    n = np.arange(1, b.size + 1)
    d = phi[..., :, None, None] - phi[..., None, :, None]
    coupling = np.sum(W[..., None] * n * b * np.cos(n * d), axis=-1)
    diag = np.sum(coupling, axis=-1) + h * np.cos(phi - psi) + 2 * shil * np.cos(2 * phi)
    return -coupling + diag[..., None] * np.eye(phi.shape[-1])


def _nudge_terms(phi_out, targets, beta):
    """beta C, beta dC/dphi, beta d^2C/dphi^2 of the log cost C = -sum log(1 + cos(phi - tau))."""
    d = phi_out - targets
    return beta * -np.sum(np.log1p(np.cos(d)), axis=-1), beta * np.tan(d / 2), beta / (1 + np.cos(d))


class _Net(NamedTuple):
    """A small network and states: ``phi0`` (samples, inits, N) with the inputs clamped, ``targets``
    (samples, n_out)."""

    model: str
    params: dict[str, np.ndarray]
    topology: T.Topology
    phi0: np.ndarray
    targets: np.ndarray


def _free_F(net: _Net, phi, beta: float):
    """F = E + beta C, dF/dphi and d^2F/dphi^2 on the free units (samples, inits[, nf[, nf]])."""
    t = net.topology
    free, out = np.flatnonzero(~t.clamped), t.output_units
    targets = net.targets[:, None, :]
    c, dc, ddc = _nudge_terms(phi[..., out], targets, beta) if beta else (0.0, 0.0, 0.0)
    g = energy_gradient(net.model, net.params, phi)
    g[..., out] += dc
    H = energy_hessian(net.model, net.params, phi)
    H[..., out, out] += ddc
    return energy(net.model, net.params, phi) + c, g[..., free], H[..., free[:, None], free]


def _couplings(topology: T.Topology, a: np.ndarray) -> np.ndarray:
    """Symmetric couplings (a + a^T) / 2 on the topology's pairs, zero elsewhere."""
    return np.where(topology.coupling_mask, (a + a.T) / 2, 0.0)


@cache
def _net(model: str) -> _Net:
    """Layers [2, 3, 2] (2 clamped inputs, a hidden layer the engine may eliminate, 2 outputs); 4 samples x 2
    initial states."""
    rng = np.random.default_rng(20240514)
    topo = T.layered([2, 3, 2])
    n = topo.n_units
    p = {"W": _couplings(topo, rng.standard_normal((n, n))), "h": rng.uniform(-0.5, 0.5, n),
         "psi": rng.uniform(-np.pi, np.pi, n)}
    if model == "onn":
        p.update(omega=rng.normal(0, 0.05, n), shil=np.full(n, 0.2), sin=np.array([1.0, 0.0, -0.25]), cos=np.zeros(4))
    phi0 = rng.uniform(-np.pi, np.pi, (4, 2, n))
    phi0[..., :2] = rng.uniform(-np.pi / 2, np.pi / 2, (4, 1, 2))
    return _Net(model, p, topo, phi0, rng.choice([-np.pi / 2, np.pi / 2], (4, 2)))


def _energy_models(engine) -> list[str]:
    return [m for m in ("xy", "onn") if isinstance(engine, EquilibriumEngine) and m in engine.models]


def _supports(engine, model: str) -> bool:
    return isinstance(engine, DynamicsEngine) and model in engine.models


def _assert_equilibrium_record(eq, phi0: np.ndarray, what: str) -> None:
    for field in ("phi", "converged", "force", "work"):
        assert isinstance(getattr(eq, field), np.ndarray), f"{what}: {field} is not a NumPy array"
    assert eq.phi.shape == phi0.shape, f"{what}: phi has shape {eq.phi.shape}, phi0 {phi0.shape}"
    for field in ("converged", "force", "work"):
        assert getattr(eq, field).shape == phi0.shape[:-1], f"{what}: {field} has shape {getattr(eq, field).shape}"
    assert eq.converged.dtype == bool, f"{what}: converged has dtype {eq.converged.dtype}"


# --- the checks ----------------------------------------------------------------------------------------

def check_energy_never_increases(engine) -> None:
    """Along trajectories of the flow, F = E + beta C never increases (XY and ONN with odd H, free and nudged)."""
    for model in _energy_models(engine):
        net = _net(model)
        for beta in (0.0, 0.5):
            nudge = Nudge(beta, net.targets) if beta else None
            traj = engine.trajectory(model, net.params, net.phi0, net.topology, TIMES, nudge, FLOW)
            want = net.phi0.shape[:-1] + (TIMES.size, net.topology.n_units)
            assert traj.shape == want, f"{model} trajectory has shape {traj.shape}, want {want}"
            F = _free_F(net, np.moveaxis(traj, -2, 0), beta)[0]
            rise = np.diff(F, axis=0).max()
            assert rise <= 1e-9 * (1 + np.abs(F).max()), f"{model}, beta={beta}: F rises by {rise:.3g} along the flow"
            drop = (F[0] - F[-1]).min()
            assert drop > 1e-6, f"{model}, beta={beta}: some state does not move (F falls by only {drop:.3g})"


def _assert_stable(net: _Net, eq, beta: float, tol: float, what: str) -> None:
    """Converged states: reported and reference force <= tol, positive-definite Hessian of F on the free units."""
    _, g, H = _free_F(net, eq.phi, beta)
    c = eq.converged
    if not c.any():
        return
    reported = eq.force[c].max()
    force = np.abs(g[c]).max()
    assert reported <= tol, f"{what}: a converged state reports force {reported:.3g} > tol {tol:g}"
    assert force <= tol + 1e-12, f"{what}: a converged state has force {force:.3g} > tol {tol:g} (NumPy reference)"
    lowest = np.linalg.eigvalsh(H[c]).min()
    assert lowest > 0, (f"{what}: a state flagged converged is not a stable equilibrium: lowest Hessian "
                        f"eigenvalue on the free units {lowest:.3g}")


def check_converged_states_are_stable(engine) -> None:
    """Converged states have force below tol and a positive-definite Hessian (a stable equilibrium): XY with
    ``"newton"`` and ``"ode"``, ONN with ``"newton"``, free and nudged; the random starts all converge. A start
    exactly at a saddle (a free unit anti-aligned with its ferromagnetic neighbours, zero bias: force 0, negative
    curvature) must be left for a minimum or flagged unconverged by ``"newton"``, which promises a minimum."""
    for model in _energy_models(engine):
        net = _net(model)
        for options in ((NEWTON, ODE) if model == "xy" else (NEWTON,)):
            for beta in (0.0, 0.3):
                what = f"{model} {options.method}, beta={beta}"
                eq = engine.relax(model, net.params, net.phi0, net.topology, Nudge(beta, net.targets) if beta else None,
                                  options)
                _assert_equilibrium_record(eq, net.phi0, what)
                assert eq.converged.all(), f"{what}: {int((~eq.converged).sum())} random starts did not converge"
                _assert_stable(net, eq, beta, options.tol, what)
    if "xy" in _energy_models(engine):
        net = _net("xy")
        n = net.topology.n_units
        W = _couplings(net.topology, np.random.default_rng(5).uniform(0.5, 1.5, (n, n)))  # ferromagnetic
        saddle = net._replace(params={"W": W, "h": np.zeros(n), "psi": np.zeros(n)}, phi0=np.zeros_like(net.phi0))
        saddle.phi0[..., 3] = np.pi  # a hidden unit anti-aligned with its neighbours
        eq = engine.relax("xy", saddle.params, saddle.phi0, saddle.topology)
        _assert_stable(saddle, eq, 0.0, NEWTON.tol, "xy newton from a saddle point")
        np.testing.assert_array_equal(eq.phi[..., :2], 0.0, err_msg="xy newton from a saddle: the inputs moved")


def check_clamped_units_stay_fixed(engine) -> None:
    """Input units keep their phases exactly: relaxations, EP steps and trajectories."""
    for model in _energy_models(engine):
        net = _net(model)
        n_in = net.topology.n_inputs
        want = net.phi0[..., :n_in]
        nudge = Nudge(0.3, net.targets)
        results = {"relax": engine.relax(model, net.params, net.phi0, net.topology, nudge).phi}
        step = engine.ep_step(model, net.params, net.phi0, net.topology, nudge)
        results.update({"ep_step free": step.free.phi, "ep_step nudged": step.nudged.phi})
        traj = engine.trajectory(model, net.params, net.phi0, net.topology, TIMES, nudge, FLOW)
        results["trajectory"] = np.moveaxis(traj, -2, 0)
        if model == "xy":
            results["relax ode"] = engine.relax(model, net.params, net.phi0, net.topology, nudge, ODE).phi
        for what, phi in results.items():
            moved = np.abs(phi[..., :n_in] - want).max()
            assert moved == 0, f"{model} {what}: clamped units moved by {moved:.3g}"


def _implicit_gradient(net: _Net, phi: np.ndarray) -> dict[str, np.ndarray]:
    """dC/dtheta = -(d^2E/dtheta dphi) H^-1 dC/dphi at free XY equilibria ``phi`` (samples, inits, N), averaged over
    states; couplings per pair (both entries of W)."""
    t, p = net.topology, net.params
    free, out = np.flatnonzero(~t.clamped), t.output_units
    _, dc, _ = _nudge_terms(phi[..., out], net.targets[:, None, :], 1.0)
    b = np.zeros_like(phi)
    b[..., out] = dc
    H = energy_hessian("xy", p, phi)[..., free[:, None], free]
    lam = np.zeros_like(phi)
    lam[..., free] = np.linalg.solve(H, b[..., free, None])[..., 0]
    d = phi[..., :, None] - phi[..., None, :]
    gW = -np.sin(d) * (lam[..., :, None] - lam[..., None, :])
    gh = -np.sin(phi - p["psi"]) * lam
    gpsi = p["h"] * np.cos(phi - p["psi"]) * lam
    return {"W": gW.mean(axis=(0, 1)), "h": gh.mean(axis=(0, 1)), "psi": gpsi.mean(axis=(0, 1))}


def check_ep_gradient_tends_to_implicit_gradient(engine) -> None:
    """The EP gradient approaches the implicit-function gradient of the log cost as beta -> 0, with an error
    shrinking like beta (one-sided EP); the gradient is a dict of the model's parameters, shaped like them."""
    if "xy" not in _energy_models(engine):
        return
    net = _net("xy")
    phi0 = np.repeat(net.phi0[:, :1], 2, axis=1)  # both initial states alike: the targets fit the free outputs
    free = engine.relax("xy", net.params, phi0, net.topology).phi
    rng = np.random.default_rng(11)
    out = net.topology.output_units
    targets = free[:, 0, out] + rng.choice([-1, 1], net.targets.shape) * rng.uniform(0.3, 1.2, net.targets.shape)
    net = net._replace(phi0=phi0, targets=targets)
    t = net.topology
    mask, units = t.trainable_coupling_mask, ~t.clamped
    flat = lambda g: np.concatenate([g["W"][mask], g["h"][units], g["psi"][units]])
    errors = []
    for beta in (1e-2, 1e-3, 1e-4):
        step = engine.ep_step("xy", net.params, phi0, t, Nudge(beta, targets))
        assert isinstance(step.gradient, dict) and set(step.gradient) == {"W", "h", "psi"}, \
            f"the EP gradient must be a dict keyed W, h, psi, got {type(step.gradient).__name__}"
        for k, v in step.gradient.items():
            assert isinstance(v, np.ndarray) and v.shape == net.params[k].shape, f"gradient[{k!r}] shape {np.shape(v)}"
        assert step.free.converged.all() and step.nudged.converged.all(), f"beta={beta}: EP states did not converge"
        exact = flat(_implicit_gradient(net, step.free.phi))
        errors.append(np.linalg.norm(flat(step.gradient) - exact) / np.linalg.norm(exact))
    assert errors[0] > errors[1] > errors[2], f"EP error does not shrink with beta = 1e-2, 1e-3, 1e-4: {errors}"
    assert errors[2] < 1e-2 and errors[2] < errors[0] / 20, f"EP error not O(beta): {errors}"


def _reference(rhs: Callable, y0: np.ndarray, times: np.ndarray) -> np.ndarray:
    """solve_ivp (DOP853, rtol = atol = 1e-12) of dy/dt = rhs(t, y) from t = 0, states at ``times``."""
    sol = solve_ivp(rhs, (0.0, times[-1]), y0.ravel(), method="DOP853", t_eval=times, rtol=1e-12, atol=1e-12)
    assert sol.success, sol.message
    return sol.y.T.reshape((times.size,) + y0.shape)


def _dynamics_net(model: str):
    """(params, y0 (2 samples, 2 inits, 3 units, d), inputs (2, 1)): a tiny network of ``model``."""
    rng = np.random.default_rng(3)
    n = 3
    a = rng.uniform(-1, 1, (n, n))
    sym = (a + a.T) / 2 * (1 - np.eye(n))
    phases = rng.uniform(-np.pi, np.pi, (2, 2, n))
    x = np.array([[np.pi / 2], [-np.pi / 2]])
    if model == "optomech-phase":
        p = {"omega": np.asarray(0.01), "h_in": np.asarray(1.0), "b_in": np.asarray(0.05), "J": 0.5 + 0.1 * sym,
             "C": 0.05 * sym, "h": rng.uniform(0.0, 0.2, n), "b": rng.uniform(0.0, 0.05, n),
             "psi": rng.uniform(-np.pi, np.pi, n)}
        return p, phases[..., None], x
    s = np.linspace(0.0, 4.0, 16)  # a Stuart-Landau cell: growth 0.05 (1 - |c|^2), shift 0.02 |c|^2 (exact in s)
    p = {"s_max": np.asarray(4.0), "growth": 0.05 * (1 - s), "growth_ds": np.full(16, -0.05), "shift": 0.02 * s,
         "shift_ds": np.full(16, 0.02), "K": 0.02 * sym, "f": rng.uniform(0.0, 0.02, n),
         "psi": rng.uniform(-np.pi, np.pi, n), "f_in": np.asarray(0.03), "frame": np.asarray(0.01)}
    return p, np.stack([np.cos(phases), np.sin(phases)], -1), x


def _dynamics_reference(model: str, p: dict, y0: np.ndarray, x: np.ndarray, times: np.ndarray) -> np.ndarray:
    """:func:`_reference` of the model's own right-hand side for every (sample, init): the engine's result shape."""
    rhs = jax.jit(optomech.DYNAMICS[model].rhs)
    out = np.empty(y0.shape[:2] + (times.size,) + y0.shape[2:])
    for s, m in np.ndindex(y0.shape[:2]):
        out[s, m] = _reference(lambda t, y, s=s: np.asarray(rhs(t, y.reshape(y0.shape[2:]), p, x[s])).ravel(),
                               y0[s, m], times)
    return out


def check_integration_matches_reference(engine) -> None:
    """XY trajectories (free and nudged) and the integration of ``"optomech-phase"`` and ``"optomech-averaged"``
    agree with solve_ivp of the same right-hand side to 1e-6."""
    if "xy" in _energy_models(engine):
        net = _net("xy")
        free, out = ~net.topology.clamped, net.topology.output_units
        for beta in (0.0, 0.5):
            def rhs(t, y, beta=beta):
                phi = y.reshape(net.phi0.shape)
                g = energy_gradient("xy", net.params, phi)
                if beta:
                    g[..., out] += _nudge_terms(phi[..., out], net.targets[:, None, :], beta)[1]
                return (-g * free).ravel()

            ref = np.moveaxis(_reference(rhs, net.phi0, TIMES), 0, -2)
            traj = engine.trajectory("xy", net.params, net.phi0, net.topology, TIMES,
                                     Nudge(beta, net.targets) if beta else None, FLOW)
            err = np.abs(traj - ref).max()
            assert err < 1e-6, f"xy trajectory, beta={beta}: differs from solve_ivp by {err:.3g} rad"
    times = np.array([5.0, 30.0, 60.0])
    for model in ("optomech-phase", "optomech-averaged"):
        if not _supports(engine, model):
            continue
        p, y0, x = _dynamics_net(model)
        ys = engine.integrate(model, p, y0, times, inputs=x, options=DYNAMICS)
        assert ys.shape == y0.shape[:-2] + (times.size,) + y0.shape[-2:], f"{model}: result shape {ys.shape}"
        err = np.abs(ys - _dynamics_reference(model, p, y0, x, times)).max()
        assert err < 1e-6, f"{model}: differs from solve_ivp by {err:.3g}"


def _fd_check(what: str, value: Callable, p: dict, grad: dict, entries, step: float = 1e-5) -> None:
    """Gradient entries (symmetric matrices: the pair) against central differences of ``value(params)``."""
    for name, idx in entries:
        plus, minus = ({k: np.array(v, dtype=float) for k, v in p.items()} for _ in range(2))
        pair = len(idx) == 2 and idx[0] != idx[1]
        for q, sign in ((plus, 1), (minus, -1)):
            q[name][idx] += sign * step
            if pair:
                q[name][idx[::-1]] += sign * step
        fd = (value(plus) - value(minus)) / (2 * step)
        g = grad[name][idx] + (grad[name][idx[::-1]] if pair else 0.0)
        assert abs(g - fd) <= 1e-4 * abs(fd) + 1e-8, f"{what}: d loss / d {name}{list(idx)} = {g:.10g}, " \
                                                     f"finite differences {fd:.10g}"


def check_gradients_match_finite_differences(engine) -> None:
    """``final_state_loss_and_grad`` and ``steady_state_loss_and_grad`` of ``"optomech-phase"`` agree with central
    finite differences of their own loss (entries of J, C, h, b, psi, omega, h_in); a stiff (implicit) integrator,
    the first of kvaerno5, kvaerno4, kvaerno3 the engine offers, gives the same dynamics gradient to its tolerance."""
    if not _supports(engine, "optomech-phase"):
        return
    model = "optomech-phase"
    p, y0, x = _dynamics_net(model)
    entries = [("J", (0, 1)), ("C", (1, 2)), ("h", (2,)), ("b", (0,)), ("psi", (2,)), ("omega", ()), ("h_in", ())]
    loss = FinalLoss(np.array([[1.0], [-1.0]]), outputs=(2,))
    value, grad = engine.final_state_loss_and_grad(model, p, y0, 20.0, loss, inputs=x, options=DYNAMICS)
    assert np.ndim(value) == 0 and set(grad) == set(p), f"dynamics gradient keys {sorted(grad)}"
    _fd_check("final_state_loss_and_grad", lambda q: float(engine.final_state_loss_and_grad(
        model, q, y0, 20.0, loss, inputs=x, options=DYNAMICS)[0]), p, grad, entries)
    stiff = next((m for m in ("kvaerno5", "kvaerno4", "kvaerno3") if m in engine.integrators), None)
    if stiff is not None:
        options = IntegrateOptions(method=stiff, rtol=1e-10, atol=1e-10, max_steps=20_000)
        _, implicit = engine.final_state_loss_and_grad(model, p, y0, 20.0, loss, inputs=x, options=options)
        for k in grad:
            scale = np.abs(grad[k]).max()
            assert np.allclose(implicit[k], grad[k], rtol=1e-5, atol=1e-6 * scale), \
                f"{stiff} dynamics gradient[{k!r}] differs from {DYNAMICS.method}'s: {implicit[k]} vs {grad[k]}"
    steady = SteadyStateOptions(tol=1e-14)
    y0 = _dynamics_reference(model, p, y0, x, np.array([300.0]))[:, :, 0]  # near the stable steady states
    value, grad, ok = engine.steady_state_loss_and_grad(model, p, y0, loss, inputs=x, options=steady)
    assert ok.shape == y0.shape[:2] and ok.all(), f"steady states: converged {ok.tolist()}"
    _fd_check("steady_state_loss_and_grad", lambda q: float(engine.steady_state_loss_and_grad(
        model, q, y0, loss, inputs=x, options=steady)[0]), p, grad, entries)


def _bypassed(options, **changes):
    """A copy of frozen ``options`` with fields changed without their own validation (to test the engine's)."""
    out = copy.copy(options)
    for k, v in changes.items():
        object.__setattr__(out, k, v)
    return out


def check_bad_inputs_are_rejected(engine) -> None:
    """Bad models, parameters, arrays and options raise :class:`~pyosc.errors.InvalidInputError` before computing."""
    cases: dict[str, Callable] = {
        "negative tol": lambda: RelaxOptions(tol=-1.0),
        "unknown integrator name": lambda: RelaxOptions(integrator="Tsit5"),
        "unknown integration method": lambda: IntegrateOptions(method="euler"),
    }
    if "xy" in _energy_models(engine):
        net = _net("xy")
        p, phi0, topo = net.params, net.phi0, net.topology
        n = topo.n_units
        relax = lambda model="xy", params=p, phi=phi0, nudge=None, options=NEWTON: engine.relax(
            model, params, phi, topo, nudge, options)
        nan = phi0.copy()
        nan[0, 0, 3] = np.nan
        asym = {**p, "W": p["W"] + np.triu(np.full((n, n), 0.1), 1)}
        cases.update({
            "NaN in phi0": lambda: relax(phi=nan),
            "phi0 of the wrong shape": lambda: relax(phi=phi0[..., :-1]),
            "phi0 with a runs axis the params lack": lambda: relax(phi=phi0[None]),
            "unknown model": lambda: relax(model="kuramoto"),
            "params with a missing key": lambda: relax(params={k: v for k, v in p.items() if k != "h"}),
            "params with an extra key": lambda: relax(params={**p, "omega": np.zeros(n)}),
            "params that are no mapping": lambda: relax(params=[p["W"], p["h"], p["psi"]]),
            "asymmetric W": lambda: relax(params=asym),
            "W with a diagonal": lambda: relax(params={**p, "W": p["W"] + np.eye(n)}),
            "W outside the topology": lambda: relax(params={**p, "W": np.ones((n, n)) - np.eye(n)}),
            "targets with the wrong shape": lambda: relax(nudge=Nudge(0.1, np.zeros((5, 2)))),
            "options of the wrong type": lambda: relax(options=IntegrateOptions()),
            "an integrator the engine lacks": lambda: relax(options=_bypassed(ODE, integrator="euler")),
            "ep_step without a nudge": lambda: engine.ep_step("xy", p, phi0, topo, None),
            "non-increasing times": lambda: engine.trajectory("xy", p, phi0, topo, np.array([0.0, 2.0, 1.0])),
            "negative times": lambda: engine.trajectory("xy", p, phi0, topo, np.array([-1.0, 2.0])),
        })
        if _supports(engine, "optomech-phase"):
            cases["dynamics model given to relax"] = lambda: relax(model="optomech-phase")
    if _supports(engine, "optomech-phase"):
        q, y0, x = _dynamics_net("optomech-phase")
        loss = FinalLoss(np.zeros((2, 1)), outputs=(2,))
        integrate = lambda model="optomech-phase", params=q, y=y0, times=(1.0,), inputs=x, options=DYNAMICS: \
            engine.integrate(model, params, y, np.asarray(times), inputs=inputs, options=options)
        cases.update({
            "NaN in y0": lambda: integrate(y=np.where(y0 == y0.max(), np.nan, y0)),
            "y0 with the wrong state size": lambda: integrate(y=np.repeat(y0, 2, axis=-1)),
            "inputs with the wrong shape": lambda: integrate(inputs=np.zeros((3, 1))),
            "non-increasing integration times": lambda: integrate(times=(2.0, 1.0)),
            "asymmetric J": lambda: integrate(params={**q, "J": q["J"] + np.triu(np.full((3, 3), 0.1), 1)}),
            "params with a missing key (dynamics)": lambda: integrate(params={k: v for k, v in q.items() if k != "C"}),
            "an integration method the engine lacks": lambda: integrate(options=_bypassed(DYNAMICS, method="euler")),
            "loss targets with the wrong shape": lambda: engine.final_state_loss_and_grad(
                "optomech-phase", q, y0, 1.0, FinalLoss(np.zeros((3, 1)), outputs=(2,)), inputs=x),
            "loss outputs out of range": lambda: engine.final_state_loss_and_grad(
                "optomech-phase", q, y0, 1.0, FinalLoss(np.zeros((2, 1)), outputs=(3,)), inputs=x),
            "negative t1": lambda: engine.final_state_loss_and_grad("optomech-phase", q, y0, -1.0, loss, inputs=x),
            "steady state of a time-driven model": lambda: engine.steady_state_loss_and_grad(
                "optomech-micro", q, y0, loss, inputs=x),
        })
        if "xy" in _energy_models(engine):
            cases["energy model given to integrate"] = lambda: integrate(model="xy")
    accepted = []
    for what, call in cases.items():
        try:
            call()
        except InvalidInputError:
            continue
        except Exception as e:  # noqa: BLE001  (any other error is a failure of this check)
            accepted.append(f"{what} ({type(e).__name__}: {e})")
            continue
        accepted.append(f"{what} (accepted)")
    assert not accepted, "not rejected with InvalidInputError: " + "; ".join(accepted)


# --- the flow's basin: an engine-independent reference and the agreement check --------------------------------

_D23 = 1.0 / (2.0 + np.sqrt(2.0))  # ode23s (Shampine & Reichelt 1997): W = I - h d J
_E32 = 6.0 + np.sqrt(2.0)


class _Phase(NamedTuple):
    """F, dF/dphi on the free units, the Hessian's diagonal (free units) and the trigonometric tables of the
    harmonics, for a batch of states."""

    F: np.ndarray
    g: np.ndarray
    diag: np.ndarray
    c: np.ndarray
    s: np.ndarray


class FlowReference:
    """The stable equilibrium that the gradient flow d phi/dt = -dE/dphi (clamped units fixed) reaches from each
    initial state, in NumPy, independent of any engine: ode23s (the linearly implicit Rosenbrock method of Shampine and
    Reichelt, with the analytic Hessian on the free units) with a local error of at most ``flow_tol`` rad and phase
    changes of at most ``trust`` rad per step, until max |dE/dphi| < ``tol`` at a positive-definite Hessian. An
    independent set of free units (a hidden layer) is eliminated by a Schur complement. The defaults follow the flow
    to about 1e-6 rad: they agree with diffrax's Tsit5 at rtol = atol = 1e-11 on every state tried (see
    ``benchmarks/bench_relaxation_basin.py``).

    ``params`` of the phase model ``model`` (``"xy"``, or ``"onn"`` with an odd H), optionally with a leading runs
    axis; :meth:`relax` takes states ``([runs,] ..., N)`` and returns ``(phi, converged, steps)``.
    """

    def __init__(self, model: str, params, topology: T.Topology, *, trust: float = 0.05, flow_tol: float = 1e-6,
                 tol: float = 1e-11, max_steps: int = 50_000):
        W, h, psi, omega, shil, b = (np.asarray(a, dtype=float) for a in _harmonics(model, params))
        self.runs = W.ndim == 3
        self.W, self.h, self.psi, self.omega, self.shil = W, h, psi, omega, shil
        self.b, self.n = b, np.arange(1, b.size + 1)
        self.trust, self.flow_tol, self.tol, self.max_steps = trust, flow_tol, tol, max_steps
        free = np.flatnonzero(~topology.clamped)
        adj = topology.coupling_mask[np.ix_(free, free)]
        chosen, blocked = [], np.zeros(free.size, dtype=bool)
        for i in np.argsort(adj.sum(1), kind="stable"):  # an independent set of free units, low degree first
            if not blocked[i]:
                chosen.append(i)
                blocked |= adj[i]
                blocked[i] = True
        if 2 * len(chosen) < free.size:
            chosen = []
        self.elim = free[np.sort(np.asarray(chosen, dtype=int))]
        self.kept = np.setdiff1d(free, self.elim)
        self.free = np.concatenate([self.elim, self.kept])  # relaxation order: eliminated units first

    def _params(self, run):
        pick = (lambda a: a[run]) if self.runs else (lambda a: a)
        return pick(self.W), pick(self.h), pick(self.psi), pick(self.omega), pick(self.shil)

    def _drive(self, phi, run):
        """The clamped units' field on the free units per harmonic, (real, imaginary) of shape (S, nf, M)."""
        W = self._params(run)[0]
        clamped = np.setdiff1d(np.arange(phi.shape[-1]), self.free)
        ang = self.n * phi[:, clamped, None]
        Wcf = W[..., clamped, :][..., self.free]
        return tuple(np.swapaxes(np.swapaxes(t, -1, -2) @ Wcf, -1, -2) for t in (np.cos(ang), np.sin(ang)))

    def _phase(self, y, drive, run) -> _Phase:
        """At free phases ``y`` (S, nf) in relaxation order."""
        W, h, psi, omega, shil = self._params(run)
        f = self.free
        Wff = W[..., f, :][..., f]
        h, psi, omega, shil = h[..., f], psi[..., f], omega[..., f], shil[..., f]
        ang = self.n * y[..., None]  # (S, nf, M)
        c, s = np.cos(ang), np.sin(ang)
        if self.runs:  # u = W z per harmonic (W symmetric), plus the clamped units' drive
            ur, ui = (np.swapaxes(np.swapaxes(a, -1, -2) @ Wff, -1, -2) for a in (c, s))
        else:
            ur, ui = (np.swapaxes((np.swapaxes(a, -1, -2).reshape(-1, f.size) @ Wff).reshape(
                a.shape[0], a.shape[2], a.shape[1]), -1, -2) for a in (c, s))
        ur, ui = ur + drive[0], ui + drive[1]
        bias = h * np.cos(y - psi)
        F = (-0.5 * np.sum((c * (ur + drive[0]) + s * (ui + drive[1])) * (self.b / self.n), axis=(-2, -1))
             - np.sum(bias, axis=-1) - np.sum(omega * y, axis=-1) - 0.5 * np.sum(shil * np.cos(2 * y), axis=-1))
        g = np.sum(self.b * (s * ur - c * ui), axis=-1) + h * np.sin(y - psi) - omega + shil * np.sin(2 * y)
        diag = np.sum(self.n * self.b * (c * ur + s * ui), axis=-1) + bias + 2 * shil * np.cos(2 * y)
        return _Phase(F, g, diag, c, s)

    def _block(self, ph: _Phase, rows, cols, run):
        """The Hessian's coupling block on free positions ``rows`` x ``cols`` (slices of the relaxation order)."""
        W = self._params(run)[0]
        Wb = W[..., self.free[rows], :][..., self.free[cols]]
        w = self.n * self.b
        cs = np.swapaxes(ph.c[:, cols], -1, -2)
        ss = np.swapaxes(ph.s[:, cols], -1, -2)
        return -Wb * ((ph.c[:, rows] * w) @ cs + (ph.s[:, rows] * w) @ ss)

    def _factor(self, ph: _Phase, mu, run):
        """Solver of (H + mu) x = r on the free units, and whether H + mu is positive definite per state."""
        ne = self.elim.size
        e, k = slice(0, ne), slice(ne, None)
        nk = self.kept.size
        S = self._block(ph, k, k, run) + (ph.diag[:, k] + mu[:, None])[:, :, None] * np.eye(nk)
        ok = np.ones(S.shape[0], dtype=bool)
        if ne:
            de = ph.diag[:, e] + mu[:, None]
            ok &= np.all(de > 0, axis=-1)
            de = np.where(de > 0, de, 1.0)
            cross = self._block(ph, e, k, run)
            S = S - np.swapaxes(cross, -1, -2) @ (cross / de[:, :, None])
        A = np.moveaxis(S, 0, -1)  # (nk, nk, states): the states last, so that rows and columns are contiguous
        L = np.zeros_like(A)  # Cholesky, column by column over the whole batch (NaN where not positive definite)
        with np.errstate(invalid="ignore", divide="ignore"):
            for j in range(nk):
                d = A[j, j] - np.sum(L[j, :j] ** 2, axis=0)
                L[j, j] = np.sqrt(np.where(d > 0, d, np.nan))
                L[j + 1:, j] = (A[j + 1:, j] - np.einsum("iks,ks->is", L[j + 1:, :j], L[j, :j])) / L[j, j]
            ok &= np.all(np.isfinite(L), axis=(0, 1))
            L = np.where(ok, L, np.eye(nk)[:, :, None])
            Li = np.zeros_like(L)  # L^-1, row by row
            for i in range(nk):
                Li[i] = -np.einsum("ks,kjs->js", L[i, :i], Li[:i]) / L[i, i]
                Li[i, i] += 1.0 / L[i, i]
        Li = np.moveaxis(Li, -1, 0)
        Sinv = np.swapaxes(Li, -1, -2) @ Li
        cho_solve = lambda r: (Sinv @ r[..., None])[..., 0]

        def solve(r):
            if not ne:
                return cho_solve(r)
            y_k = cho_solve(r[:, k] - ((r[:, e] / de)[:, None, :] @ cross)[:, 0])
            return np.concatenate([(r[:, e] - (cross @ y_k[..., None])[..., 0]) / de, y_k], axis=-1)

        return solve, ok

    def relax(self, phi0: np.ndarray):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):  # BLAS threads only slow these small products down
            return self._relax(np.asarray(phi0, dtype=float))

    def _relax(self, phi0: np.ndarray):
        shape = phi0.shape
        lead = shape[0] if self.runs else 1
        full = phi0.reshape(-1, shape[-1]).copy()
        run = np.repeat(np.arange(lead), full.shape[0] // lead)
        n_states = full.shape[0]
        drive = self._drive(full, run)
        out = full[:, self.free].copy()
        steps = np.zeros(n_states, dtype=int)
        done = np.zeros(n_states, dtype=bool)
        ph = self._phase(out, drive, run)
        live = np.flatnonzero(np.max(np.abs(ph.g), axis=-1) > self.tol)
        done[np.max(np.abs(ph.g), axis=-1) <= self.tol] = True
        take = lambda tree, i: type(tree)(*(a[i] for a in tree)) if isinstance(tree, _Phase) else \
            tuple(a[i] for a in tree)
        y, p0, dr = out[live], take(ph, live), take(drive, live)
        h = 0.5 * self.trust / np.maximum(np.max(np.abs(p0.g), axis=-1), 1e-300)
        for _ in range(self.max_steps):
            if live.size == 0:
                break
            r = run[live]
            mu = 1.0 / (_D23 * h)
            solve, pd = self._factor(p0, mu, r)
            F0 = -p0.g
            k1 = mu[:, None] * solve(F0)
            F1 = -self._phase(y + 0.5 * h[:, None] * k1, dr, r).g
            k2 = mu[:, None] * solve(F1 - k1) + k1
            dphi = h[:, None] * k2
            p2 = self._phase(y + dphi, dr, r)
            k3 = mu[:, None] * solve(-p2.g - _E32 * (k2 - F1) - 2 * (k1 - F0))
            err = np.max(np.abs(h[:, None] * (k1 - 2 * k2 + k3)), axis=-1) / 6
            big = np.max(np.abs(dphi), axis=-1)
            with np.errstate(invalid="ignore"):
                ok = (pd & np.isfinite(err) & (err <= self.flow_tol) & (big <= self.trust)
                      & (p2.F <= p0.F + 1e-13 * (1 + np.abs(p0.F))))
            fac = np.clip(0.9 * (self.flow_tol / np.maximum(err, 1e-300)) ** (1 / 3), 0.2, 5.0)
            fac = np.minimum(fac, 0.8 * self.trust / np.maximum(big, 1e-300))
            fac = np.where(pd & np.isfinite(fac), np.where(ok, fac, np.minimum(fac, 0.5)), 0.25)
            steps[live] += 1
            y = np.where(ok[:, None], y + dphi, y)
            p0 = _Phase(*(np.where(ok.reshape(ok.shape + (1,) * (a.ndim - 1)), a, b) for a, b in zip(p2, p0)))
            h = np.minimum(h * fac, 1e12)
            settled = np.max(np.abs(p0.g), axis=-1) <= self.tol
            out[live[settled]] = y[settled]
            done[live[settled]] = True
            keep = ~settled
            live, y, p0, dr, h = live[keep], y[keep], take(p0, keep), take(dr, keep), h[keep]
        out[live] = y
        ph = self._phase(out, drive, run)
        stable = self._factor(ph, np.zeros(n_states), run)[1]
        converged = done & stable & (np.max(np.abs(ph.g), axis=-1) <= self.tol)
        full[:, self.free] = out
        return full.reshape(shape), converged.reshape(shape[:-1]), steps.reshape(shape[:-1])


class BasinCase(NamedTuple):
    """A network and initial states for :func:`check_relaxation_follows_the_flow`: ``phi0`` (``[runs,]`` samples,
    inits, N) with the inputs clamped; ``name`` for the report."""

    name: str
    model: str
    params: dict[str, np.ndarray]
    topology: T.Topology
    phi0: np.ndarray


def _wrap(a: np.ndarray) -> np.ndarray:
    return np.abs(np.angle(np.exp(1j * a)))


def basin_agreement(engine, case: BasinCase, reference: tuple[np.ndarray, np.ndarray] | None = None,
                    options: RelaxOptions = RelaxOptions()) -> tuple[float, list[str], np.ndarray]:
    """Whether ``engine.relax`` with ``options`` ends where the flow ends, state by state.

    ``reference``: the flow's end states and whether each settled, as :meth:`FlowReference.relax` returns them
    (computed here when None; the free units are compared, the others may hold anything). Returns the share of
    states whose relaxation converged within 1e-6 rad (mod 2 pi, on every free unit) of the flow's equilibrium, a
    line per other state with both end states and their energies, and the max phase differences. States the
    reference did not settle count as disagreements."""
    if reference is None:
        reference = FlowReference(case.model, case.params, case.topology).relax(case.phi0)[:2]
    eq = engine.relax(case.model, case.params, case.phi0, case.topology, options=options)
    free = ~case.topology.clamped
    ref = np.where(free, reference[0], case.phi0)
    d = np.max(_wrap(eq.phi - ref)[..., free], axis=-1)
    bad = (d > 1e-6) | ~eq.converged | ~reference[1]
    runs = np.ndim(case.params["W"]) == 3
    lines = []
    for ix in zip(*np.nonzero(bad)):
        p = {k: (v[ix[0]] if runs else v) for k, v in case.params.items()}
        e_eng, e_ref = (float(energy(case.model, p, a[ix])) for a in (eq.phi, ref))
        fmt = lambda a, ix=ix: np.array2string(np.angle(np.exp(1j * a[ix][free])), precision=4, max_line_width=10**6)
        lines.append(f"{case.name} state {tuple(int(i) for i in ix)}: max |dphi| {d[ix]:.3g} rad, E {e_eng:.6f} vs "
                     f"flow {e_ref:.6f} (converged {bool(eq.converged[ix])}, flow settled {bool(reference[1][ix])})\n"
                     f"    phi0   {fmt(case.phi0)}\n    engine {fmt(eq.phi)}\n    flow   {fmt(ref)}")
    return 1.0 - bad.mean(), lines, d


def check_relaxation_follows_the_flow(engine, cases: list[BasinCase] | None = None,
                                      min_agreement: float = 0.999) -> None:
    """The default relaxation ends in the basin that the gradient flow reaches from each initial state (within
    1e-6 rad of the flow's equilibrium, :class:`FlowReference`) for at least ``min_agreement`` of the states of each
    case; every disagreement is reported with both end states. Default case (:func:`basin_cases`): XOR (N = 5,
    100 random networks x 4 samples x 3 initial states), where pseudo-transient continuation misses 17 of 1,200;
    ``tests/test_relaxation_basin.py`` adds digits networks at initial and trained parameters and an ONN network."""
    if "xy" not in _energy_models(engine):
        return
    for case in cases if cases is not None else basin_cases():
        agreement, lines, _ = basin_agreement(engine, case)
        assert agreement >= min_agreement, (f"{case.name}: the relaxation ends in another basin than the flow for "
                                            f"{len(lines)} of {case.phi0[..., 0].size} states ({1 - agreement:.2%} > "
                                            f"{1 - min_agreement:.2%}):\n" + "\n".join(lines))


def basin_cases() -> list[BasinCase]:
    """The default cases of :func:`check_relaxation_follows_the_flow` (no data files needed)."""
    from pyosc.data.datasets import xor
    from pyosc.models import xy

    topo = T.all_to_all(5, 2, 1)
    p = xy.init_params(topo, np.random.default_rng(0), scheme="xor", n_runs=100)
    phi0 = np.random.default_rng(7).uniform(-np.pi, np.pi, (100, 4, 3, 5))
    phi0[..., :2] = xor().x[:, None, :]
    return [BasinCase("XOR N=5 at initialisation", "xy", {"W": p.W, "h": p.h, "psi": p.psi}, topo, phi0)]


_CHECKS: dict[str, Callable] = {
    "energy never increases along a relaxation": check_energy_never_increases,
    "converged states are stable equilibria": check_converged_states_are_stable,
    "clamped units stay fixed": check_clamped_units_stay_fixed,
    "EP gradient tends to the implicit gradient": check_ep_gradient_tends_to_implicit_gradient,
    "integration matches a reference solution": check_integration_matches_reference,
    "gradients match finite differences": check_gradients_match_finite_differences,
    "bad inputs are rejected": check_bad_inputs_are_rejected,
    "relaxations end in the flow's basin": check_relaxation_follows_the_flow,
}


def engine_checks() -> Iterator[tuple[str, Callable[[BaseEngine], None]]]:
    """The conformance checks as (name, check(engine)) pairs, e.g. for ``pytest.mark.parametrize``."""
    yield from _CHECKS.items()


def check_engine(engine: str | BaseEngine) -> None:
    """Run every check of :func:`engine_checks` on ``engine`` (an engine or its name); AssertionError naming the
    failed check and its numbers if one fails."""
    engine = get_engine(engine)
    assert isinstance(engine, BaseEngine), f"{engine!r} is not a pyosc.engines.base.BaseEngine"
    unknown = set(engine.models) - set(registry.MODELS)
    assert not unknown, f"engine {engine.name!r} claims models the registry lacks: {sorted(unknown)}"
    for name, check in engine_checks():
        try:
            check(engine)
        except AssertionError as e:
            raise AssertionError(f"engine {engine.name!r} fails the check {name!r}: {e}") from e
