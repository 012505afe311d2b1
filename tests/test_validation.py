"""Issue 15, validation half: every public boundary refuses bad input with a pyosc error that names the argument.

Each ``test_defect_*`` reproduces one defect of the issue (it failed before the fix); the ``test_property_*`` tests
throw generated input at the public entry points (hypothesis, derandomized): any input either gives finite, flagged
results or raises a :class:`~pyosc.errors.PyoscError`, never a raw exception.
"""
import math
import re

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyosc import topology as T
from pyosc.data import datasets, detunings, patterns
from pyosc.errors import DataNotFoundError, InvalidInputError, PyoscError
from pyosc.experiments import digits, mnist, onn_memory, optomech_xor, scattering_digits, xor
from pyosc.training.green import TrainConfig, layered_outputs, outputs, paper_initialisation, train_network
from pyosc.training.optimizers import make_optimizer

FAST = settings(max_examples=40, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
NAN, INF = float("nan"), float("inf")
CONFIGS = (xor.Config, digits.Config, onn_memory.Config, scattering_digits.Config, optomech_xor.Config,
           mnist.Config)


# --- the defects of the issue ----------------------------------------------------------------------

def test_defect_layered_takes_fractional_sizes():
    with pytest.raises(InvalidInputError, match=r"layer size must be an integer >= 1, got 3\.5"):
        T.layered([2, 3.5, 1])
    with pytest.raises(InvalidInputError, match="layer size"):
        paper_initialisation([2, 3.5, 1], np.random.default_rng(0))


def test_defect_negative_hidden_size_in_an_architecture():
    with pytest.raises(InvalidInputError, match="layer size must be an integer >= 1, got -1"):
        digits.Config(arch="layered:64,-1,10")
    with pytest.raises(InvalidInputError, match=r"hidden must be an integer in \[0, 10000\], got -1"):
        scattering_digits.Config(hidden=-1)


def test_defect_negative_batch_size_gives_empty_output():
    net = paper_initialisation([2, 2], np.random.default_rng(0))
    for bad in (-1, 0, 2.5, True):
        with pytest.raises(InvalidInputError, match="batch_size must be an integer >= 1"):
            layered_outputs(net, np.ones((3, 2)), batch_size=bad)
        with pytest.raises(InvalidInputError, match="batch_size"):
            outputs(net, np.ones((3, 2)), batch_size=bad)


def test_defect_unknown_learning_rate_key_is_ignored():
    opt = make_optimizer("sgd", 0.1, {"detunig_0": 2.0})
    with pytest.raises(InvalidInputError, match="detunig_0.*detuning_0"):
        opt.init({"detuning_0": np.zeros(2), "coupling_0": np.zeros((2, 2))})
    with pytest.raises(InvalidInputError, match="detunig_0"):
        make_optimizer("adam", 0.1, {"detunig_0": 2.0}).init({"detuning_0": np.zeros(2)})
    net = paper_initialisation([2, 2], np.random.default_rng(0))
    x, y = np.ones((4, 2)), np.array([0, 1, 0, 1])
    config = TrainConfig(n_iterations=1, batch_size=2, lr_scale={"detunig_0": 2.0})
    with pytest.raises(InvalidInputError, match="detunig_0"):
        train_network(net, x, y, x, y, config)


@pytest.mark.parametrize("config, key, value", [
    (xor.Config, "n_runs", 0), (xor.Config, "n_units", 2), (xor.Config, "n_units", 10**9),
    (xor.Config, "seed", -1), (xor.Config, "seed", 2**64), (xor.Config, "n_iterations", 2.5),
    (xor.Config, "n_iterations", True), (xor.Config, "learning_rate", NAN), (xor.Config, "tol", INF),
    (digits.Config, "snapshots", (1, -2)), (digits.Config, "batch_per_class", 0),
    (onn_memory.Config, "harmonics", 1000), (onn_memory.Config, "nonlinearity", 100.0),
    (onn_memory.Config, "shil", -0.1), (onn_memory.Config, "beta", True),
    (scattering_digits.Config, "batch_size", -1), (scattering_digits.Config, "batch_size", 5000),
    (scattering_digits.Config, "kappa", 0), (optomech_xor.Config, "stall_tol", 1.0),
    (optomech_xor.Config, "samples", 4.0),
])
def test_defect_config_values_checked_when_made(config, key, value):
    """Study files build their Configs when they are loaded, so these refusals happen before any point runs."""
    with pytest.raises(InvalidInputError, match=f"^{key} must be"):
        config(**{key: value})


def test_config_integers_for_floats_record_as_floats():
    assert xor.Config(learning_rate=1).learning_rate == 1.0 and isinstance(xor.Config(learning_rate=1).learning_rate,
                                                                         float)
    assert digits.Config(snapshots=[0, 5]).snapshots == (0, 5)


def test_defect_missing_data_home_hint(tmp_path):
    for call in (lambda: datasets.load_optdigits("train", tmp_path / "nowhere"),
                 lambda: detunings.load_neuroscatter_params(tmp_path)):
        with pytest.raises(DataNotFoundError) as info:
            call()
        text = str(info.value)
        assert "--data-home" in text and "PYOSC_DATA_HOME" in text and "data_home=" in text
        assert isinstance(info.value, FileNotFoundError)


def test_defect_internal_names_leak_into_messages():
    with pytest.raises(PyoscError) as info:
        onn_memory.coupling_from_circuit(INF, 5)
    assert "nonlinearity" in str(info.value) and not re.search(r"\ba must\b", str(info.value))
    with pytest.raises(InvalidInputError, match="^nonlinearity must be"):
        onn_memory.Config(nonlinearity=1e6)


def test_defect_complex_inputs_lose_their_imaginary_part():
    with pytest.raises(InvalidInputError, match="pixels must be real"):
        datasets.encode_pixels(np.array([1.0 + 1.0j]))
    with pytest.raises(InvalidInputError, match="states must be real"):
        patterns.to_phases(np.array([[1.0 + 1.0j, -1.0]]))
    with pytest.raises(InvalidInputError, match="labels must be integer"):
        datasets.encode_classes(np.array([0, 1j]), 2)


def test_defect_nan_or_fractional_labels_become_classes():
    for labels in ([0, NAN], [0.5, 1.0], [0.3, 0.7]):
        with pytest.raises(InvalidInputError, match="labels must be integer class indices"):
            datasets.encode_classes(np.array(labels), 3)
    assert datasets.encode_classes(np.array([0.0, 2.0]), 3).shape == (2, 3)  # integral floats are class indices


def test_defect_empty_training_data():
    net = paper_initialisation([2, 2], np.random.default_rng(0))
    x, y = np.ones((4, 2)), np.array([0, 1, 0, 1])
    with pytest.raises(InvalidInputError, match="must hold samples"):
        train_network(net, x, y, np.ones((0, 2)), np.zeros(0, int), TrainConfig(n_iterations=1, batch_size=2))


# --- the constraint tables -----------------------------------------------------------------------------

def test_constraint_messages_name_the_argument_and_what_is_allowed():
    from numbers import Integral, Real

    from pyosc.validation import COUNT, SEED, Interval, Options, RealRange, check, validate

    with pytest.raises(InvalidInputError, match=r"^n must be an integer >= 1, got 0$"):
        check("n", 0, COUNT)
    with pytest.raises(InvalidInputError, match=r"^seed must be None or an integer in \[0, 2\*\*63 - 1\], got -1$"):
        check("seed", -1, [None, SEED])
    with pytest.raises(InvalidInputError, match=r"^p must be a finite number in \(0, 1\], got nan$"):
        check("p", NAN, Interval(Real, 0, 1, closed="right"))
    with pytest.raises(InvalidInputError, match=r"^where\.k must be one of 1, 2, got 1\.0$"):
        validate({"k": [Options(1, 2)]}, {"k": 1.0}, where="where.")
    with pytest.raises(InvalidInputError, match="min < max"):
        check("input_range", (0, INF), RealRange())
    assert check("n", np.int64(3), Interval(Integral, 1, 3)) == 3
    for bad in (True, 2.0, "2", None):
        with pytest.raises(InvalidInputError):
            check("n", bad, COUNT)


# --- messages: one way to print accuracy, counts with their grammar -----------------------------------

def _histories():
    acc = 0.972
    run_it = {"coords": {"evaluation": [0]}}
    common = {"wall_time_s": 1.0}
    yield xor.summary, xr.Dataset(
        {"distance": (("run", "iteration"), [[1e-4]]), "accuracy": (("run", "evaluation"), [[acc]])}, **run_it,
        attrs={**common, "config": {"n_units": 5, "n_runs": 1, "n_iterations": 1}})
    yield digits.summary, xr.Dataset(
        {"accuracy": (("run", "evaluation"), [[acc]])}, **run_it,
        attrs={**common, "topology": "layered:64,20,10", "n_trainable": 1, "config": {"n_iterations": 1}})
    yield onn_memory.summary, xr.Dataset(attrs={
        **common, "config": {"letters": "A", "corruption": 0.1}, "H_sin": [1.0], "final_accuracy": acc,
        "final_overlap": 0.9, "hebbian_accuracy": acc, "hebbian_overlap": 0.9})
    yield optomech_xor.summary, xr.Dataset(
        {"accuracy": (("run", "evaluation"), [[acc]]), "solved": ("run", [True]),
         "solved_first_attempt": ("run", [True]), "n_restarts": ("run", [1])}, **run_it,
        attrs={**common, "train_data": "xor", "config": {"model": "m", "cell": "c", "gradient": "g", "n_runs": 1,
                                                         "n_iterations": 1}})
    yield scattering_digits.summary, xr.Dataset(
        {"test_accuracy": ("evaluation", [acc])}, **run_it,
        attrs={**common, "best_test_accuracy": acc, "best_iteration": 1, "config": {"hidden": 0, "n_iterations": 1}})


@pytest.mark.parametrize("summary, ds", list(_histories()), ids=lambda v: getattr(v, "__module__", ""))
def test_summaries_print_accuracy_and_counts_alike(summary, ds):
    text = summary(ds)
    assert "97.2 %" in text, text
    assert not re.search(r"\d%", text), text  # always "97.2 %", never "97.2%" or "97%"
    assert not re.search(r"\b1 (iteration|run|letter|restart|parameter)s\b", text), text
    assert re.search(r"\b1 iteration\b", text) or "letter" in text, text


def test_percent_and_count():
    from pyosc.experiments.text import count, percent

    assert percent(0.972) == "97.2 %" and percent(1.0) == "100.0 %" and percent(NAN) == "n/a"
    assert count(1, "iteration") == "1 iteration" and count(2, "iteration") == "2 iterations"
    assert count(0, "run") == "0 runs"


# --- properties: any input gives finite (flagged) results or a pyosc error ----------------------------

ODD = st.sampled_from([NAN, INF, -INF, 1e300, -1e300, 0.0, 1e-300])
NUMBER = st.one_of(st.floats(-10, 10), ODD)
ANY = st.one_of(st.integers(-5, 20), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                st.text(max_size=3), st.none(), st.lists(st.integers(-2, 5), max_size=3), st.just(2**70))


def _raises_only_pyosc(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except PyoscError:
        return None


@FAST
@given(sizes=st.lists(st.one_of(st.integers(-2, 6), st.floats(-2, 6), st.booleans(), st.text(max_size=2)),
                      max_size=5),
       n=ANY, n_in=ANY, n_out=ANY, spec=st.text(alphabet="layerdt-o:0123456789,x.+", max_size=16))
def test_property_topology_builders(sizes, n, n_in, n_out, spec):
    for topo in (_raises_only_pyosc(T.layered, sizes), _raises_only_pyosc(T.all_to_all, n, n_in, n_out),
                 _raises_only_pyosc(T.square_lattice, n, n, n_in, n_out),
                 _raises_only_pyosc(T.from_spec, spec, n_inputs=2, n_outputs=1)):
        if topo is not None:
            assert isinstance(topo.n_units, int) and topo.n_inputs + topo.n_outputs <= topo.n_units
            assert topo.coupling_mask.shape == (topo.n_units, topo.n_units)


ARRAY = st.one_of(
    st.lists(NUMBER, max_size=6).map(lambda v: np.array(v, dtype=float).reshape(-1, 1) if len(v) % 2 else
                                     np.array(v, dtype=float).reshape(-1, 2) if v else np.zeros((0, 2))),
    st.lists(st.integers(-3, 20), min_size=1, max_size=6).map(lambda v: np.array(v)[None, :]),
    st.lists(st.complex_numbers(max_magnitude=20), min_size=1, max_size=4).map(lambda v: np.array(v)[None, :]),
    st.lists(st.booleans(), min_size=1, max_size=4).map(lambda v: np.array(v)[None, :]),
    st.sampled_from([np.array(["a", "b"]), np.zeros((2, 0)), np.zeros(()), [[1, 2], [3]], None]))


@FAST
@given(a=ARRAY, n_classes=ANY, replication=ANY, background=ANY)
def test_property_encodings(a, n_classes, replication, background):
    calls = [(datasets.encode_pixels, a), (datasets.encode_classes, a, n_classes),
             (detunings.encode_detunings, a, replication, background), (detunings.replicate_inputs, a, replication),
             (patterns.to_phases, a)]
    for fn, *args in calls:
        out = _raises_only_pyosc(fn, *args)
        if out is not None:
            assert np.all(np.isfinite(out)), (fn.__name__, a, out)


@FAST
@given(config=st.sampled_from(CONFIGS), data=st.data())
def test_property_configs(config, data):
    """A Config either takes a value that its field allows (keeping its type) or raises a pyosc error naming it."""
    from pyosc.experiments.options import fields, from_mapping

    key = data.draw(st.sampled_from(sorted(fields(config))))
    value = data.draw(ANY)
    made = _raises_only_pyosc(config, **{key: value})
    if made is not None:
        kind = fields(config)[key][0]
        assert isinstance(getattr(made, key), kind) and not (kind is not bool and isinstance(getattr(made, key), bool))
        if kind is float:
            assert math.isfinite(getattr(made, key))
    _raises_only_pyosc(from_mapping, config, {key: value})


# --- properties of the engine boundary -------------------------------------------------------------------

def _symmetric(values, n):
    w = np.zeros((n, n))
    w[np.triu_indices(n, 1)] = values[: n * (n - 1) // 2]
    return w + w.T


XY_TOPOLOGY = T.all_to_all(3, 1, 1)


@settings(max_examples=25, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(w=st.lists(NUMBER, min_size=3, max_size=3), h=st.lists(NUMBER, min_size=3, max_size=3),
       phi=st.lists(NUMBER, min_size=6, max_size=6), beta=NUMBER, target=st.lists(NUMBER, min_size=2, max_size=2),
       shape=st.sampled_from([(2, 1, 3), (2, 1, 3), (2, 1, 3), (1, 2, 3), (6,), (2, 3, 1), (0, 1, 3)]))
def test_property_engine_relax_and_ep_step(w, h, phi, beta, target, shape):
    """Converged states are finite; anything else is flagged (converged False) or refused with a pyosc error."""
    from pyosc.engines import get_engine
    from pyosc.engines.base import Nudge

    engine = get_engine()
    params = {"W": _symmetric(np.array(w), 3), "h": np.array(h), "psi": np.array(h[::-1])}
    size = int(np.prod(shape))
    phi0 = np.resize(np.array(phi), size).reshape(shape)
    eq = _raises_only_pyosc(engine.relax, "xy", params, phi0, XY_TOPOLOGY)
    if eq is not None:
        assert eq.phi.shape == phi0.shape and eq.converged.shape == phi0.shape[:-1]
        assert np.all(np.isfinite(eq.phi) | ~eq.converged[..., None])
        assert np.all(eq.force[eq.converged] <= 1e-10)
    nudge = _raises_only_pyosc(Nudge, beta, np.resize(np.array(target), (max(shape[0], 1), 1)))
    step = None if nudge is None else _raises_only_pyosc(engine.ep_step, "xy", params, phi0, XY_TOPOLOGY, nudge)
    if step is not None:
        assert np.all(np.isfinite(step.free.phi) | ~step.free.converged[..., None])
        if step.free.converged.all() and step.nudged.converged.all():
            assert all(np.all(np.isfinite(g)) for g in step.gradient.values())


@settings(max_examples=15, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(j=NUMBER, h=st.lists(NUMBER, min_size=2, max_size=2), y=st.lists(NUMBER, min_size=2, max_size=2),
       t1=NUMBER, shape=st.sampled_from([(1, 1, 2, 1), (1, 1, 2, 1), (1, 1, 2, 2), (2, 1), (1, 1, 3, 1)]))
def test_property_engine_integrate(j, h, y, t1, shape):
    """A trajectory is finite, or a pyosc error (ConvergenceError for one that fails) says why."""
    from pyosc.engines import get_engine
    from pyosc.engines.base import IntegrateOptions

    p = {"omega": np.array(0.0), "J": _symmetric(np.array([j]), 2), "C": np.zeros((2, 2)), "h": np.array(h),
         "b": np.zeros(2), "psi": np.zeros(2), "h_in": np.array(0.0), "b_in": np.array(0.0)}
    y0 = np.resize(np.array(y), int(np.prod(shape))).reshape(shape)
    out = _raises_only_pyosc(get_engine().integrate, "optomech-phase", p, y0, np.array([t1]),
                             options=IntegrateOptions(max_steps=2000))
    if out is not None:
        assert np.all(np.isfinite(out))
