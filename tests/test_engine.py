"""Relaxation to equilibrium: physics invariants of both methods of the JAX engine."""
import numpy as np
import pytest

from pyosc import topology as T
from pyosc.data import datasets
from pyosc.engines import get_engine
from pyosc.engines.base import Nudge, RelaxOptions
from pyosc.errors import InvalidInputError
from pyosc.models import xy
from pyosc.training.ep import random_phases

ENGINE = get_engine("jax")
ODE = RelaxOptions(method="ode", tol=1e-9, rtol=1e-11, atol=1e-11, t_max=2000.0)


@pytest.fixture(params=["all-to-all", "layered"])
def case(request, rng):
    if request.param == "all-to-all":
        topo = T.all_to_all(7, 2, 2)
        p = xy.init_params(topo, rng, scheme="xor")
    else:
        topo = T.layered([2, 3, 2])  # the conformance suite's network and batch shape: its compiled programs
        p = xy.init_params(topo, rng, scheme="layered")
        p = p._replace(h=rng.uniform(0, 0.5, topo.n_units))
    x = rng.uniform(-np.pi / 2, np.pi / 2, (4, topo.n_inputs))
    y = datasets.encode_classes(rng.integers(0, topo.n_outputs, 4), topo.n_outputs)
    return topo, p, x, y, random_phases(rng, x, 2, topo.n_units, None)


def test_energy_never_increases_along_relaxation(case):
    topo, p, _x, y, phi0 = case
    times = np.linspace(0.0, 30.0, 301)
    traj = ENGINE.trajectory("xy", p, phi0, topo, times, options=RelaxOptions(rtol=1e-10, atol=1e-10))
    e = np.asarray(xy.energy(traj, p))
    assert traj.shape == phi0.shape[:2] + (times.size, topo.n_units)
    assert np.all(np.diff(e, axis=-1) <= 1e-10), np.diff(e, axis=-1).max()
    assert np.all(e[..., -1] < e[..., 0])
    nudged = ENGINE.trajectory("xy", p, phi0, topo, times, Nudge(0.5, y), RelaxOptions(rtol=1e-10, atol=1e-10))
    f = np.asarray(xy.energy(nudged, p) + 0.5 * xy.log_cost(nudged[..., topo.output_units], y[:, None, None, :]))
    assert np.all(np.diff(f, axis=-1) <= 1e-10)


@pytest.mark.parametrize("options", [RelaxOptions(tol=1e-10), ODE], ids=["newton", "ode"])
def test_converged_states_are_steady_and_inputs_stay_clamped(case, options):
    topo, p, _x, y, phi0 = case
    for nudge in (None, Nudge(0.3, y)):
        eq = ENGINE.relax("xy", p, phi0, topo, nudge, options)
        assert eq.converged.all()
        assert np.all(eq.force[eq.converged] < options.tol)
        np.testing.assert_array_equal(eq.phi[..., : topo.n_inputs], phi0[..., : topo.n_inputs])
        force = -np.asarray(xy.energy_grad_phi(eq.phi, p))
        if nudge is not None:
            out = topo.output_units
            force[..., out] -= nudge.beta * np.asarray(xy.log_cost_grad(eq.phi[..., out], y[:, None, :]))
        assert np.abs(force[..., topo.n_inputs:]).max() < options.tol
        hess = np.asarray(xy.energy_hessian(eq.phi, p))[..., topo.n_inputs:, topo.n_inputs:]
        if nudge is None:  # a stable equilibrium: positive-definite Hessian on the free units
            assert np.linalg.eigvalsh(hess).min() > 0


def test_newton_lowers_energy_and_matches_the_ode_equilibrium(case):
    topo, p, _x, _y, phi0 = case
    newton = ENGINE.relax("xy", p, phi0, topo)
    ode = ENGINE.relax("xy", p, phi0, topo, options=ODE)
    e0, en, eo = (np.asarray(xy.energy(a, p)) for a in (phi0, newton.phi, ode.phi))
    assert np.all(en <= e0)
    same = np.all(np.abs(np.angle(np.exp(1j * (newton.phi - ode.phi)))) < 1e-6, axis=-1)
    assert same.mean() >= 0.75, same.mean()  # the same basin in most states; both are stable minima
    np.testing.assert_allclose(en[same], eo[same], atol=1e-9)


def test_unconverged_states_are_flagged(case):
    topo, p, _x, _y, phi0 = case
    eq = ENGINE.relax("xy", p, phi0, topo, options=RelaxOptions(max_iter=1))
    assert not eq.converged.all() and np.all(eq.force[~eq.converged] > 1e-10)
    ode = ENGINE.relax("xy", p, phi0, topo, options=RelaxOptions(method="ode", t_max=0.1, tol=1e-7))
    assert not ode.converged.any()


@pytest.mark.parametrize("shared_steps", [False, True], ids=["per-state", "shared-steps"])
def test_fixed_horizon_ode_ends_on_the_trajectory(case, shared_steps):
    """The paper's protocol: integrate to t_max = 3 (far from steady). The relaxation (free units only,
    clamped units as a drive, block couplings) must end where the full-network trajectory is at t_max."""
    topo, p, _x, y, phi0 = case
    tight = dict(rtol=1e-11, atol=1e-11)
    options = RelaxOptions(method="ode", t_max=3.0, tol=1e-9, shared_steps=shared_steps, **tight)
    for nudge in (None, Nudge(0.3, y)):
        eq = ENGINE.relax("xy", p, phi0, topo, nudge, options)
        traj = ENGINE.trajectory("xy", p, phi0, topo, np.array([3.0]), nudge, RelaxOptions(**tight))
        assert not eq.converged.any()
        np.testing.assert_allclose(eq.phi, traj[..., 0, :], atol=1e-8)


def test_runs_axis_equals_separate_calls(rng):
    topo = T.all_to_all(5, 2, 1)
    p = xy.init_params(topo, rng, scheme="xor", n_runs=3)
    d = datasets.xor()
    phi0 = random_phases(rng, d.x, 2, 5, 3)
    together = ENGINE.relax("xy", p, phi0, topo, Nudge(0.1, d.y))
    for r in range(3):
        alone = ENGINE.relax("xy", xy.XYParams(*(a[r] for a in p)), phi0[r], topo, Nudge(0.1, d.y))
        np.testing.assert_allclose(together.phi[r], alone.phi, atol=1e-12)


def test_bad_engine_inputs_raise(rng):
    topo = T.all_to_all(5, 2, 1)
    p = xy.init_params(topo, rng, scheme="xor")
    phi0 = random_phases(rng, datasets.xor().x, 1, 5, None)
    with pytest.raises(InvalidInputError, match="phi0 must have shape"):
        ENGINE.relax("xy", p, phi0[..., :4], topo)
    with pytest.raises(InvalidInputError, match="targets must have shape"):
        ENGINE.relax("xy", p, phi0, topo, Nudge(0.1, np.zeros((3, 1))))
    with pytest.raises(InvalidInputError, match="NaN"):
        ENGINE.relax("xy", p, np.full_like(phi0, np.nan), topo)
    for beta in (0.0, -0.1, np.nan):
        with pytest.raises(InvalidInputError, match="beta"):
            Nudge(beta, np.zeros((4, 1)))
    with pytest.raises(InvalidInputError, match="method"):
        RelaxOptions(method="euler")
    with pytest.raises(InvalidInputError, match="atol"):
        RelaxOptions(method="ode", tol=1e-10, atol=1e-8)
    with pytest.raises(InvalidInputError, match="engine"):
        get_engine("fortran")
    with pytest.raises(InvalidInputError, match="model"):
        ENGINE.relax("kuramoto", p, phi0, topo)
    with pytest.raises(InvalidInputError, match="leaves uncoupled"):
        ENGINE.relax("xy", p, phi0, T.layered([2, 2, 1]))
    with pytest.raises(InvalidInputError, match="integrator"):
        RelaxOptions(integrator="Tsit5")
    with pytest.raises(InvalidInputError, match="options must be"):
        ENGINE.relax("xy", p, phi0, topo, options={"tol": 1e-8})


def test_params_cross_as_mappings_or_namedtuples(rng):
    """A mapping and the model's NamedTuple give the same computation; results are records of NumPy arrays and the
    EP gradient is a dict keyed by the model's parameter names."""
    topo = T.all_to_all(5, 2, 1)
    p = xy.init_params(topo, rng, scheme="xor")
    d = datasets.xor()
    phi0 = random_phases(rng, d.x, 2, 5, None)
    a = ENGINE.ep_step("xy", p, phi0, topo, Nudge(0.1, d.y))
    b = ENGINE.ep_step("xy", p._asdict(), phi0, topo, Nudge(0.1, d.y))
    assert list(a.gradient) == ["W", "h", "psi"]
    for name in ("W", "h", "psi"):
        assert isinstance(a.gradient[name], np.ndarray) and a.gradient[name].shape == getattr(p, name).shape
        np.testing.assert_array_equal(a.gradient[name], b.gradient[name])
    np.testing.assert_array_equal(a.nudged.phi, b.nudged.phi)
    assert isinstance(a.free.converged, np.ndarray) and a.free.converged.dtype == bool


@pytest.mark.parametrize("n_runs", [None, 2])
def test_queued_relaxation_matches_one_batch(rng, monkeypatch, n_runs):
    """A batch of more than QUEUE_MIN states relaxes through a queue (16 slots of 128 states here); each state ends
    where the loop over the whole batch takes it, after the same number of iterations."""
    from pyosc.engines.jax import flow
    from pyosc.engines.jax import relax as jax_relax

    assert jax_relax.queue_width(12) == 12 and jax_relax.queue_width(100) == 64
    assert jax_relax.queue_width(10_000) == 1250
    topo = T.all_to_all(12, 2, 2)
    p = xy.init_params(topo, rng, scheme="all-to-all", n_runs=n_runs)
    x = rng.uniform(-np.pi / 2, np.pi / 2, (16, 2))
    y = datasets.encode_classes(rng.integers(0, 2, 16), 2)
    phi0 = random_phases(rng, x, 8, topo.n_units, n_runs)
    engine, nudge = get_engine("jax"), Nudge(0.5, y)
    def relax(width, options):
        for module in (jax_relax, flow):
            monkeypatch.setattr(module, "queue_width", lambda n: width or n)
        jax_relax._compiled.cache_clear()
        return [engine.relax("xy", p, phi0, topo, nudge, options) for options in (RelaxOptions(), capped)]

    capped = RelaxOptions(max_iter=8)  # states still moving after 8 iterations are flagged, in both
    queued, whole = relax(16, capped), relax(None, capped)
    jax_relax._compiled.cache_clear()
    assert queued[0].converged.all() and whole[0].converged.all() and not whole[1].converged.all()
    assert np.mean(whole[0].work < whole[0].work.max()) > 0.5  # most states finish well before the slowest
    for a, b in zip(queued, whole):
        np.testing.assert_array_equal(a.work, b.work)
        np.testing.assert_array_equal(a.converged, b.converged)
        np.testing.assert_allclose(a.phi, b.phi, rtol=0, atol=1e-9)
