"""Phase reduction of the Van der Pol circuit: limit cycle, PRC normalisation, H, circuit vs phase model."""
import numpy as np
import pytest

from pyosc import topology as T
from pyosc.engines import get_engine
from pyosc.engines.base import RelaxOptions
from pyosc.errors import InvalidInputError
from pyosc.models import onn, vdp
from pyosc.models import phase_reduction as pr


@pytest.fixture(scope="module")
def cycles():
    return {a: pr.periodic_orbit(vdp.VdPCircuit(a=a, b=a / 3)) for a in (0.1, 1.0, 3.0)}


def test_limit_cycle_period_and_prc_normalisation(cycles):
    # near-harmonic Van der Pol (eps = 0.1): T = 2 pi (1 + eps^2 / 16), amplitude 2
    c = cycles[0.1]
    assert c.period == pytest.approx(2 * np.pi * (1 + 0.1 ** 2 / 16), rel=2e-5)
    assert np.max(np.abs(c.x[:, 0])) == pytest.approx(2.0, rel=1e-3)
    # relaxation regime (eps = 3): the known period 8.8591 of the Van der Pol equation with mu = 3
    assert cycles[3.0].period == pytest.approx(8.8591, abs=2e-4)
    for cyc in cycles.values():
        # normalised at one number (the mean) but constant along the cycle only for the true periodic adjoint
        np.testing.assert_allclose(cyc.normalisation, 1.0, atol=1e-6)
        assert cyc.floquet_exponent < 0
        np.testing.assert_allclose(cyc.x[0], [0.0, cyc.x[0, 1]])
        assert cyc.x[1, 0] > 0  # the phase origin is an upward zero crossing of v


def test_coupling_function_shape(cycles):
    weak = pr.reduce_coupling(cycles[0.1], 5)
    # Kuramoto limit: H(x) ~ sin(x) / (2C) for resistive coupling, in-phase attraction
    assert weak.H.sin[0] == pytest.approx(0.5, rel=1e-3)
    for red in (weak, pr.reduce_coupling(cycles[3.0], 300)):  # 300 harmonics: no truncation error
        # half-wave symmetry of the Van der Pol cycle: no even harmonics (n = 0, 2, 4, ...) in H
        assert np.all(np.abs(red.H.sin[1::2]) < 1e-8) and np.all(np.abs(red.H.cos[0::2]) < 1e-8)
        # no current flows between in-phase nodes: H(0) + load = 0
        assert red.H(0.0) + red.load == pytest.approx(0.0, abs=1e-8)
    strong = pr.reduce_coupling(cycles[3.0], 7)
    assert strong.H.even_fraction > 0.1 and abs(strong.H.sin[4]) > 0.01  # relaxation regime: lag and harmonics


def test_two_oscillators_circuit_and_phase_model_relax_together(cycles):
    """G = 0.005 << the contraction rate: the phase differences agree within 2 % (here ~0.3 %)."""
    cyc = cycles[1.0]
    red = pr.reduce_coupling(cyc, 7)
    G = 0.005
    phi0 = np.array([0.0, 1.0])
    times = np.linspace(0.0, 400.0, 41)
    run = pr.simulate_circuit(cyc.circuit, np.array([[0, G], [G, 0]]), cyc.state_at(phi0), times)
    circuit = pr.circuit_phases(run, cyc, phi0)
    params = onn.make_params(G * np.array([[0.0, 1.0], [1.0, 0.0]]), red.H, omega=red.load * G)
    model = get_engine().trajectory("onn", params, phi0[None, None], T.all_to_all(2, 0, 1), times,
                                    options=RelaxOptions(rtol=1e-10, atol=1e-10))[0, 0]
    ok = np.all(np.isfinite(circuit), axis=-1) & (times >= 50)
    assert ok.sum() >= 30
    d_circuit = circuit[ok, 1] - circuit[ok, 0]
    d_model = model[ok, 1] - model[ok, 0]
    assert d_model[-1] < 0.3 * d_model[0]  # the difference really relaxes over the window
    np.testing.assert_array_less(np.abs(d_circuit - d_model), 0.02 * np.abs(d_model))
    # each phase, drift from the memristor load and the even part of H included
    np.testing.assert_allclose(circuit[ok], model[ok], atol=0.02)


def test_bad_circuit_inputs_raise(cycles):
    with pytest.raises(InvalidInputError, match="a must be"):
        vdp.VdPCircuit(a=-0.1)
    with pytest.raises(InvalidInputError, match="symmetric"):
        vdp.check_conductances([[0, 1e-3], [2e-3, 0]])
    with pytest.raises(InvalidInputError, match="diagonal"):
        vdp.check_conductances([[1e-3, 0], [0, 0]])
    with pytest.raises(InvalidInputError, match="n_samples"):
        pr.periodic_orbit(vdp.VdPCircuit(), n_samples=10)
    with pytest.raises(InvalidInputError, match="n_harmonics"):
        pr.reduce_coupling(cycles[0.1], 0)
    with pytest.raises(InvalidInputError, match="x0 must have shape"):
        pr.simulate_circuit(vdp.VdPCircuit(), np.zeros((2, 2)), np.zeros((3, 2)), [1.0])
    with pytest.raises(InvalidInputError, match="times"):
        pr.simulate_circuit(vdp.VdPCircuit(), np.zeros((2, 2)), np.zeros((2, 2)), [2.0, 1.0])
    with pytest.raises(InvalidInputError, match="g_off < g_on"):
        vdp.memristor_conductance(0.5, g_on=1e-3, g_off=2e-3)
    with pytest.raises(InvalidInputError, match="state"):
        vdp.memristor_conductance(1.5, g_on=2e-3, g_off=1e-3)
