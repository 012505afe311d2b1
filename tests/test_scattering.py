"""Linear wave-scattering networks: physics invariants, gradients, solvers, data and training."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pyosc.data.detunings import replicate_inputs
from pyosc.engines.scattering import choose_method, green_columns, layered_green_columns
from pyosc.errors import InvalidInputError, PyoscError
from pyosc.models.scattering import (
    CoupledModeNetwork,
    LayeredNetwork,
    Readout,
    UnstableNetworkError,
    single_mode_s,
)
from pyosc.training.green import (
    TrainConfig,
    layered_loss_and_gradient,
    layered_outputs,
    network_loss_and_gradient,
    paper_initialisation,
    train_network,
)
from pyosc.training.loop import TrainingInterrupted

DATA_HOME = Path(os.environ.get("PYOSC_DATA_HOME", Path(__file__).resolve().parents[2] / "shared" / "data"))
METHODS = ["dense", "sparse-lu"]


def random_network(rng, n=10, n_edges=18, kappa_int=0.0, n_inputs=3, waveguides=None):
    pairs = set()
    while len(pairs) < n_edges:
        k, l_ = rng.choice(n, 2, replace=False)
        pairs.add((min(k, l_), max(k, l_)))
    edges = np.array(sorted(pairs))
    kext = rng.uniform(0.3, 1.0, n) if waveguides is None else np.where(waveguides, rng.uniform(0.3, 1.0, n), 0.0)
    return CoupledModeNetwork(rng.normal(size=n), edges, rng.normal(size=len(edges)), kext, kappa_int,
                              input_sites=np.arange(n_inputs))


def full_s(network, x=None, method="dense", omega=0.0):
    g = green_columns(network, np.arange(network.n_modes), x, method=method, omega=omega)
    sk = np.sqrt(network.kappa_ext)
    return np.eye(network.n_modes) + sk[:, None] * g * sk[None, :]


def rel_err(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


# --- physics ------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_lossless_network_is_unitary(method):
    rng = np.random.default_rng(0)
    net = random_network(rng)
    for omega in (0.0, 0.7):
        s = full_s(net, rng.normal(size=(2, 3)), method, omega)
        assert np.max(np.abs(np.conj(np.swapaxes(s, 1, 2)) @ s - np.eye(net.n_modes))) < 1e-10
    # ports only on some modes: S restricted to the ports is still unitary
    ports = np.arange(10) % 3 != 0
    s = full_s(random_network(rng, waveguides=ports), method=method)[0][np.ix_(ports, ports)]
    assert np.max(np.abs(s.conj().T @ s - np.eye(ports.sum()))) < 1e-10
    # intrinsic loss breaks unitarity
    s = full_s(random_network(rng, kappa_int=0.2), method=method)[0]
    assert np.max(np.abs(s.conj().T @ s - np.eye(10))) > 1e-3


def test_single_mode_matches_closed_form():
    for delta, ke, ki, omega in [(0.3, 0.5, 0.0, 0.0), (-1.2, 0.5, 0.1, 0.4), (0.0, 1.0, 0.0, 0.0)]:
        net = CoupledModeNetwork([delta], None, [], ke, ki)
        s = 1 + ke * green_columns(net, [0], omega=omega)[0, 0, 0]
        assert abs(s - single_mode_s(delta, ke, ki, omega)) < 1e-14
        assert abs(s - (1 + ke / (1j * (omega - delta) - (ke + ki) / 2))) < 1e-14
    assert abs(single_mode_s(0.0, 0.5) + 1) < 1e-15  # lossless resonance reflects with a pi phase
    d = np.linspace(-3, 3, 7)
    np.testing.assert_allclose(single_mode_s(d, 0.5).imag, 0.5 * d / (d ** 2 + 0.0625), rtol=1e-13)


def test_replication_is_consecutive():
    np.testing.assert_array_equal(replicate_inputs([[1.0, 2.0]], 2), [[1.0, 1.0, 2.0, 2.0]])


# --- gradients ------------------------------------------------------------------------------------

def fd_gradient(f, value, h=1e-6):
    out = np.zeros_like(value)
    for i in np.ndindex(value.shape):
        vp, vm = value.copy(), value.copy()
        vp[i] += h
        vm[i] -= h
        out[i] = (f(vp) - f(vm)) / (2 * h)
    return out


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("form", ["green", "measured"])
@pytest.mark.parametrize("scheme", ["diagonal", "probe"])
@pytest.mark.parametrize("loss", ["cross-entropy", "mse"])
def test_network_gradients_match_finite_differences(method, form, scheme, loss):
    rng = np.random.default_rng(1)
    net = random_network(rng, kappa_int=0.05)
    readout = Readout.diagonal([7, 8, 9]) if scheme == "diagonal" else Readout.probe(6, [7, 8, 9], phase=0.3)
    x, labels = rng.normal(size=(3, 3)), np.array([0, 2, 1])

    def cost(**kw):
        return network_loss_and_gradient(net.replace(**kw), x, labels, readout, loss=loss, method=method)[0]

    _, _, grads = network_loss_and_gradient(net, x, labels, readout, loss=loss, method=method, form=form)
    assert rel_err(grads["detuning"], fd_gradient(lambda v: cost(detuning=v), net.detuning)) < 1e-6
    assert rel_err(grads["coupling"], fd_gradient(lambda v: cost(coupling=v), net.coupling)) < 1e-6


def test_measured_form_needs_waveguides():
    rng = np.random.default_rng(2)
    net = random_network(rng, waveguides=np.arange(10) != 4)
    with pytest.raises(InvalidInputError, match="waveguide"):
        network_loss_and_gradient(net, rng.normal(size=(1, 3)), [0], Readout.diagonal([7, 8]), form="measured")


@pytest.mark.parametrize("scheme", ["diagonal", "probe"])
def test_layered_gradients_match_finite_differences(scheme):
    rng = np.random.default_rng(3)
    net = paper_initialisation([6, 5, 4, 3], rng)
    net = net.with_parameters({"coupling_0": rng.normal(size=(6, 5)), "detuning_2": rng.normal(size=4)})
    readout = None if scheme == "diagonal" else Readout.probe(0, [0, 1, 2], phase=1.1)
    x, labels = rng.normal(size=(4, 6)), np.array([0, 1, 2, 1])
    _, _, grads = layered_loss_and_gradient(net, x, labels, readout)
    for name, value in net.parameters().items():
        fd = fd_gradient(lambda v, name=name: layered_loss_and_gradient(net.with_parameters({name: v}), x, labels,
                                                             readout)[0], value)
        assert rel_err(grads[name], fd) < 1e-6, name


# --- solvers --------------------------------------------------------------------------------------

def test_layered_recursion_equals_full_sparse_solve():
    rng = np.random.default_rng(4)
    net = LayeredNetwork([rng.normal(size=7), rng.normal(size=6), rng.normal(size=5), rng.normal(size=4)],
                         [rng.normal(size=(7, 6)), rng.normal(size=(6, 5)), rng.normal(size=(5, 4))],
                         kappa_ext=[rng.uniform(0.2, 1, 7), 0.0, 0.3, rng.uniform(0.2, 1, 4)], kappa_int=0.05)
    x = rng.normal(size=(3, 7))
    xs = layered_green_columns(net, x, omega=0.2)
    off = net.offsets()
    full = green_columns(net.to_network(), np.arange(off[-2], off[-1]), x, omega=0.2, method="sparse-lu")
    for n, xn in enumerate(xs):
        assert np.max(np.abs(full[:, off[n]:off[n + 1]] - xn)) < 1e-12
    top = layered_green_columns(net, x, omega=0.2, all_layers=False)
    assert len(top) == 1 and np.max(np.abs(top[0] - xs[-1])) == 0


def test_solver_choice_and_override():
    rng = np.random.default_rng(5)
    small = random_network(rng)
    assert choose_method(small, 10) == "dense"
    n = 1000
    big = CoupledModeNetwork(np.zeros(n), np.stack([np.arange(n - 1), np.arange(1, n)], 1), np.ones(n - 1), 0.5)
    assert choose_method(big, 1) == "sparse-lu"
    iu = np.triu_indices(300, 1)
    dense = CoupledModeNetwork(np.zeros(300), np.stack(iu, 1)[::10], np.ones(iu[0].size)[::10], 0.5)
    assert choose_method(dense, 1) == "dense" and choose_method(dense, 10 ** 4) == "sparse-lu"
    a = green_columns(small, [1, 4], method="dense")
    b = green_columns(small, [1, 4], method="sparse-lu")
    assert np.max(np.abs(a - b)) < 1e-13
    with pytest.raises(InvalidInputError, match="method"):
        green_columns(small, [1], method="cholesky")


# --- bad input -----------------------------------------------------------------------------------

def test_bad_inputs_raise_pyosc_errors():
    e = [[0, 1]]
    with pytest.raises(InvalidInputError, match="detuning must be real"):
        CoupledModeNetwork([0.1 + 1j, 0.0], e, [1.0], 0.5)
    with pytest.raises(InvalidInputError, match="coupling must be real"):
        CoupledModeNetwork([0.1, 0.0], e, [1.0 + 0.5j], 0.5)
    with pytest.raises(InvalidInputError, match="kappa_ext.*>= 0"):
        CoupledModeNetwork([0.1, 0.0], e, [1.0], [0.5, -0.1])
    with pytest.raises(InvalidInputError, match="coupling must have shape"):
        CoupledModeNetwork([0.1, 0.0], e, [1.0, 2.0], 0.5)
    with pytest.raises(InvalidInputError, match="couplings\\[0\\] must have shape"):
        LayeredNetwork([[0.0, 1.0], [0.0]], [np.ones((3, 1))], 0.5)
    with pytest.raises(InvalidInputError, match="edges"):
        CoupledModeNetwork([0.1, 0.0], [[0, 2]], [1.0], 0.5)
    net = CoupledModeNetwork([0.1, 0.0], e, [1.0], 0.5, input_sites=[0])
    with pytest.raises(InvalidInputError, match="x_rep must have shape"):
        green_columns(net, [0], np.ones((2, 3)))
    with pytest.raises(InvalidInputError, match="x_rep must be real"):
        green_columns(net, [0], np.ones((2, 1)) * 1j)
    with pytest.raises(InvalidInputError, match="labels"):
        network_loss_and_gradient(net, np.ones((2, 1)), [0], Readout.diagonal([0, 1]))


def test_gain_without_steady_state_raises():
    # gain 0.3 on mode 0, decay 0.5 on mode 1: stable when strongly coupled, unstable when weakly coupled
    stable = CoupledModeNetwork([0.0, 0.0], [[0, 1]], [1.0], [0.0, 0.5], [-0.3, 0.0])
    assert np.all(np.isfinite(green_columns(stable, [1])))
    weak = stable.replace(coupling=[0.01])
    for method in METHODS:
        with pytest.raises(UnstableNetworkError, match="no stable steady state"):
            green_columns(weak, [1], method=method)
    layered = LayeredNetwork([[0.0], [0.0]], [[[0.01]]], kappa_ext=[0.0, 0.5], kappa_int=[-0.3, 0.0])
    with pytest.raises(PyoscError, match="no stable steady state"):
        layered_green_columns(layered, np.zeros((1, 1)))


# --- coupler modes --------------------------------------------------------------------------------

def test_coupler_elimination_is_exact_and_recipe_hits_targets():
    from pyosc.models.couplers import (
        coupler_network,
        neuron_shifts,
        racetrack_initialisation,
        self_energy,
    )

    rng = np.random.default_rng(6)
    pairs = np.array([[0, 2], [0, 3], [1, 2], [1, 3], [0, 1]])
    n, g, kc, omega = 4, 1.5, 0.2, 0.1
    det, cdet = rng.normal(size=n), rng.choice([-1, 1], 5) * rng.uniform(3, 6, 5)
    net = coupler_network(det, 0.5, 0.05, pairs, g, cdet, 0.1, 0.1)
    gfull = green_columns(net, np.arange(n), omega=omega)[0][:n]
    sigma = self_energy(g, cdet, kc, omega)
    h_eff = np.diag(det - 0.55j / 2 + neuron_shifts(n, pairs, sigma))
    h_eff[pairs[:, 0], pairs[:, 1]] += sigma
    h_eff[pairs[:, 1], pairs[:, 0]] += sigma
    assert np.max(np.abs(gfull - np.linalg.inv(1j * (omega * np.eye(n) - h_eff)))) < 1e-13

    target_j = 1 + 0.1 * rng.random(5)
    ndet, cdet = racetrack_initialisation(np.zeros(n), pairs, target_j, g=3.0, coupler_kappa=0.1)
    sigma = self_energy(3.0, cdet, 0.1)
    signs = np.where(pairs.sum(1) % 2 == 0, 1.0, -1.0)
    np.testing.assert_allclose(sigma.real, signs * target_j, rtol=1e-12)
    assert np.all(np.abs(cdet) > 10 * 0.1)  # coherent regime
    np.testing.assert_allclose(ndet + neuron_shifts(n, pairs, sigma).real, 0.0, atol=1e-12)
    assert np.max(np.abs(neuron_shifts(n, pairs, sigma).real)) < np.max(np.abs(target_j)) * 2  # signs alternate


def test_alternating_signs_leave_diagonal_outputs_unchanged():
    rng = np.random.default_rng(7)
    net = paper_initialisation([6, 5, 3], rng)
    flipped = net.with_parameters({f"coupling_{n}": j * np.where(
        (np.add.outer(np.arange(j.shape[0]) + net.offsets()[n], np.arange(j.shape[1]) + net.offsets()[n + 1])) % 2,
        -1.0, 1.0) for n, j in enumerate(net.couplings)})
    x = rng.normal(size=(4, 6))
    np.testing.assert_allclose(layered_outputs(flipped, x), layered_outputs(net, x), atol=1e-13)


def test_coupler_detuning_gradient_matches_finite_differences():
    from pyosc.models.couplers import (
        coupler_network,
        self_energy,
        self_energy_derivative,
    )

    rng = np.random.default_rng(8)
    pairs = np.array([[0, 2], [1, 2], [0, 3], [1, 3], [2, 4], [3, 4]])
    cdet0 = rng.choice([-1, 1], 6) * rng.uniform(3, 5, 6)
    net = coupler_network(rng.normal(size=5) * 0.3, 0.5, 0.0, pairs, 1.5, cdet0, 0.05, input_sites=[0, 1])
    x, labels, readout = rng.normal(size=(3, 2)), np.array([0, 1, 1]), Readout.diagonal([2, 3])
    coup = np.arange(5, 11)
    for form in ("green", "measured"):
        _, _, grads = network_loss_and_gradient(net, x, labels, readout, form=form)

        def cost(v):
            d = net.detuning.copy()
            d[coup] = v
            return network_loss_and_gradient(net.replace(detuning=d), x, labels, readout)[0]

        assert rel_err(grads["detuning"][coup], fd_gradient(cost, cdet0)) < 1e-6
    h = 1e-6
    fd = (self_energy(1.5, cdet0 + h, 0.05) - self_energy(1.5, cdet0 - h, 0.05)) / (2 * h)
    assert rel_err(self_energy_derivative(1.5, cdet0, 0.05), fd) < 1e-7
    np.testing.assert_allclose(self_energy(1.5, cdet0, 0.05).real, -1.5 ** 2 / cdet0, rtol=1e-3)


def test_racetrack_network_trains_its_coupler_detunings():
    from pyosc.models.couplers import coupler_network, racetrack_initialisation

    rng = np.random.default_rng(9)
    pairs = np.array([[0, 2], [0, 3], [1, 2], [1, 3]])
    ndet, cdet = racetrack_initialisation(np.array([2.0, -2.0, 0.0, 0.0]), pairs, 1 + 0.1 * rng.random(4), g=2.0,
                                          coupler_kappa=0.05)
    net = coupler_network(ndet, 0.5, 0.0, pairs, 2.0, cdet, 0.0, 0.05, input_sites=[0, 1])
    x = rng.uniform(-1, 1, (200, 2))
    labels = (x[:, 0] > x[:, 1]).astype(int)
    trainable = {"detuning": np.arange(net.n_modes) >= 4, "coupling": False}
    cfg = TrainConfig(n_iterations=150, batch_size=50, learning_rate=0.05, lr_scale={}, eval_every=25)
    final, _, ds = train_network(net, x, labels, x, labels, cfg, readout=Readout.diagonal([2, 3]), trainable=trainable)
    assert ds["train_loss"].values[-1] < 0.7 * ds["train_loss"].values[0]
    assert ds["test_accuracy"].values[-1] > 0.75
    np.testing.assert_array_equal(final.coupling, net.coupling)
    np.testing.assert_array_equal(final.detuning[:4], net.detuning[:4])
    assert np.max(np.abs(final.detuning[4:] - net.detuning[4:])) > 1e-2
    with pytest.raises(InvalidInputError, match="readout"):
        train_network(net, x, labels, x, labels, cfg)


# --- resistor networks ----------------------------------------------------------------------------

def test_resistor_network_matches_hand_solved_circuits():
    from pyosc.models.resistor import (
        green_function,
        laplacian,
        resistance_gradient,
        two_point_resistance,
    )

    # triangle R01 = 1, R12 = 2, R02 = 3 ohm: each pair sees one resistor in parallel with the other two in series
    tri = np.array([[0, 1], [1, 2], [0, 2]])
    r = two_point_resistance(green_function(laplacian(3, tri, 1 / np.array([1.0, 2.0, 3.0]))), tri)
    np.testing.assert_allclose(r, [1 * 5 / 6, 2 * 4 / 6, 3 * 3 / 6], rtol=1e-13)
    # balanced Wheatstone bridge A=0, B=1, C=2, D=3: no current through the 5-ohm bridge, R_AD = 3 || 3
    bridge = np.array([[0, 1], [1, 3], [0, 2], [2, 3], [1, 2]])
    cond = 1 / np.array([1.0, 2.0, 1.0, 2.0, 5.0])
    green = green_function(laplacian(4, bridge, cond))
    assert abs(two_point_resistance(green, [[0, 3]])[0] - 1.5) < 1e-13
    # gradient with respect to every conductance, for several measured pairs
    pairs = np.array([[0, 3], [1, 2], [0, 1]])
    grad = resistance_gradient(green, pairs, bridge)
    fd = np.stack([(two_point_resistance(green_function(laplacian(4, bridge, cond + h * np.eye(5)[e])), pairs)
                    - two_point_resistance(green_function(laplacian(4, bridge, cond - h * np.eye(5)[e])), pairs))
                   / (2 * h) for e in range(5) for h in [1e-6]], axis=1)
    assert rel_err(grad, fd) < 1e-6
    assert abs(grad[0, 4]) < 1e-13  # the balanced bridge resistor does not change R_AD
    with pytest.raises(InvalidInputError, match="conductance must be > 0"):
        laplacian(3, tri, [1.0, -1.0, 1.0])
    with pytest.raises(InvalidInputError, match="not connected"):
        green_function(laplacian(4, [[0, 1], [2, 3]], [1.0, 1.0]))


# --- data and training ----------------------------------------------------------------------------

def require_data(*names):
    missing = [n for n in names if not (DATA_HOME / n).exists()]
    if missing:
        pytest.skip(f"data files {missing} not found in {DATA_HOME} (set PYOSC_DATA_HOME to the shared data folder)")


def test_input_encoding_and_missing_files(tmp_path):
    from pyosc.data.detunings import encode_detunings, load_neuroscatter_params

    np.testing.assert_array_equal(encode_detunings([[0, 8, 16]]), [[5, 5, 2.5, 2.5, 0, 0]])
    with pytest.raises(InvalidInputError, match="pixels must lie"):
        encode_detunings([[0, 17]])
    with pytest.raises(FileNotFoundError, match="JJ0.csv"):
        load_neuroscatter_params(tmp_path)


def test_released_parameters_classify_optdigits():
    require_data("optdigits.tes", "neuroscatter-N2-80/JJ0.csv")
    from pyosc.data.detunings import load_optdigits_detunings
    from pyosc.experiments.scattering_digits import released_network

    net = released_network(DATA_HOME)
    assert net.sizes == (128, 80, 10)
    x, labels = load_optdigits_detunings("test", data_home=DATA_HOME)
    assert x.shape == (1797, 128)
    correct = int(np.sum(np.argmax(layered_outputs(net, x), axis=1) == labels))
    assert correct == 1738  # 96.72 %
    flipped = net.with_parameters({"detuning_0": net.detunings[0] / 2})  # the single-offset misreading
    assert np.mean(np.argmax(layered_outputs(flipped, x), axis=1) == labels) < 0.5


def test_training_learns_and_resumes_identically(tmp_path, interrupt_at):
    require_data("optdigits.tra", "optdigits.tes")
    from pyosc.data.detunings import load_optdigits_detunings
    from pyosc.results import read_netcdf, write_netcdf

    x, y = load_optdigits_detunings("train", data_home=DATA_HOME)
    xt, yt = load_optdigits_detunings("test", data_home=DATA_HOME)
    pick = np.random.default_rng(0).permutation(len(y))[:400]  # the file is grouped by class
    x, y, xt, yt = x[pick], y[pick], xt[:300], yt[:300]
    net = paper_initialisation([128, 12, 10], np.random.default_rng(0))
    cfg = TrainConfig(n_iterations=60, batch_size=100, eval_every=10)
    final, _best, ds = train_network(net, x, y, xt, yt, cfg)
    assert ds["test_accuracy"].values[-1] > 0.6
    assert ds["train_loss"].values[-1] < 0.5 * ds["train_loss"].values[0]
    ckpt = tmp_path / "run.npz"
    with pytest.raises(TrainingInterrupted):  # Ctrl-C after 25 iterations
        train_network(net, x, y, xt, yt, cfg, checkpoint=ckpt, progress=interrupt_at(25))
    resumed, _, ds2 = train_network(net, x, y, xt, yt, cfg, checkpoint=ckpt)
    for name, v in final.parameters().items():
        np.testing.assert_array_equal(resumed.parameters()[name], v)
    assert list(ds2["evaluation"].values) == [10, 20, 30, 40, 50, 60]
    for name in ("test_accuracy", "train_loss", "train_accuracy"):
        np.testing.assert_array_equal(ds2[name].values, ds[name].values)
    back = read_netcdf(write_netcdf(ds, tmp_path / "h.nc"))
    assert back.attrs["config"]["batch_size"] == 100 and back.attrs["best_iteration"] == ds.attrs["best_iteration"]
    adam_cfg = TrainConfig(n_iterations=30, batch_size=100, eval_every=10, optimizer="adam", learning_rate=0.01,
                           lr_scale={})
    adam_final, _, adam = train_network(net, x, y, xt, yt, adam_cfg)
    assert adam["train_loss"].values[-1] < 0.5 * adam["train_loss"].values[0]
    ckpt_adam = tmp_path / "adam.npz"  # Adam's moments and step count survive a restart
    with pytest.raises(TrainingInterrupted):
        train_network(net, x, y, xt, yt, adam_cfg, checkpoint=ckpt_adam, progress=interrupt_at(15))
    adam_resumed = train_network(net, x, y, xt, yt, adam_cfg, checkpoint=ckpt_adam)[0]
    for name, v in adam_final.parameters().items():
        np.testing.assert_array_equal(adam_resumed.parameters()[name], v)


def test_classifier_and_cli(tmp_path):
    require_data("optdigits.tra", "optdigits.tes")
    from sklearn.base import clone

    from pyosc.cli import main
    from pyosc.data.datasets import load_optdigits
    from pyosc.estimators import ScatteringClassifier
    from pyosc.results import read_netcdf

    px, y = load_optdigits("train", DATA_HOME)
    pt, yt = load_optdigits("test", DATA_HOME)
    clf = ScatteringClassifier(hidden=0, n_iterations=100, batch_size=100, random_state=0)
    assert clone(clf).get_params() == clf.get_params()
    pick = np.random.default_rng(0).permutation(len(y))[:600]
    assert clf.fit(px[pick], y[pick]).score(pt[:300], yt[:300]) > 0.7
    assert set(clf.predict(pt[:20])) <= set(range(10))
    with pytest.raises(InvalidInputError, match="pixels must lie"):
        clf.predict(pt[:5] + 20)
    with pytest.raises(InvalidInputError, match="features"):
        clf.predict(pt[:5, :32])

    out = tmp_path / "run.nc"
    assert main(["train", "scattering-digits", "--hidden", "0", "--n-iterations", "20", "--eval-every", "10",
                 "--data-home", str(DATA_HOME), "--out", str(out), "--quiet"]) == 0
    ds = read_netcdf(out)
    assert ds.sizes["evaluation"] == 2 and ds.attrs["config"]["hidden"] == 0
