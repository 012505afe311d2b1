"""Equilibrium propagation: gradient against the implicit-function gradient, training, results, interfaces."""
from dataclasses import replace

import numpy as np
import pytest

from pyosc import topology as T
from pyosc.data import datasets
from pyosc.engines import get_engine
from pyosc.engines.base import Nudge, RelaxOptions
from pyosc.errors import InvalidInputError
from pyosc.models import xy
from pyosc.results import checkpoint_progress, read_checkpoint, read_netcdf, write_netcdf
from pyosc.training.ep import EPConfig, ep_step, implicit_gradient, random_phases, train_ep

ENGINE = get_engine("jax")


def _relative_error(a: dict, b: dict, topo) -> float:
    mask = topo.trainable_coupling_mask
    free = ~topo.clamped
    va = np.concatenate([a["W"][mask], a["h"][free], a["psi"][free]])
    vb = np.concatenate([b["W"][mask], b["h"][free], b["psi"][free]])
    return float(np.linalg.norm(va - vb) / np.linalg.norm(vb))


def _samples_off_anti_alignment(rng, margin: float):
    """An 8-unit network (XOR initialisation), 24 random samples with one initial state each, and which samples keep
    every free output at 1 + cos(phi - tau) >= ``margin`` (EP's bias grows with the log cost's curvature
    1/(1 + cos d))."""
    topo = T.all_to_all(8, 2, 2)
    p = xy.init_params(topo, rng, scheme="xor")
    x = rng.uniform(-np.pi / 2, np.pi / 2, (24, 2))
    y = datasets.encode_classes(rng.integers(0, 2, 24), 2)
    phi0 = random_phases(rng, x, 1, topo.n_units, None)
    free = ENGINE.relax("xy", p, phi0, topo)
    keep = np.all(1 + np.cos(free.phi[..., topo.output_units] - y[:, None, :]) >= margin, axis=(1, 2))
    return topo, p, x, y, phi0, keep


def test_ep_estimates_approach_the_implicit_gradient_at_their_order(rng):
    """The one-sided EP gradient approaches the implicit-function gradient as beta -> 0 with an error of first order
    (halving beta halves it); 2 g(beta) - g(2 beta) cancels that bias: halving beta divides its error by about 4.
    EP's bias grows with the log cost's curvature 1/(1 + cos d), so the test keeps samples whose outputs are not
    nearly anti-aligned with their targets. A training iteration (one compiled program) applies the same gradient."""
    topo, p, x, y, phi0, keep = _samples_off_anti_alignment(rng, 0.3)
    assert keep.sum() >= 5
    phi0, y = phi0[keep], y[keep]
    options = RelaxOptions(tol=1e-12)
    errors = {"one-sided": [], "richardson": []}
    for estimator, errs in errors.items():
        for beta in (0.01, 0.005, 0.0025):
            step = ep_step(ENGINE, "xy", p, phi0, topo, Nudge(beta, y), options, estimator=estimator)
            assert step.free.converged.all() and step.nudged.converged.all()
            exact = implicit_gradient("xy", p, topo, step.free.phi, y)
            errs.append(_relative_error(step.gradient, exact, topo))
    ratios = {k: np.array(v[:-1]) / np.array(v[1:]) for k, v in errors.items()}
    assert np.all((ratios["one-sided"] > 1.8) & (ratios["one-sided"] < 2.2)), errors
    assert np.all((ratios["richardson"] > 3.4) & (ratios["richardson"] < 4.6)), errors
    assert errors["one-sided"][-1] < 0.01, errors
    assert errors["richardson"][0] < errors["one-sided"][-1], errors  # beta = 0.01 beats one-sided at 0.0025

    data = datasets.PhaseDataset(x[keep], y, datasets.decode_classes(y), "random")
    config = EPConfig(n_iterations=1, beta=0.01, learning_rate=1.0, estimator="richardson", relax=options)
    ds = train_ep(topo, data, p, config, progress=False)
    start = random_phases(np.random.default_rng(config.seed), data.x, 1, topo.n_units, None)
    step = ep_step(ENGINE, "xy", p, start, topo, Nudge(0.01, y), options, estimator="richardson")
    mask = topo.trainable_coupling_mask
    np.testing.assert_allclose(ds.W.values[0][mask], (p.W - step.gradient["W"])[mask], rtol=1e-9, atol=1e-12)
    kicked = ep_step(ENGINE, "xy", p, start, topo, Nudge(0.01, y), options, kick=1e-9, rng=np.random.default_rng(0),
                     estimator="richardson")  # the host path with kicked nudged phases extrapolates alike
    np.testing.assert_allclose(kicked.gradient["W"], step.gradient["W"], rtol=1e-5, atol=1e-8)


def test_implicit_gradient_matches_finite_differences(rng):
    """The reference itself: d/dtheta of the log cost at the equilibrium that follows theta."""
    topo = T.all_to_all(6, 2, 1)
    p = xy.init_params(topo, rng, scheme="xor")
    x, y = datasets.xor().x[:2], datasets.xor().y[:2]
    phi0 = random_phases(rng, x, 1, 6, None)
    eq = ENGINE.relax("xy", p, phi0, topo)
    exact = implicit_gradient("xy", p, topo, eq.phi, y)

    def cost(q):
        e = ENGINE.relax("xy", q, eq.phi, topo, options=RelaxOptions(tol=1e-13))  # continuation
        return float(np.mean(xy.log_cost(e.phi[..., topo.output_units], y[:, None, :])))

    eps = 1e-5
    for i, j in [(2, 3), (0, 5), (4, 5)]:
        W = p.W.copy()
        W[i, j] += eps
        W[j, i] += eps
        up = cost(p._replace(W=W))
        W[i, j] -= 2 * eps
        W[j, i] -= 2 * eps
        fd = (up - cost(p._replace(W=W))) / (2 * eps)
        assert fd == pytest.approx(exact["W"][i, j], rel=1e-5, abs=1e-9)
    for k in (3, 5):
        h = p.h.copy()
        h[k] += eps
        up = cost(p._replace(h=h))
        h[k] -= 2 * eps
        assert (up - cost(p._replace(h=h))) / (2 * eps) == pytest.approx(exact["h"][k], rel=1e-5, abs=1e-9)


def test_xor_training_small(tmp_path):
    """A small version of the paper's XOR experiment: 10 runs, 300 iterations."""
    topo = T.all_to_all(5, 2, 1)
    p = xy.init_params(topo, np.random.default_rng(0), scheme="xor", n_runs=10)
    ds = train_ep(topo, datasets.xor(), p, EPConfig(n_iterations=300, eval_every=100, seed=1), progress=False)
    final = ds.distance.isel(iteration=-1).values
    assert final.shape == (10,)
    assert np.median(final) < 1e-2 and np.mean(final < 5e-2) >= 0.8, final
    assert np.all(ds.distance.isel(iteration=0).values > 5 * final)
    assert ds.accuracy.isel(evaluation=-1).mean() >= 0.9
    assert int(ds.unconverged.sum()) == 0
    np.testing.assert_array_equal(ds.evaluation.values, [0, 100, 200, 300])
    # clamped parts never change: input-input coupling and input biases
    np.testing.assert_array_equal(ds.W.values[:, 0, 1], p.W[:, 0, 1])
    np.testing.assert_array_equal(ds.h.values[:, :2], p.h[:, :2])

    path = write_netcdf(ds, tmp_path / "xor.nc")
    back = read_netcdf(path)
    np.testing.assert_array_equal(back.distance.values, ds.distance.values)
    assert back.distance.attrs["units"] == "1" and back.psi.attrs["units"] == "rad"
    assert back.attrs["config"]["beta"] == 0.1 and back.attrs["config"]["relax"]["method"] == "newton"
    assert back.attrs["topology"] == "all-to-all:5" and list(back.distance.dims) == ["run", "iteration"]


def test_adam_learns_xor():
    topo = T.all_to_all(5, 2, 1)
    p = xy.init_params(topo, np.random.default_rng(3), scheme="xor", n_runs=3)  # the networks of the tests below
    ds = train_ep(topo, datasets.xor(), p, EPConfig(n_iterations=200, optimizer="adam", learning_rate=0.05),
                  progress=False)
    first = ds.distance.isel(iteration=slice(0, 10)).mean("iteration").values
    last = ds.distance.isel(iteration=slice(-10, None)).mean("iteration").values
    assert np.mean(last < 0.1 * first) >= 0.5, (first, last)


def _killed_after(n_steps: int):
    """A progress callback that fails like a killed process once ``n_steps`` iterations are done (before the
    checkpoint of the last one is written: as a crash inside iteration ``n_steps`` would)."""

    def progress(done, total, metrics):
        if done > n_steps:
            raise RuntimeError("killed")

    return progress


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_interrupted_training_resumes_identically(tmp_path, optimizer):
    """A run killed midway (here: the engine fails at iteration 7) and restarted from its checkpoint
    gives exactly the uninterrupted history: parameters, optimizer state, generators and snapshots."""
    topo = T.all_to_all(5, 2, 1)
    p = xy.init_params(topo, np.random.default_rng(3), scheme="xor", n_runs=3)
    cfg = EPConfig(n_iterations=12, optimizer=optimizer, learning_rate=0.05, eval_every=4, snapshots=(0, 5, 12))
    whole = train_ep(topo, datasets.xor(), p, cfg, progress=False)
    ckpt = tmp_path / "ep.npz"
    with pytest.raises(RuntimeError, match="killed"):
        train_ep(topo, datasets.xor(), p, cfg, progress=_killed_after(7), checkpoint=ckpt,
                 checkpoint_seconds=0)
    assert ckpt.exists()
    resumed = train_ep(topo, datasets.xor(), p, cfg, progress=False, checkpoint=ckpt)
    for name in ("W", "h", "psi", "distance", "accuracy", "W_snapshot"):
        np.testing.assert_array_equal(resumed[name].values, whole[name].values)
    with pytest.raises(InvalidInputError, match=r"other settings: .*learning_rate \(0.05 there, 0.01 here\)"):
        train_ep(topo, datasets.xor(), p, EPConfig(n_iterations=12, learning_rate=0.01), progress=False, checkpoint=ckpt)


def test_compiled_loop_gives_the_step_by_step_history(tmp_path):
    """Iterations compiled into lax.scan chunks (cut by evaluations and snapshots) reproduce the loop that calls
    one compiled iteration per host step with the same device draws: parameters, records, scores, snapshots; and a
    scanned run killed midway resumes to the same history."""
    topo = T.all_to_all(5, 2, 1)
    p = xy.init_params(topo, np.random.default_rng(3), scheme="xor", n_runs=3)
    # scan=1: one compiled iteration per host call; scan=2: chunks cut by the evaluation at 5 and the snapshot at 6,
    # [0, 2) [2, 4) [4, 5) [5, 6) [6, 8) [8, 10) [10, 12): scans of lengths 2 and 1
    base = EPConfig(n_iterations=12, optimizer="adam", learning_rate=0.05, eval_every=5, snapshots=(0, 6, 12))
    step_by_step = train_ep(topo, datasets.xor(), p, replace(base, scan=1), progress=False)
    scanned = train_ep(topo, datasets.xor(), p, replace(base, scan=2), progress=False)
    for name in ("W", "h", "psi", "distance", "unconverged", "accuracy", "W_snapshot"):
        np.testing.assert_array_equal(scanned[name].values, step_by_step[name].values, err_msg=name)
    assert np.all(np.diff(scanned.distance.mean("run").values[[0, -1]]) < 0)  # it trains
    ckpt = tmp_path / "scan.npz"
    with pytest.raises(RuntimeError, match="killed"):
        train_ep(topo, datasets.xor(), p, replace(base, scan=2), progress=_killed_after(6), checkpoint=ckpt,
                 checkpoint_seconds=0)
    resumed = train_ep(topo, datasets.xor(), p, replace(base, scan=2), progress=False, checkpoint=ckpt)
    for name in ("W", "distance", "accuracy", "W_snapshot"):
        np.testing.assert_array_equal(resumed[name].values, scanned[name].values, err_msg=name)


def test_a_learning_rate_sweep_compiles_once():
    """The learning rate is an argument of the compiled EP iteration and scan, not a constant: a second run at
    another rate compiles nothing (and trains at that rate)."""
    import jax.monitoring

    topo = T.all_to_all(5, 2, 1)
    p = xy.init_params(topo, np.random.default_rng(3), scheme="xor", n_runs=3)  # compiled for the test above
    base = EPConfig(n_iterations=4, optimizer="adam", eval_every=0)
    runs = {scan: train_ep(topo, datasets.xor(), p, replace(base, learning_rate=0.05, scan=scan), progress=False)
            for scan in (0, 2)}
    compiled = []
    listener = lambda event, duration, **kw: compiled.append(event) if event.endswith("backend_compile_duration") else 0
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        for scan, first in runs.items():
            other = train_ep(topo, datasets.xor(), p, replace(base, learning_rate=0.02, scan=scan), progress=False)
            assert not np.allclose(other.W.values, first.W.values)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert compiled == []


def test_checkpoint_of_other_settings_is_refused_naming_the_keys(tmp_path):
    """A checkpoint written under other settings is never resumed: the error names every key that differs."""
    topo = T.all_to_all(5, 2, 1)
    p = xy.init_params(topo, np.random.default_rng(3), scheme="xor", n_runs=3)  # compiled for the test above
    ckpt = tmp_path / "ep.npz"
    with pytest.raises(RuntimeError, match="killed"):
        train_ep(topo, datasets.xor(), p, EPConfig(n_iterations=6, learning_rate=0.05), progress=_killed_after(3),
                 checkpoint=ckpt, checkpoint_seconds=0)
    meta, _ = read_checkpoint(ckpt)
    assert meta["next_iteration"] == 3
    steps, elapsed = checkpoint_progress(ckpt)
    assert steps == (3, 6) and elapsed > 0
    other = EPConfig(n_iterations=6, learning_rate=0.05, seed=4, relax=RelaxOptions(shared_steps=True))
    with pytest.raises(InvalidInputError, match=r"other settings: relax\.shared_steps \(False there, True here\); "
                                                r"seed \(0 there, 4 here\)"):
        train_ep(topo, datasets.xor(), p, other, progress=False, checkpoint=ckpt)


@pytest.mark.parametrize("change, match", [
    (dict(y=np.full((4, 1), 0.3)), "target phases"),
    (dict(y=np.zeros((4, 2))), "y must have shape"),
    (dict(x=np.zeros((4, 3))), "x must have shape"),
    (dict(x=np.full((4, 2), np.nan)), "NaN"),
])
def test_bad_datasets_raise(change, match):
    topo = T.all_to_all(5, 2, 1)
    d = datasets.xor()
    bad = datasets.PhaseDataset(**{**dict(x=d.x, y=d.y, labels=d.labels, name="bad"), **change})
    p = xy.init_params(topo, np.random.default_rng(0), scheme="xor")
    with pytest.raises(InvalidInputError, match=match):
        train_ep(topo, bad, p, EPConfig(n_iterations=2), progress=False)


def test_bad_configs_and_params_raise():
    topo = T.all_to_all(5, 2, 1)
    p = xy.init_params(topo, np.random.default_rng(0), scheme="xor")
    for kwargs, match in [(dict(beta=0.0), "beta"), (dict(beta=-1.0), "beta"), (dict(learning_rate=-1), "learning_rate"),
                          (dict(optimizer="lbfgs"), "optimizer"), (dict(n_inits=0), "n_inits")]:
        with pytest.raises(InvalidInputError, match=match):
            EPConfig(**kwargs)
    W = p.W.copy()
    W[0, 0] = 1.0
    with pytest.raises(InvalidInputError, match="diagonal"):
        train_ep(topo, datasets.xor(), p._replace(W=W), EPConfig(n_iterations=2), progress=False)
    with pytest.raises(InvalidInputError, match="W must have shape"):
        train_ep(topo, datasets.xor(), xy.init_params(T.all_to_all(6, 2, 1), np.random.default_rng(0)),
                 EPConfig(n_iterations=2), progress=False)
    layered = T.layered([2, 2, 1])
    with pytest.raises(InvalidInputError, match="does not couple"):
        train_ep(layered, datasets.xor(), p, EPConfig(n_iterations=2), progress=False)


def test_encodings_and_digits_split():
    train, test = datasets.digits_paper_split()
    assert train.x.shape == (1000, 64) and test.x.shape == (700, 64)
    assert np.all(np.bincount(train.labels) == 100) and np.all(np.bincount(test.labels) == 70)
    assert train.x.min() >= -np.pi / 2 and train.x.max() <= np.pi / 2
    assert np.all(datasets.decode_classes(train.y) == train.labels)
    with pytest.raises(InvalidInputError, match="labels"):
        datasets.encode_classes(np.array([10]))
    with pytest.raises(InvalidInputError, match="pixels"):
        datasets.encode_pixels(np.array([17.0]))
    b = datasets.class_balanced_batch(train.labels, 30, np.random.default_rng(0))
    assert b.size == 300 and np.all(np.bincount(train.labels[b]) == 30)
