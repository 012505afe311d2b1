"""Phase-deviation (ONN) model in the JAX engine: energy, relaxation, EP vs exact gradient, flags, errors."""
import warnings

import jax
import numpy as np
import pytest

from pyosc import topology as T
from pyosc.data import datasets
from pyosc.engines import get_engine
from pyosc.engines.base import Nudge, RelaxOptions
from pyosc.errors import InvalidInputError
from pyosc.models import onn, xy
from pyosc.training.ep import implicit_gradient, random_phases

ENGINE = get_engine("jax")
H3 = onn.coupling_function([1.0, 0.0, -0.25])  # odd, with a third harmonic (as the Van der Pol reduction gives)


@pytest.fixture
def case(rng):
    """7 units (2 clamped inputs, 2 outputs), 12 samples x 1 initial state: the shapes every test
    here shares, so that the engine compiles each function once."""
    topo = T.all_to_all(7, 2, 2)
    p = xy.init_params(topo, rng, scheme="xor")
    params = onn.make_params(p.W, H3, h=p.h, psi=p.psi, omega=rng.normal(0, 0.05, 7), shil=0.2)
    x = rng.uniform(-np.pi / 2, np.pi / 2, (12, 2))
    y = datasets.encode_classes(rng.integers(0, 2, 12), 2)
    return topo, params, y, random_phases(rng, x, 1, 7, None)


def test_first_harmonic_onn_is_the_xy_model(case, rng):
    topo, _, y, phi0 = case
    p = xy.init_params(topo, rng, scheme="xor")
    a = ENGINE.ep_step("xy", p, phi0, topo, Nudge(0.1, y))
    b = ENGINE.ep_step("onn", onn.from_xy(p), phi0, topo, Nudge(0.1, y))
    np.testing.assert_allclose(b.free.phi, a.free.phi, atol=1e-10)
    np.testing.assert_allclose(b.nudged.phi, a.nudged.phi, atol=1e-10)
    for name in ("W", "h", "psi"):
        np.testing.assert_allclose(b.gradient[name], a.gradient[name], atol=1e-9)
    np.testing.assert_allclose(onn.energy(phi0, onn.from_xy(p)), xy.energy(phi0, p), atol=1e-12)


def test_energy_derivatives_match_autodiff(case):
    _, p, _, phi0 = case
    phi = phi0[0, 0] + 0.3
    q = onn.ONNParams(*(np.asarray(a) for a in p))
    np.testing.assert_allclose(onn.energy_grad_phi(phi, q), jax.jit(jax.grad(onn.energy))(phi, q), atol=1e-12)
    np.testing.assert_allclose(onn.energy_hessian(phi, q), jax.jit(jax.hessian(onn.energy))(phi, q), atol=1e-12)
    np.testing.assert_allclose(-onn.energy_grad_phi(phi, q), onn.velocity(phi, q), atol=1e-12)  # odd H: gradient flow


def test_odd_coupling_relaxation_never_increases_the_energy(case):
    topo, p, _, phi0 = case
    times = np.linspace(0.0, 30.0, 301)
    traj = ENGINE.trajectory("onn", p, phi0, topo, times, options=RelaxOptions(rtol=1e-10, atol=1e-10))
    e = np.asarray(onn.energy(traj, p))
    assert np.all(np.diff(e, axis=-1) <= 1e-10), np.diff(e, axis=-1).max()
    assert np.all(e[..., -1] < e[..., 0] - 1e-3)
    eq = ENGINE.relax("onn", p, phi0, topo)  # Newton: every accepted step lowers E; ends at a stable minimum
    assert eq.converged.all()
    assert np.all(np.asarray(onn.energy(eq.phi, p)) <= np.asarray(onn.energy(phi0, p)))
    assert np.abs(np.asarray(onn.velocity(eq.phi, p))[..., 2:]).max() < 1e-10
    hess = np.asarray(onn.energy_hessian(eq.phi, p))[..., 2:, 2:]
    assert np.linalg.eigvalsh(hess).min() > 0
    np.testing.assert_array_equal(eq.phi[..., :2], phi0[..., :2])


def test_ep_gradient_approaches_implicit_gradient(case, rng):
    """Odd H with three harmonics, detunings and SHIL. EP's bias is first order in beta times the log
    cost's curvature 1/(1 + cos d), so the targets sit 0.3 .. 1.5 rad from the free outputs."""
    topo, params, _, phi0 = case
    free = ENGINE.relax("onn", params, phi0, topo)
    y = free.phi[:, 0, topo.output_units] + rng.choice([-1, 1], (12, 2)) * rng.uniform(0.3, 1.5, (12, 2))
    mask, free_units = topo.trainable_coupling_mask, ~topo.clamped
    errors = []
    for beta in (1e-1, 1e-2, 1e-3):
        step = ENGINE.ep_step("onn", params, phi0, topo, Nudge(beta, y))
        assert step.free.converged.all() and step.nudged.converged.all()
        exact = implicit_gradient("onn", params, topo, step.free.phi, y)
        va = np.concatenate([step.gradient["W"][mask], step.gradient["h"][free_units], step.gradient["psi"][free_units]])
        vb = np.concatenate([exact["W"][mask], exact["h"][free_units], exact["psi"][free_units]])
        errors.append(np.linalg.norm(va - vb) / np.linalg.norm(vb))
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.02 and errors[2] < errors[0] / 20, errors


def test_implicit_gradient_matches_finite_differences_with_even_coupling(rng):
    """The reference gradient stays exact for a non-odd H (no energy), by finite differences through
    the ODE relaxation."""
    topo = T.all_to_all(5, 2, 1)
    p = xy.init_params(topo, rng, scheme="xor")
    H = onn.coupling_function([1.0, 0.0, -0.2], cos=[0.0, 0.3, 0.0, 0.05])
    params = onn.make_params(p.W, H, h=np.abs(p.h) + 0.3, psi=p.psi)
    d = datasets.xor()
    ode = RelaxOptions(method="ode", tol=1e-10, rtol=1e-12, atol=1e-12, t_max=4000.0)
    eq = ENGINE.relax("onn", params, random_phases(rng, d.x[:2], 1, 5, None), topo, options=ode)
    assert eq.converged.all()
    exact = implicit_gradient("onn", params, topo, eq.phi, d.y[:2])

    def cost(q):
        e = ENGINE.relax("onn", q, eq.phi, topo, options=ode)
        return float(np.mean(xy.log_cost(e.phi[..., topo.output_units], d.y[:2, None, :])))

    eps = 1e-5
    for i, j in [(2, 3), (0, 4)]:
        W = params.W.copy()
        W[i, j] += eps
        W[j, i] += eps
        up = cost(params._replace(W=W))
        W[i, j] -= 2 * eps
        W[j, i] -= 2 * eps
        assert (up - cost(params._replace(W=W))) / (2 * eps) == pytest.approx(exact["W"][i, j], rel=1e-4, abs=1e-7)


def test_energy_flags_and_warnings():
    W = np.array([[0.0, 1.0], [1.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert onn.energy_status(onn.make_params(W, H3)) == {"odd_coupling": True, "identical_frequencies": True}
    with pytest.warns(onn.PhaseModelWarning, match="even"):
        flags = onn.energy_status(onn.make_params(W, onn.coupling_function([1.0], cos=[0.0, 0.2])))
    assert flags == {"odd_coupling": False, "identical_frequencies": True}
    with pytest.warns(onn.PhaseModelWarning, match="disperse"):
        flags = onn.energy_status(onn.make_params(W, H3, omega=[0.0, 0.1]))
    assert flags == {"odd_coupling": True, "identical_frequencies": False}


def test_bad_onn_inputs_raise(case):
    topo, p, _, phi0 = case
    with pytest.raises(InvalidInputError, match="even"):
        ENGINE.relax("onn", p._replace(cos=np.array([0.0, 0.1, 0.0, 0.0])), phi0, topo)
    with pytest.raises(InvalidInputError, match="shil"):
        ENGINE.relax("onn", p._replace(shil=-np.ones(7)), phi0, topo)
    with pytest.raises(InvalidInputError, match="cos must have shape"):
        ENGINE.relax("onn", p._replace(cos=np.zeros(2)), phi0, topo)
    with pytest.raises(InvalidInputError, match="symmetric"):
        W = p.W.copy()
        W[0, 1] += 1.0
        ENGINE.relax("onn", p._replace(W=W), phi0, topo)
    with pytest.raises(InvalidInputError, match="depend on the phase difference"):
        onn.coupling_function([0.0])
    with pytest.raises(InvalidInputError, match="cos must have shape"):
        onn.coupling_function([1.0], cos=[0.0])
    with pytest.raises(InvalidInputError, match="models 'xy' and 'onn'"):
        ENGINE.relax("kuramoto", p, phi0, topo)
