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


@pytest.mark.parametrize("old_sizes, new_sizes", [([5, 3, 2], [5, 6, 2]), ([5, 3, 3, 2], [5, 4, 5, 2])])
def test_grown_network_keeps_its_equilibria_and_outputs(rng, old_sizes, new_sizes):
    """grow_layers: the old units relax, from the same initial phases, to the same equilibrium in the grown network
    (the added units couple to the inputs and to each other only), and the trained couplings are kept."""
    from pyosc.engines import get_engine

    old, new = T.layered(old_sizes), T.layered(new_sizes)
    p = xy.init_params(old, rng, scheme="layered")._replace(h=rng.uniform(0, 1, old.n_units))
    grown = xy.grow_layers(p, old, new, rng)
    assert np.array_equal(grown.W, grown.W.T) and np.all(grown.W[~new.coupling_mask] == 0)
    starts = np.cumsum([0] + new_sizes)[:-1]
    kept = np.concatenate([s + np.arange(n) for s, n in zip(starts, old_sizes)])
    added = np.setdiff1d(np.arange(new.n_units), kept)
    assert np.array_equal(grown.W[np.ix_(kept, kept)], p.W) and np.all(grown.h[added] == 0)
    assert np.all(grown.W[np.ix_(added, kept[old_sizes[0]:])] == 0)  # not coupled to the old free units
    assert np.all(grown.W[np.ix_(added[:new_sizes[1] - old_sizes[1]], new.input_units)] != 0)
    phi_old = rng.uniform(-np.pi, np.pi, (20, 1, old.n_units))
    phi_new = rng.uniform(-np.pi, np.pi, (20, 1, new.n_units))
    phi_new[..., kept] = phi_old
    engine = get_engine("jax")
    before, after = engine.relax("xy", p, phi_old, old), engine.relax("xy", grown, phi_new, new)
    assert before.converged.all() and after.converged.all()
    np.testing.assert_allclose(np.angle(np.exp(1j * (after.phi[..., kept] - before.phi))), 0, atol=1e-6)


def test_grow_layers_refuses_what_it_cannot_grow(rng):
    old = T.layered([5, 4, 2])
    p = xy.init_params(old, rng, scheme="layered")
    for new in (T.layered([5, 3, 2]), T.layered([5, 4, 3]), T.layered([5, 4, 4, 2]), T.all_to_all(11, 5, 2)):
        with pytest.raises(InvalidInputError, match=f"cannot grow layered:5,4,2 into {new.name}"):
            xy.grow_layers(p, old, new, rng)


def test_with_spread_perturbs_couplings_and_bias_amplitudes_only(rng):
    """A fabricated copy: W stays symmetric and zero off the network's pairs, the relative errors of W and h have the
    asked spread, the bias phases are exact; spread 0 is the network itself; a negative spread is refused."""
    topo = T.layered([20, 30, 10])
    p = xy.init_params(topo, rng, scheme="layered")._replace(h=rng.uniform(0.5, 1, topo.n_units))
    q = xy.with_spread(p, 0.2, rng)
    assert np.array_equal(q.W, q.W.T) and np.all(q.W[~topo.coupling_mask] == 0) and np.array_equal(q.psi, p.psi)
    pairs = np.triu(topo.coupling_mask)
    for error in (q.W[pairs] / p.W[pairs] - 1, q.h / p.h - 1):
        assert abs(np.std(error) - 0.2) < 0.2 * 5 / np.sqrt(error.size) and abs(np.mean(error)) < 0.1
    same = xy.with_spread(p, 0.0, rng)
    assert all(np.array_equal(a, b) for a, b in zip(same, p))
    with pytest.raises(InvalidInputError, match="spread"):
        xy.with_spread(p, -0.1, rng)
