import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pyosc import topology as T
from pyosc.errors import InvalidInputError
from pyosc.models import registry, xy


@pytest.fixture
def net(rng):
    topo = T.all_to_all(6, 2, 2)
    p = xy.init_params(topo, rng, scheme="xor")
    phi = rng.uniform(-np.pi, np.pi, (3, 6))
    return topo, p, phi


def test_energy_formula(net):
    _, p, phi = net
    d = phi[:, :, None] - phi[:, None, :]
    ref = -0.5 * np.sum(p.W * np.cos(d), axis=(1, 2)) - np.sum(p.h * np.cos(phi - p.psi), axis=1)
    np.testing.assert_allclose(xy.energy(phi, p), ref, rtol=1e-13)


def test_phase_derivatives_match_autodiff(net):
    _, p, phi = net
    g_auto = jax.jit(jax.vmap(jax.grad(lambda f: xy.energy(f, p))))(jnp.asarray(phi))
    np.testing.assert_allclose(xy.energy_grad_phi(phi, p), g_auto, atol=1e-13)
    h_auto = jax.jit(jax.vmap(jax.hessian(lambda f: xy.energy(f, p))))(jnp.asarray(phi))
    np.testing.assert_allclose(xy.energy_hessian(phi, p), h_auto, atol=1e-12)


def test_parameter_derivatives_are_per_pair(net):
    _, p, phi = net
    g = xy.energy_param_grad(phi, p)
    auto = jax.jit(jax.grad(lambda q: jnp.mean(xy.energy(jnp.asarray(phi), q))))(xy.XYParams(*map(jnp.asarray, p)))
    # autodiff treats W_ij and W_ji as independent entries: the pair derivative is their sum
    off = ~np.eye(6, dtype=bool)  # the diagonal is not a parameter (W_ii = 0) and gets no gradient
    np.testing.assert_allclose(g.W[off], (auto.W + auto.W.T)[off], atol=1e-13)
    assert np.all(np.diag(g.W) == 0)
    np.testing.assert_allclose(g.h, auto.h, atol=1e-13)
    np.testing.assert_allclose(g.psi, auto.psi, atol=1e-13)
    np.testing.assert_allclose(g.W[0, 1], -np.mean(np.cos(phi[:, 0] - phi[:, 1])), rtol=1e-13)


def test_log_cost_force_and_curvature(rng):
    phi, tau = rng.uniform(-3, 3, 7), rng.uniform(-1, 1, 7)
    g = jax.jit(jax.vmap(jax.grad(lambda a, b: xy.log_cost(a[None], b[None]))))(jnp.asarray(phi), jnp.asarray(tau))
    np.testing.assert_allclose(xy.log_cost_grad(phi, tau), g, rtol=1e-12)
    np.testing.assert_allclose(xy.log_cost_grad(phi, tau), np.tan((phi - tau) / 2), rtol=1e-12)
    c = jax.jit(jax.vmap(jax.grad(lambda a, b: xy.log_cost_grad(a, b))))(jnp.asarray(phi), jnp.asarray(tau))
    np.testing.assert_allclose(xy.log_cost_curvature(phi, tau), c, rtol=1e-12)
    assert np.isinf(xy.log_cost(np.array([np.pi]), np.array([0.0])))


def test_distance_range():
    tau = np.array([np.pi / 2, -np.pi / 2])
    assert float(xy.distance(tau, tau)) == 0.0
    assert float(xy.distance(-tau, tau)) == pytest.approx(1.0)


def test_init_schemes(rng):
    layered = T.layered([4, 6, 3])
    p = xy.init_params(layered, rng, scheme="layered", n_runs=2)
    assert p.W.shape == (2, 13, 13) and np.all(p.W[:, ~layered.coupling_mask] == 0)
    assert np.allclose(p.W, np.swapaxes(p.W, 1, 2)) and np.all(p.h == 0)
    big = xy.init_params(T.all_to_all(400, 64, 10), rng, scheme="all-to-all")
    off = big.W[np.triu_indices(400, 1)]
    assert abs(off.std() * np.sqrt(400) - 1) < 0.02
    with pytest.raises(InvalidInputError, match="scheme"):
        xy.init_params(layered, rng, scheme="glorot")


@pytest.mark.parametrize("bad, match", [
    (lambda p: p._replace(W=p.W.at[0, 1].set(np.nan) if hasattr(p.W, "at") else _set(p.W, (0, 1), np.nan)), "NaN"),
    (lambda p: p._replace(h=_set(p.h, 2, np.inf)), "NaN or infinite"),
    (lambda p: p._replace(psi=p.psi[:-1]), "psi must have shape"),
    (lambda p: p._replace(W=_set(p.W, (0, 1), 5.0)), "symmetric"),
    (lambda p: p._replace(W=p.W + 1j), "real"),
])
def test_bad_parameters_raise(net, bad, match):
    _, p, _ = net
    with pytest.raises(InvalidInputError, match=match):
        xy.validate_params(bad(p))


def _set(a, idx, v):
    a = np.array(a, dtype=np.result_type(a, type(v)))
    a[idx] = v
    return a


def test_validate_params_takes_mappings_and_names_missing_keys(net):
    _, p, _ = net
    q = xy.validate_params(p._asdict(), 6)
    assert isinstance(q, xy.XYParams) and all(np.array_equal(a, b) for a, b in zip(q, p))
    with pytest.raises(InvalidInputError, match=r"missing \['h'\], unexpected \['omega'\]"):
        xy.validate_params({"W": p.W, "psi": p.psi, "omega": p.h})
    with pytest.raises(InvalidInputError, match="zero diagonal"):
        xy.validate_params(p._replace(W=np.asarray(p.W) + np.eye(6)))
    with pytest.raises(InvalidInputError, match="W must have shape"):
        xy.validate_params(p, 7)
    stacked, runs = registry.validate_params("xy", {k: np.stack([v, v]) for k, v in p._asdict().items()})
    assert runs == 2 and stacked["W"].shape == (2, 6, 6)
