"""Optomechanical cells and networks: Bessel power balance vs microscopic model, locking, phase reduction
and its XY limit, adjoint gradients vs finite differences, electrostatic coupling, bad inputs. Every
integration and gradient goes through the engine interface."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pyosc import topology as T
from pyosc.engines import get_engine
from pyosc.engines.base import FinalLoss, IntegrateOptions, RelaxOptions, SteadyStateOptions
from pyosc.errors import ConvergenceError, InvalidInputError
from pyosc.models import electrostatic as es
from pyosc.models import optomech as om

ENGINE = get_engine("jax")
CELL = om.REFERENCE_CELL
MICRO = IntegrateOptions(method="dopri8", rtol=1e-9, atol=1e-9, max_steps=200_000)
AVG = IntegrateOptions(rtol=1e-10, atol=1e-10, max_steps=4096)


@pytest.fixture(scope="module")
def cycle():
    return om.limit_cycle(CELL)


@pytest.fixture(scope="module")
def table():
    return om.amplitude_table(CELL)


def test_reference_limit_cycle_numbers(cycle):
    # research/optomech_onn.md A.8: A0 = 1.9297, shift 3.49e-3, gamma = 9.00e-3, zeta = -0.44
    assert cycle.amplitude == pytest.approx(1.9297, abs=5e-5)
    assert cycle.shift == pytest.approx(3.49e-3, abs=5e-6)
    assert cycle.gamma == pytest.approx(9.00e-3, abs=5e-6)
    assert cycle.zeta == pytest.approx(-0.443, abs=1e-3)
    # gamma = Gamma (1 - nu/2), nu = dln P_rad / dln A at A0
    a = cycle.amplitude
    power = lambda x: float(om.radiation_power(x, CELL))
    nu = a * (power(a * (1 + 1e-6)) - power(a * (1 - 1e-6))) / (2e-6 * a * power(a))
    assert cycle.gamma == pytest.approx(CELL.gamma_m * (1 - nu / 2), rel=1e-6)
    # power balance at A0, and blue detuning anti-damps
    assert float(om.radiation_power(a, CELL)) == pytest.approx(float(om.friction_power(a, CELL)), rel=1e-10)
    assert om.optical_damping(CELL) < 0


def test_threshold():
    below = om.Cell(2.0, 1.0, 0.01, 0.02)
    assert -om.optical_damping(below) / below.gamma_m == pytest.approx(0.79, abs=0.01)
    assert om.limit_cycle(below).amplitude == 0.0
    p_th = om.threshold_power(2.0, 1.0, 0.01)
    assert 0.02 < p_th < 0.06
    assert om.limit_cycle(om.Cell(2.0, 1.0, 0.01, 1.05 * p_th)).amplitude > 0
    assert om.limit_cycle(om.Cell(2.0, 1.0, 0.01, 0.95 * p_th)).amplitude == 0
    with pytest.raises(InvalidInputError, match="blue detuning"):
        om.threshold_power(2.0, -1.0, 0.01, p_max=1.0)


def test_table_interpolates_the_bessel_sums(table, rng):
    s = rng.uniform(0, 30, 6)
    g, w = om.interpolate(table._asdict(), s)
    a = jnp.asarray(np.sqrt(s))
    exact_g = jax.jit(jax.vmap(om.amplitude_rate, in_axes=(0, None)))(a, CELL) / a
    exact_w = jax.jit(jax.vmap(om.frequency_shift, in_axes=(0, None)))(a, CELL)
    np.testing.assert_allclose(g, exact_g, rtol=0, atol=1e-10)
    np.testing.assert_allclose(w, exact_w, rtol=0, atol=1e-10)


SAMPLES = 512  # per period: (max - min) / 2 is then exact to A (pi / 512)^2 / 2 = 4e-5
WINDOWS = np.concatenate([200 + 2 * np.pi * np.arange(SAMPLES) / SAMPLES, 1000 + 2 * np.pi * np.arange(SAMPLES) / SAMPLES])


def _micro_single(power, amplitude):
    """Uncoupled microscopic cells started on the cycle through amplitude (frame 0); the fundamental
    c of u over one period at tau = 200 and 1000 (800 apart: the phase turns by < pi), and the states."""
    cell = om.Cell(CELL.kappa, CELL.detuning, CELL.gamma_m, power)
    p = om.micro_params(cell, np.zeros((2, 2)), np.zeros(2), np.zeros(2), frame=0.0)
    y0 = om.micro_initial_state(cell, np.full((1, 1, 2), amplitude + 0j))
    ys = ENGINE.integrate("optomech-micro", p, y0, WINDOWS, options=MICRO)[0, 0, :, 0]
    c = 2 * ys[:, 2] * np.exp(-1j * WINDOWS)  # Fourier coefficient of u at the mechanical frequency
    return c.reshape(2, SAMPLES).mean(axis=1), ys


def test_microscopic_limit_cycle_matches_bessel_balance(cycle):
    c, ys = _micro_single(CELL.power, cycle.amplitude)
    u = ys[SAMPLES:, 2]
    half_swing = (u.max() - u.min()) / 2
    assert half_swing == pytest.approx(1.9293, abs=3e-4)  # independent microscopic simulation: 1.9293
    assert half_swing == pytest.approx(cycle.amplitude, abs=1e-3)  # Bessel balance: 1.9297
    shift = np.angle(c[1] / c[0]) / 800.0
    # measured 3.468e-3 against the averaged 3.490e-3: the first-order averaging differs by 0.6 %
    assert shift == pytest.approx(cycle.shift, abs=3e-5)


def test_below_threshold_nothing_oscillates():
    below = om.Cell(2.0, 1.0, 0.01, 0.02)
    cyc = om.limit_cycle(below)
    assert cyc.amplitude == 0.0
    c, _ = _micro_single(below.power, 0.3)
    assert abs(c[1]) < 0.5 * abs(c[0])
    # small oscillations decay at the rate gamma = (1 - 0.79) Gamma / 2 of the linearised balance
    assert -np.log(abs(c[1]) / abs(c[0])) / 800.0 == pytest.approx(cyc.gamma, rel=0.05)
    # the averaged model follows the microscopic decay (nonlinear at A = 0.3)
    tab = om.amplitude_table(below, s_max=4.0, n_grid=101)
    p = om.averaged_params(tab, np.zeros((1, 1)), np.zeros(1), np.zeros(1))
    y = ENGINE.integrate("optomech-averaged", p, np.array([[[[abs(c[0]), 0.0]]]]), np.array([800.0]), options=AVG)
    assert np.hypot(*y[0, 0, -1, 0]) == pytest.approx(abs(c[1]), rel=5e-3)


@pytest.mark.parametrize("k", [2e-3, -2e-3])
def test_two_cells_lock_alike_in_both_models(cycle, table, k):
    K = np.array([[0.0, k], [k, 0.0]])
    c0 = cycle.amplitude * np.exp(1j * np.array([0.0, 1.0]))
    times = np.array([1000.0, 5000.0])
    pa = om.averaged_params(table, K, np.zeros(2), np.zeros(2), frame=cycle.shift)
    ya = ENGINE.integrate("optomech-averaged", pa, np.stack([c0.real, c0.imag], -1)[None, None], times, options=AVG)
    da = np.angle(ya[0, 0, :, 1, 0] + 1j * ya[0, 0, :, 1, 1]) - np.angle(ya[0, 0, :, 0, 0] + 1j * ya[0, 0, :, 0, 1])
    pm = om.micro_params(CELL, K, np.zeros(2), np.zeros(2), frame=cycle.shift)
    # saved at as many times as _micro_single's WINDOWS (the states at 1000 and 5000 are the last two), so that
    # the compiled microscopic integration is shared
    saved = np.concatenate([np.linspace(1.0, 999.0, WINDOWS.size - 2), times])
    ym = ENGINE.integrate("optomech-micro", pm, om.micro_initial_state(CELL, c0[None, None]), saved, options=MICRO)
    ph = np.asarray(om.micro_phase(times[:, None], ym[0, 0, -2:], pm))
    dm = ph[:, 1] - ph[:, 0]
    wrap = lambda d: np.angle(np.exp(1j * d))
    assert abs(wrap(da[0] - dm[0])) < 0.03  # mid-way (reference: -0.653 vs -0.668 at k = 1e-3)
    locked = 0.0 if cycle.zeta * k > 0 else np.pi  # J = zeta k / 2 > 0: in phase
    assert abs(wrap(da[1] - locked)) < 0.02 and abs(wrap(dm[1] - locked)) < 0.03


def test_phase_model_xy_limit_matches_xy_engine(rng):
    n = 4
    topo = T.all_to_all(n, 0, 1)
    A = rng.standard_normal((n, n)) * 0.3
    J = (A + A.T) * (1 - np.eye(n))
    h, psi = rng.uniform(0, 0.5, n), rng.uniform(-np.pi, np.pi, n)
    phi0 = rng.uniform(-np.pi, np.pi, (2, 3, n))
    times = np.linspace(0.5, 20.0, 40)
    xy_traj = ENGINE.trajectory("xy", om.xy_limit({"J": J, "h": h, "psi": psi}), phi0, topo, times,
                                options=RelaxOptions(rtol=1e-11, atol=1e-11))
    opts = IntegrateOptions(rtol=1e-11, atol=1e-11)
    limit = om.phase_params(om.LimitCycle(1.0, 0.0, 1.0, 1.0, 0.0, 2.0), 2 * J, 2 * h, psi, frame=0.0)
    limit["C"], limit["b"] = 0 * limit["C"], 0 * limit["b"]  # zeta -> infinity: the cos terms vanish
    cases = [om.phase_params(om.LimitCycle(1.0, 0.0, 1.0, zeta, 0.0, 2.0), 2 * J / zeta, 2 * h / zeta, psi, frame=0.0)
             for zeta in (1e2, 1e4)] + [limit]  # zeta K and zeta f fixed
    errors = [np.abs(ENGINE.integrate("optomech-phase", p, phi0[..., None], times, options=opts)[..., 0] - xy_traj).max()
              for p in cases]
    assert errors[2] < 1e-8
    assert 50 < errors[0] / errors[1] < 200  # O(1/zeta) convergence to the XY dynamics
    assert errors[1] < 1e-2


def test_phase_reduction_follows_averaged_network(cycle, table, rng):
    n = 5
    A = rng.uniform(-1, 1, (n, n)) * 4e-4
    K = (A + A.T) * (1 - np.eye(n))
    f, psi = rng.uniform(0, 5e-4, n), rng.uniform(-np.pi, np.pi, n)
    assert om.weak_coupling_ratio(cycle, K, f) < 0.15
    phi0 = rng.uniform(-np.pi, np.pi, (1, 2, n))
    times = np.linspace(100.0, 3000.0, 30)
    ya = ENGINE.integrate("optomech-averaged", om.averaged_params(table, K, f, psi, frame=cycle.shift),
                          cycle.amplitude * np.stack([np.cos(phi0), np.sin(phi0)], -1), times, options=AVG)
    yp = ENGINE.integrate("optomech-phase", om.phase_params(cycle, K, f, psi), phi0[..., None], times, options=AVG)
    diff = np.angle(np.exp(1j * (np.arctan2(ya[..., 1], ya[..., 0]) - yp[..., 0])))
    moved = np.angle(np.exp(1j * (yp[..., -1, :, 0] - phi0)))
    assert np.abs(moved).max() > 0.3  # the phases do move
    assert np.abs(diff).max() < 0.1 * np.abs(moved).max()


def _fd_check(model, params, y0, t1, targets, names, options, rel, inputs=None, outputs=(-1,), kind="distance"):
    """Adjoint gradient vs central differences of the same loss, from forward integrations (engine.integrate)."""
    loss, grad = ENGINE.final_state_loss_and_grad(model, params, y0, t1, FinalLoss(targets, outputs, kind),
                                                  inputs=inputs, options=options)

    def value(p):
        y1 = ENGINE.integrate(model, p, y0, [t1], inputs=inputs, options=options)[..., -1, :, :]
        d = np.asarray(om.DYNAMICS[model].phase(t1, y1, p))[..., list(outputs)] - targets[:, None, :]
        cost = 0.5 * np.mean(1 - np.cos(d), axis=-1) if kind == "distance" else -np.sum(np.log1p(np.cos(d)), axis=-1)
        return float(np.mean(cost))

    assert value(params) == pytest.approx(float(loss), rel=1e-9)
    for name, idx, step in names:
        plus, minus = {k: np.array(v) for k, v in params.items()}, {k: np.array(v) for k, v in params.items()}
        pair = name in ("K", "J", "C")  # symmetric matrices: perturb the pair
        for p, sgn in ((plus, 1), (minus, -1)):
            p[name][idx] += sgn * step
            if pair:
                p[name][idx[::-1]] += sgn * step
        fd = (value(plus) - value(minus)) / (2 * step)
        g = grad[name][idx] + (grad[name][idx[::-1]] if pair else 0.0)
        assert g == pytest.approx(fd, rel=rel), (name, idx, g, fd)
    return loss, grad


# The averaged-model tests below share one network shape, inputs and loss (the log cost of unit 4): 5 cells,
# 2 samples x 2 initial states, so that the adjoint program is compiled once for all of them.
N_AVG = 5
X_AVG = np.array([[np.pi / 2, -np.pi / 2], [np.pi / 2, np.pi / 2]])
TARGETS_AVG = np.array([[np.pi / 2], [-np.pi / 2]])
LOSS_AVG = FinalLoss(TARGETS_AVG, outputs=(4,), kind="log")


def test_adjoint_gradient_averaged_model_matches_finite_differences(cycle, table, rng):
    n = N_AVG
    A = rng.uniform(-1, 1, (n, n)) * 3e-3
    K = (A + A.T) * (1 - np.eye(n))
    p = om.averaged_params(table, K, rng.uniform(0, 3e-3, n), rng.uniform(-np.pi, np.pi, n), f_in=1e-2,
                           frame=cycle.shift)
    phi0 = rng.uniform(-np.pi, np.pi, (2, 2, n))
    y0 = cycle.amplitude * np.stack([np.cos(phi0), np.sin(phi0)], -1)
    names = [("K", (0, 4), 1e-6), ("K", (2, 3), 1e-6), ("f", (3,), 1e-6), ("psi", (4,), 1e-5), ("f_in", (), 1e-6)]
    loss, _ = _fd_check("optomech-averaged", p, y0, 3000.0, TARGETS_AVG, names, AVG, 1e-5, inputs=X_AVG,
                        outputs=LOSS_AVG.outputs, kind=LOSS_AVG.kind)
    assert -np.log(2) < loss < np.inf  # the log cost's range (-log 2: every output on its target)
    # (a stiff integrator's gradient is checked by pyosc.testing.check_gradients_match_finite_differences)


def test_adjoint_gradient_microscopic_model_matches_finite_differences(cycle):
    K = np.array([[0.0, 2e-3], [2e-3, 0.0]])
    p = om.micro_params(CELL, K, np.array([0.0, 2e-3]), np.array([0.0, 1.0]))
    y0 = om.micro_initial_state(CELL, cycle.amplitude * np.exp(1j * np.array([[[0.0, 1.5]]])))
    t1 = 100 * 2 * np.pi  # 100 mechanical periods
    names = [("K", (0, 1), 1e-6), ("psi", (1,), 1e-5), ("power", (), 1e-7)]
    opts = IntegrateOptions(method="dopri8", rtol=1e-11, atol=1e-11, max_steps=20_000)
    _fd_check("optomech-micro", p, y0, t1, np.array([[0.3]]), names, opts, 1e-4)


@pytest.mark.parametrize("model", ["optomech-averaged", "optomech-phase"])
def test_steady_state_gradient_matches_finite_differences_and_long_dynamics(cycle, table, rng, model):
    n = N_AVG
    A = rng.uniform(-1, 1, (n, n)) * 3e-3
    K = (A + A.T) * (1 - np.eye(n))
    f, psi = rng.uniform(0, 1e-2, n), rng.uniform(-np.pi, np.pi, n)
    if model == "optomech-averaged":
        p = om.averaged_params(table, K, f, psi, f_in=2e-2, frame=cycle.shift)
        phi0 = rng.uniform(-np.pi, np.pi, (2, 2, n))
        y0 = cycle.amplitude * np.stack([np.cos(phi0), np.sin(phi0)], -1)
    else:
        p = om.phase_params(cycle, K, f, psi, f_in=2e-2)
        y0 = rng.uniform(-np.pi, np.pi, (2, 2, n, 1))
    x, spec = X_AVG, LOSS_AVG
    opts = SteadyStateOptions(tol=1e-12)
    loss, grad, ok = ENGINE.steady_state_loss_and_grad(model, p, y0, spec, inputs=x, options=opts)
    assert ok.shape == (2, 2) and ok.all()
    value = lambda q: float(ENGINE.steady_state_loss_and_grad(model, q, y0, spec, inputs=x, options=opts)[0])
    names = [("K", (0, 4)), ("K", (2, 3)), ("f", (3,)), ("psi", (4,))] if model == "optomech-averaged" else \
        [("J", (0, 4)), ("C", (2, 3)), ("h", (3,)), ("psi", (4,))]
    for name, idx in names:
        step = 1e-6 if name != "psi" else 1e-5
        plus, minus = {k: np.array(v) for k, v in p.items()}, {k: np.array(v) for k, v in p.items()}
        for q, sgn in ((plus, 1), (minus, -1)):
            q[name][idx] += sgn * step
            if len(idx) == 2:
                q[name][idx[::-1]] += sgn * step
        fd = (value(plus) - value(minus)) / (2 * step)
        g = grad[name][idx] + (grad[name][idx[::-1]] if len(idx) == 2 else 0.0)
        assert g == pytest.approx(fd, rel=1e-5, abs=1e-8 * np.abs(grad[name]).max()), (name, idx, g, fd)
    # the dynamics, integrated long enough, settle on the same states and give the same loss
    dyn_loss, _ = ENGINE.final_state_loss_and_grad(model, p, y0, 6e4, spec, inputs=x, options=AVG)
    assert float(dyn_loss) == pytest.approx(float(loss), rel=1e-6)


def test_steady_state_rejects_time_dependent_models(cycle):
    p = om.micro_params(CELL, np.zeros((2, 2)), np.zeros(2), np.zeros(2))
    y0 = om.micro_initial_state(CELL, cycle.amplitude * np.ones((1, 1, 2)))
    with pytest.raises(InvalidInputError, match="no steady states"):
        ENGINE.steady_state_loss_and_grad("optomech-micro", p, y0, FinalLoss(np.zeros((1, 1))))


def test_engine_method_and_runs_axis(cycle, table, rng):
    n = N_AVG  # each run alone: the shapes and loss of the adjoint test (compiled once)
    K = np.stack([np.full((n, n), k) * (1 - np.eye(n)) for k in (1e-3, -1e-3)])
    base = om.averaged_params(table, K[0], np.zeros(n), np.zeros(n), frame=cycle.shift)
    p = {k: np.stack([v, v]) for k, v in base.items()}
    p["K"] = K
    phi0 = rng.uniform(-np.pi, np.pi, (2, 2, 2, n))
    y0 = cycle.amplitude * np.stack([np.cos(phi0), np.sin(phi0)], -1)
    loss, grad = ENGINE.final_state_loss_and_grad("optomech-averaged", p, y0, 500.0, LOSS_AVG, inputs=X_AVG,
                                                  options=AVG)
    assert loss.shape == (2,) and grad["K"].shape == (2, n, n) and "growth" not in grad
    for r in range(2):
        one = {k: v[r] for k, v in p.items()}
        l1, g1 = ENGINE.final_state_loss_and_grad("optomech-averaged", one, y0[r], 500.0, LOSS_AVG, inputs=X_AVG,
                                                  options=AVG)
        assert l1 == pytest.approx(loss[r], rel=1e-12)
        np.testing.assert_allclose(g1["K"], grad["K"][r], rtol=1e-10, atol=1e-14)


def test_electrostatic_coupling_geometry():
    drum = es.SIN_PRESETS["sin-50nm"]
    assert drum.frequency == pytest.approx(14.5e6, rel=0.01)
    assert drum.mass == pytest.approx(6e-14, rel=0.2)
    cap = es.Capacitor()
    assert cap.stiffness_per_volt2 == pytest.approx(0.05, rel=0.02)
    V = np.array([[0, 0.2, 0.1], [0.2, 0, 0.3], [0.1, 0.3, 0]])
    K = es.coupling_matrix(V, cap)
    assert np.all(K[~np.eye(3, dtype=bool)] < 0)  # face-to-face plates: negative coupling
    np.testing.assert_allclose(np.diag(K), -K.sum(1) + np.diag(K))  # softening = sum of |K_jk|
    assert es.coupling_matrix(2 * V, cap)[0, 1] == pytest.approx(4 * K[0, 1])  # V^2 law
    signs = np.array([[1, 1, -1], [1, 1, 1], [-1, 1, 1]])
    assert es.coupling_matrix(V, cap, signs)[0, 1] == pytest.approx(-K[0, 1])
    assert np.all(es.frequency_softening(K, drum) < 0)
    gamma = 1 / drum.Q
    vmax = es.max_voltage(drum, gamma, cap, n_neighbours=2)
    Kmax = es.coupling_matrix(vmax * (1 - np.eye(3)), cap)
    assert es.weak_coupling_ratio(Kmax, drum, gamma) == pytest.approx(0.1, rel=1e-9)
    assert 0.05 < vmax < 1.0  # research note A.7: V below ~0.1-0.5 V keeps the coupling weak


def test_bad_inputs_are_reported(table):
    p = om.averaged_params(table, np.zeros((2, 2)), np.zeros(2), np.zeros(2))
    y0 = np.ones((1, 1, 2, 2))
    with pytest.raises(InvalidInputError, match="unknown model"):
        ENGINE.integrate("optomech-nope", p, y0, [1.0])
    with pytest.raises(InvalidInputError, match="state axis"):
        ENGINE.integrate("optomech-averaged", p, np.ones((1, 1, 2, 4)), [1.0])
    with pytest.raises(InvalidInputError, match="missing"):
        ENGINE.integrate("optomech-averaged", {k: v for k, v in p.items() if k != "K"}, y0, [1.0])
    with pytest.raises(InvalidInputError, match="symmetric"):
        ENGINE.integrate("optomech-averaged", {**p, "K": np.array([[0, 1e-3], [0, 0]])}, y0, [1.0])
    with pytest.raises(InvalidInputError, match="times"):
        ENGINE.integrate("optomech-averaged", p, y0, [2.0, 1.0])
    with pytest.raises(InvalidInputError, match="inputs"):
        ENGINE.integrate("optomech-averaged", p, y0, [1.0], inputs=np.zeros((1, 3)))
    with pytest.raises(InvalidInputError, match="method"):
        IntegrateOptions(method="euler")
    with pytest.raises(InvalidInputError, match="dynamics model"):
        ENGINE.relax("optomech-averaged", p, y0, T.all_to_all(2, 0, 1))
    with pytest.raises(InvalidInputError, match="energy model"):
        ENGINE.integrate("xy", p, y0, [1.0])
    with pytest.raises(InvalidInputError, match="one column per output"):
        FinalLoss(np.zeros((2, 2)), outputs=(1,))
    with pytest.raises(InvalidInputError, match="kappa"):
        om.limit_cycle(om.Cell(-1.0, 1.0, 0.01, 0.06))
    with pytest.raises(InvalidInputError, match="voltages"):
        es.coupling_matrix(np.ones((2, 2)))
    with pytest.raises(ConvergenceError):
        ENGINE.integrate("optomech-averaged", p, y0, [1e5], options=IntegrateOptions(max_steps=2))


def test_xor_cli_writes_history(tmp_path):
    from pyosc.cli import main
    from pyosc.experiments import optomech_xor as ad
    from pyosc.results import read_netcdf

    out = tmp_path / "xor.nc"
    assert main(["train", "optomech-xor", "--model", "optomech-phase", "--n-runs", "2", "--n-iterations", "3",
                 "--n-inits", "1", "--eval-every", "0", "--t1", "500", "--quiet", "--out", str(out)]) == 0
    ds = read_netcdf(out)
    assert ds.loss.dims == ("run", "iteration") and ds.loss.shape == (2, 3)
    assert np.all(np.isfinite(ds.loss.values))
    assert ds.attrs["config"]["model"] == "optomech-phase" and ds.attrs["trainer"] == "adjoint"
    K = ds.K.values
    assert np.allclose(K, np.swapaxes(K, -1, -2)) and np.all(np.abs(K) <= ds.attrs["config"]["k_max"])
    assert np.all(ad.robustness(ds, 0.3, n_trials=2) >= 0)
    assert ad.phase_map(ds, n_grid=3, n_inits=1).shape == (2, 3, 3, 1)
    with pytest.raises(InvalidInputError, match="sign"):
        ad.Config(sign="sideways")
