"""The Python half of the Julia engine, without Julia: array layouts (NumPy alone), the bridge's calls against the
Julia sources, option mapping, the engine's glue run against a stand-in for PyoscEngine computed by the JAX engine in
the Julia layout (the conformance suite included), the behaviour with no Julia (import, CLI, info, get_engine, the
probe in a subprocess), and the golden vectors (coverage, layout, regenerable by their generator)."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import re
import subprocess
import sys
import types
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from julia_signatures import PACKAGE, ROOT, julia_exports, julia_signatures

from pyosc import topology as T
from pyosc.cli import main
from pyosc.engines import get_engine, list_engines
from pyosc.engines.base import (
    INTEGRATORS,
    FinalLoss,
    IntegrateOptions,
    Nudge,
    RelaxOptions,
    SteadyStateOptions,
)
from pyosc.engines.jax.engine import JaxEngine
from pyosc.engines.julia import arrays, bridge
from pyosc.engines.julia.engine import (
    MODELS,
    JuliaEngine,
    flow_keywords,
    integrate_keywords,
    relax_keywords,
    steady_keywords,
)
from pyosc.errors import EngineUnavailableError, InvalidInputError, JuliaError
from pyosc.models import registry
from pyosc.testing import energy_gradient, engine_checks

INSTALL = "pip install 'pyosc[julia]' then pyosc install-julia"
GOLDEN = PACKAGE / "test" / "golden"
NO_JULIA = pytest.mark.skipif(importlib.util.find_spec("juliacall") is not None,
                              reason="juliacall is installed: these check the behaviour without it")


# --- array layouts -----------------------------------------------------------------------------------------------

def test_batch_arrays_cross_as_zero_copy_f_ordered_views_and_come_back_as_copies():
    a = np.arange(24.0).reshape(4, 3, 2)  # (B, N, d)
    v = arrays.to_julia(a)
    assert v.shape == (2, 3, 4) and v.flags.f_contiguous and np.shares_memory(v, a)
    assert v[1, 2, 3] == a[3, 2, 1]
    # Julia's native copy (column-major) holds NumPy's memory in order: one contiguous column per state
    np.testing.assert_array_equal(v.ravel(order="F"), a.ravel())
    back = arrays.from_julia(v)
    np.testing.assert_array_equal(back, a)
    assert back.flags.c_contiguous and not np.shares_memory(back, a)
    mask = arrays.to_julia(np.array([[True, False]]), bool)
    assert mask.dtype == bool and mask.shape == (2, 1)
    assert arrays.from_julia([1, 0, 1], bool).tolist() == [True, False, True]


def test_non_contiguous_or_integer_batches_are_copied_to_float64():
    a = np.arange(12).reshape(3, 4)[:, ::2]
    v = arrays.to_julia(a)
    assert v.dtype == np.float64 and v.flags.f_contiguous and not np.shares_memory(v, a)
    np.testing.assert_array_equal(arrays.from_julia(v), a)


def test_states_flatten_samples_and_inits_and_per_sample_rows_follow():
    phi = np.arange(2 * 3 * 4.0).reshape(2, 3, 4)  # (samples, inits, N)
    flat = arrays.states(phi)
    assert flat.shape == (6, 4)
    targets = np.array([[10.0], [20.0]])
    rows = arrays.per_state(targets, 3)
    for s in range(2):
        for m in range(3):
            b = s * 3 + m
            np.testing.assert_array_equal(flat[b], phi[s, m])
            assert rows[b, 0] == targets[s, 0]
    np.testing.assert_array_equal(arrays.from_julia(arrays.to_julia(flat)).reshape(phi.shape), phi)


def test_params_keep_index_order_and_scalars_become_floats():
    W = np.arange(9.0).reshape(3, 3)
    p = arrays.params_to_julia({"W": W, "omega": np.asarray(0.5), "h": [1, 2, 3]})
    assert type(p["omega"]) is float and p["omega"] == 0.5
    assert p["W"].flags.c_contiguous and p["W"][0, 2] == W[0, 2] and p["h"].dtype == np.float64
    back = arrays.params_from_julia(p)
    assert back["omega"].shape == () and back["omega"] == 0.5
    np.testing.assert_array_equal(back["W"], W)
    assert not np.shares_memory(back["W"], p["W"])
    assert arrays.indices([0, -1]).dtype == np.int64


# --- the bridge's calls against the Julia sources ------------------------------------------------------------

def _tree_sitter():
    pytest.importorskip("tree_sitter", reason="tree-sitter is in the test extra")
    pytest.importorskip("tree_sitter_julia", reason="tree-sitter-julia is in the test extra")


def test_every_bridge_call_exists_in_julia_with_its_arity_and_keywords():
    _tree_sitter()
    signatures = julia_signatures()
    for entry, call in bridge.CALLS.items():
        assert entry in signatures, f"PyoscEngine has no single-signature function {entry}"
        arity, keywords = signatures[entry]
        assert call.arity == arity, (entry, call.arity, arity)
        assert call.keywords <= keywords, (entry, sorted(call.keywords - keywords))
    assert set(bridge.CALLS) == julia_exports()


def _julia_source(name: str) -> str:
    return (PACKAGE / "src" / name).read_text()


def test_engine_models_and_integrators_exist_in_julia():
    models = _julia_source("models.jl")
    phase = re.search(r"const PHASE_PARAMS = Dict\((.*?)\n\)", models, re.DOTALL).group(1)
    julia_models = set(re.findall(r'"([\w-]+)" =>', phase)) | set(re.findall(r'"([\w-]+)" => DynamicsSpec\(', models))
    assert set(MODELS) == julia_models and set(MODELS) <= set(registry.MODELS)
    solvers = re.search(r"const SOLVERS = \(([^)]*)\)", _julia_source("integration.jl")).group(1)
    assert set(INTEGRATORS) <= set(re.findall(r'"(\w+)"', solvers))


def test_call_checks_the_table_before_starting_julia(monkeypatch):
    monkeypatch.setattr(bridge, "_session", None)
    with pytest.raises(TypeError, match="CALLS allows"):
        bridge.call("relax", "xy", {})
    with pytest.raises(TypeError, match="CALLS allows"):
        bridge.call("versions", sensealg="auto")


# --- option mapping --------------------------------------------------------------------------------------------

def test_options_map_to_julia_keywords():
    kw = relax_keywords(RelaxOptions(method="ode", tol=1e-6, integrator="kvaerno5", rtol=1e-8, atol=1e-8))
    assert kw == dict(method="ode", tol=1e-6, max_iter=200, t_max=1e4, solver="kvaerno5", rtol=1e-8, atol=1e-8,
                      max_steps=1_000_000)
    assert set(kw) <= bridge.CALLS["relax"].keywords
    assert flow_keywords(RelaxOptions(integrator="dopri8")) == dict(solver="dopri8", rtol=1e-8, atol=1e-8,
                                                                    max_steps=1_000_000)
    assert integrate_keywords(IntegrateOptions(method="kvaerno3"))["solver"] == "kvaerno3"
    assert integrate_keywords(IntegrateOptions())["dt"] == 0.0
    assert integrate_keywords(IntegrateOptions(dt=0.01))["dt"] == 0.01
    assert steady_keywords(SteadyStateOptions(tol=1e-9)) == dict(tol=1e-9, max_iter=200, dt0=10.0)
    for entry, kw in (("integrate", integrate_keywords(IntegrateOptions())),
                      ("steady_state_loss_and_grad", steady_keywords(SteadyStateOptions()))):
        assert set(kw) <= bridge.CALLS[entry].keywords


def test_options_without_julia_meaning_are_refused():
    with pytest.raises(InvalidInputError, match="saved_states"):
        integrate_keywords(IntegrateOptions(saved_states=10))
    with pytest.raises(InvalidInputError, match="shared_steps"):
        relax_keywords(RelaxOptions.for_tolerance("ode", 1e-8, shared_steps=True))
    relax_keywords(RelaxOptions(shared_steps=True))  # newton ignores it, as in every engine


# --- the engine's glue against a stand-in for PyoscEngine ---------------------------------------------------------

class _StandInError(Exception):
    """What juliacall.JuliaError is: ``exception`` holds the Julia exception."""

    @property
    def exception(self):
        return self.args[0]


_MAIN = SimpleNamespace(Array="Array", ArgumentError=ValueError, isa=isinstance, sprint=lambda f, e: f(e),
                        showerror=lambda e: f"{type(e).__name__}: {e}")
_JULIACALL = SimpleNamespace(Main=_MAIN, JuliaError=_StandInError, convert=lambda T, a: np.array(a))


class _JaxInJuliaLayout:
    """PyoscEngine's entry points computed by the JAX engine, taking and returning arrays in the Julia layout;
    every batch argument must arrive as an F-ordered float64 view, every parameter dict as native copies."""

    def __init__(self):
        self.jax = JaxEngine()

    @staticmethod
    def _batch(a, ndim: int) -> np.ndarray:
        assert isinstance(a, np.ndarray) and a.ndim == ndim and a.dtype == np.float64 and a.flags.f_contiguous, \
            "batch arrays must cross as F-ordered float64 views"
        return a.T

    @staticmethod
    def _params(d) -> dict:
        assert type(d) is dict and all(type(v) is float or (isinstance(v, np.ndarray) and v.flags.c_contiguous)
                                       for v in d.values())
        return {k: np.asarray(v) for k, v in d.items()}

    @staticmethod
    def _topology(p, clamped, outputs) -> T.Topology:
        assert clamped.dtype == bool and outputs.dtype == np.int64
        n, n_in = clamped.size, int(clamped.sum())
        assert clamped[:n_in].all() and outputs.tolist() == list(range(n - outputs.size, n))
        return T.Topology(p["W"] != 0, n_in, outputs.size, "stand-in")

    def _phase(self, params, phi0, clamped, outputs, targets, beta):
        p = self._params(params)
        phi, tg = self._batch(phi0, 2)[:, None], self._batch(targets, 2)
        return p, phi, self._topology(p, clamped, outputs), Nudge(beta, tg) if beta else None

    @staticmethod
    def _relax_options(kw) -> RelaxOptions:
        return RelaxOptions(**{("integrator" if k == "solver" else k): v for k, v in kw.items()})

    @staticmethod
    def _julia_equilibrium(eq) -> tuple:
        return eq.phi[:, 0].T, eq.converged[:, 0], eq.force[:, 0], eq.work[:, 0]

    @staticmethod
    def _julia_gradient(g: dict) -> dict:
        return {k: float(v) if np.ndim(v) == 0 else np.asarray(v) for k, v in g.items()}

    def relax(self, model, *args, **kw):
        p, phi, topo, nudge = self._phase(*args)
        return self._julia_equilibrium(self.jax.relax(model, p, phi, topo, nudge, self._relax_options(kw)))

    def ep_step(self, model, *args, **kw):
        p, phi, topo, nudge = self._phase(*args)
        step = self.jax.ep_step(model, p, phi, topo, nudge, self._relax_options(kw))
        return (self._julia_gradient(step.gradient), self._julia_equilibrium(step.free),
                self._julia_equilibrium(step.nudged))

    def trajectory(self, model, *args, **kw):
        p, phi, topo, nudge = self._phase(*args[:-1])
        phis = self.jax.trajectory(model, p, phi, topo, args[-1], nudge, self._relax_options(kw))
        return phis[:, 0].T, np.ones(phis.shape[0], bool)

    def _dynamics(self, params, y0, inputs, kw):
        dt = kw.pop("dt", 0.0)
        options = IntegrateOptions(method=kw.pop("solver"), dt=dt or None, **kw) if "rtol" in kw \
            else SteadyStateOptions(**kw)
        return self._params(params), self._batch(y0, 3)[:, None], self._batch(inputs, 2), options

    def integrate(self, model, params, y0, inputs, times, **kw):
        p, y, x, options = self._dynamics(params, y0, inputs, kw)
        ys = self.jax.integrate(model, p, y, times, inputs=x, options=options)
        return ys[:, 0].T, np.ones(ys.shape[0], bool)

    def final_state_loss_and_grad(self, model, params, y0, inputs, targets, outputs, t1, *, kind, **kw):
        p, y, x, options = self._dynamics(params, y0, inputs, kw)
        loss = FinalLoss(self._batch(targets, 2), tuple(outputs.tolist()), kind)
        value, grad = self.jax.final_state_loss_and_grad(model, p, y, t1, loss, inputs=x, options=options)
        return float(value), self._julia_gradient(grad), np.ones(y.shape[0], bool)

    def steady_state_loss_and_grad(self, model, params, y0, inputs, targets, outputs, *, kind, **kw):
        p, y, x, options = self._dynamics(params, y0, inputs, kw)
        loss = FinalLoss(self._batch(targets, 2), tuple(outputs.tolist()), kind)
        value, grad, ok = self.jax.steady_state_loss_and_grad(model, p, y, loss, inputs=x, options=options)
        return float(value), self._julia_gradient(grad), ok[:, 0]

    @staticmethod
    def versions():
        return {"julia": "stand-in"}


def _use(monkeypatch, engine) -> None:
    """Make ``engine`` the started PyoscEngine of the bridge."""
    monkeypatch.setattr(bridge, "_session", bridge._Julia(_JULIACALL, engine, dict))


# The conformance checks that between them call every entry point of the bridge (relax with both methods and both
# phase models, ep_step, trajectory, integrate, both loss gradients) and read every field of the results; the other
# two (energy_never_increases, clamped_units_stay_fixed) would only repeat these calls through the glue, and the
# numerical properties themselves are the JAX engine's, checked by tests/test_conformance.py.
GLUE_CHECKS = [pytest.param(c, id=c.__name__.removeprefix("check_")) for _, c in engine_checks()
               if c.__name__ not in ("check_energy_never_increases", "check_clamped_units_stay_fixed")]


@pytest.mark.parametrize("check", GLUE_CHECKS)
def test_engine_glue_conforms_with_a_jax_stand_in(monkeypatch, check):
    """The conformance suite through JuliaEngine, the bridge's argument conversion and the array layouts, with the
    JAX engine computing in PyoscEngine's place."""
    _use(monkeypatch, _JaxInJuliaLayout())
    check(JuliaEngine())


class _Echo:
    """Julia-layout results from the arguments: relax returns phi0 + h[0]; the final loss is omega."""

    def relax(self, model, params, phi0, clamped, outputs, targets, beta, **kw):
        b = phi0.shape[1]
        return phi0 + params["h"][0], np.ones(b, bool), np.zeros(b), np.full(b, params["h"][0])

    def final_state_loss_and_grad(self, model, params, y0, inputs, targets, outputs, t1, **kw):
        return params["omega"], {"omega": 2 * params["omega"], "J": params["J"].copy()}, np.ones(y0.shape[-1], bool)


def test_runs_axis_is_one_julia_call_per_network(monkeypatch):
    _use(monkeypatch, _Echo())
    engine = JuliaEngine()
    topo = T.all_to_all(3, 1, 1)
    W = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.2], [0.5, 0.2, 0.0]])
    params = {"W": np.stack([W, 2 * W]), "h": np.array([[0.1, 0.0, 0.0], [0.2, 0.0, 0.0]]), "psi": np.zeros((2, 3))}
    phi0 = np.random.default_rng(0).uniform(-1, 1, (2, 4, 5, 3))  # (runs, samples, inits, N)
    eq = engine.relax("xy", params, phi0, topo)
    assert eq.phi.shape == phi0.shape and eq.converged.shape == (2, 4, 5) and eq.converged.dtype == bool
    np.testing.assert_allclose(eq.phi, phi0 + np.array([0.1, 0.2])[:, None, None, None])
    np.testing.assert_allclose(eq.work[1], 0.2)
    J = np.array([[0.0, 0.3, 0.1], [0.3, 0.0, 0.2], [0.1, 0.2, 0.0]])
    q = {"omega": np.array([0.01, 0.02]), "h_in": np.zeros(2), "b_in": np.zeros(2), "h": np.zeros((2, 3)),
         "b": np.zeros((2, 3)), "psi": np.zeros((2, 3)), "J": np.stack([J, -J]), "C": np.zeros((2, 3, 3))}
    y0 = np.zeros((2, 4, 5, 3, 1))
    value, grad = engine.final_state_loss_and_grad("optomech-phase", q, y0, 1.0, FinalLoss(np.zeros((4, 1))))
    np.testing.assert_allclose(value, [0.01, 0.02])
    np.testing.assert_allclose(grad["omega"], [0.02, 0.04])
    np.testing.assert_allclose(grad["J"], np.stack([J, -J]))


class _Raises:
    def __init__(self, error: Exception):
        self.error = error

    def versions(self):
        raise _StandInError(self.error)


def test_julia_errors_become_pyosc_errors_with_the_julia_message(monkeypatch):
    _use(monkeypatch, _Raises(ValueError("t1 must be a finite time > 0")))  # ValueError plays ArgumentError
    with pytest.raises(InvalidInputError, match="Julia engine: ValueError: t1 must be a finite time > 0"):
        bridge.versions()
    _use(monkeypatch, _Raises(RuntimeError("DomainError")))
    with pytest.raises(JuliaError, match="PyoscEngine.versions: RuntimeError: DomainError"):
        bridge.versions()


def test_warns_when_juliacall_was_imported_by_someone_else(monkeypatch):
    monkeypatch.setattr(bridge, "_session", None)
    monkeypatch.setitem(sys.modules, "juliacall", types.ModuleType("juliacall"))
    monkeypatch.delenv("PYTHON_JULIACALL_THREADS", raising=False)
    with pytest.warns(UserWarning, match="imported before"), pytest.raises(EngineUnavailableError, match="did not st"):
        bridge.start()
    assert "PYTHON_JULIACALL_THREADS" not in os.environ  # too late to apply: left alone


def _module(name: str, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.__dict__.update(attributes)
    return module


def test_install_julia_resolves_then_loads_the_engine_with_progress(monkeypatch, capsys):
    resolved = []
    monkeypatch.setitem(sys.modules, "juliacall", _module("juliacall"))
    monkeypatch.setitem(sys.modules, "juliapkg", _module("juliapkg", resolve=lambda force: resolved.append(force),
                                                         executable=lambda: "/opt/julia", project=lambda: "/env"))
    monkeypatch.delenv("PYTHON_JULIACALL_EXE", raising=False)
    _use(monkeypatch, _JaxInJuliaLayout())
    assert main(["install-julia", "--force"]) == 0
    out = capsys.readouterr().out
    assert resolved == [True]
    assert "[1/2] resolving" in out and "julia: /opt/julia" in out and "[2/2] starting Julia" in out
    assert "julia stand-in" in out


# --- without Julia ---------------------------------------------------------------------------------------------

def test_listing_engines_and_the_cli_never_import_juliacall():
    code = ("import sys, pyosc, pyosc.engines, pyosc.cli\nfrom pyosc.cli import info\n"
            "pyosc.engines.list_engines(); pyosc.cli.build_parser(); info.report()\n"
            "print('juliacall' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("user_env, expected", [
    ({}, {"PYTHON_JULIACALL_HANDLE_SIGNALS": "yes", "PYTHON_JULIACALL_THREADS": str(bridge._usable_cpus())}),
    ({"PYTHON_JULIACALL_HANDLE_SIGNALS": "no", "PYTHON_JULIACALL_THREADS": "3"},
     {"PYTHON_JULIACALL_HANDLE_SIGNALS": "no", "PYTHON_JULIACALL_THREADS": "3"}),
], ids=["defaults", "user-set"])
def test_probe_starts_julia_in_a_subprocess_offline_with_the_engine_settings(tmp_path, user_env, expected):
    """A juliacall that fails to start Julia (here a stand-in that reports the settings it saw) makes the engine
    unavailable with the reason, without importing juliacall in the asking process."""
    (tmp_path / "juliacall").mkdir()
    (tmp_path / "juliacall" / "__init__.py").write_text(
        "import os\nkeys = ('PYTHON_JULIACALL_HANDLE_SIGNALS', 'PYTHON_JULIACALL_THREADS', 'PYTHON_JULIAPKG_OFFLINE')\n"
        "raise RuntimeError('no Julia here, ' + ' '.join(f'{k}={os.environ.get(k)}' for k in keys))\n")
    code = ("import json, sys\nfrom pyosc.engines import get_engine, list_engines\nfrom pyosc.errors import "
            "EngineUnavailableError\ns = list_engines()['julia']\ntry:\n    get_engine('julia')\n    raised = ''\n"
            "except EngineUnavailableError as e:\n    raised = str(e)\n"
            "print(json.dumps([s.available, s.reason, raised, 'juliacall' in sys.modules]))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON_JULIA", "JULIA_NUM_THREADS"))}
    env |= user_env | {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600,
                         env=env)
    available, reason, raised, imported = json.loads(out.stdout.strip().splitlines()[-1])
    assert not available and not imported
    seen = " ".join(f"{k}={v}" for k, v in (expected | {"PYTHON_JULIAPKG_OFFLINE": "yes"}).items())
    assert f"RuntimeError: no Julia here, {seen}" in reason and INSTALL in reason
    assert raised.startswith("engine 'julia' is unavailable: the Julia engine did not start") and INSTALL in raised


@NO_JULIA
def test_get_engine_julia_says_how_to_install():
    assert not list_engines()["julia"].available
    with pytest.raises(EngineUnavailableError, match=re.escape(INSTALL)):
        get_engine("julia")


@NO_JULIA
def test_cli_help_info_and_install_julia_without_julia(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0 and "install-julia" in capsys.readouterr().out
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "julia: unavailable" in out and "why: juliacall is not installed" in out and INSTALL in out
    assert main(["install-julia"]) == 2
    assert "pip install 'pyosc[julia]'" in capsys.readouterr().err


@NO_JULIA
def test_julia_conformance_tests_are_collected_and_skipped_with_the_reason():
    import test_conformance

    (param,) = [p for p in test_conformance.ENGINES if p.values == ("julia",)]
    (mark,) = [m for m in param.marks if m.name == "skip"]
    assert "juliacall is not installed" in mark.kwargs["reason"] and INSTALL in mark.kwargs["reason"]


# --- golden vectors --------------------------------------------------------------------------------------------

def _golden() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(GOLDEN.glob("*.json"))}


def _runtests_positional() -> dict[str, list[str]]:
    """runtests.jl's table of positional argument names, by entry point."""
    block = re.search(r"const POSITIONAL = Dict\((.*?)\n\)", (PACKAGE / "test" / "runtests.jl").read_text(), re.DOTALL)
    return {e: re.findall(r'"(\w+)"', names) for e, names in re.findall(r'"(\w+)" => \[([^\]]*)\]', block.group(1))}


def _decode(value):
    """A golden value as the Julia side takes it (README.md: column-major data of the Julia shape)."""
    if isinstance(value, dict) and "array" in value:
        dtype = {"float64": float, "int64": np.int64, "bool": bool}[value["array"]]
        data = [float(x) if isinstance(x, str) else x for x in value["data"]]
        return np.reshape(np.array(data, dtype=dtype), value["shape"], order="F")
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    return value


def _load_generator():
    spec = importlib.util.spec_from_file_location("pyosc_golden_generate", GOLDEN / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_golden_vectors_cover_every_entry_model_and_method():
    cases = _golden()
    required = {("relax", m, method) for m in ("xy", "onn") for method in ("newton", "ode")} \
        | {(e, m, None) for e in ("trajectory", "ep_step") for m in ("xy", "onn")} \
        | {(e, m, None) for e in ("integrate", "final_state_loss_and_grad")
           for m in ("optomech-micro", "optomech-averaged", "optomech-phase")} \
        | {("steady_state_loss_and_grad", m, None) for m in ("optomech-averaged", "optomech-phase")}
    covered = {(c["entry"], c["model"], c["kwargs"].get("method", "newton") if c["entry"] == "relax" else None)
               for c in cases.values()}
    assert required <= covered, sorted(required - covered)
    assert sum(p.stat().st_size for p in GOLDEN.glob("*.json")) < 200_000


def test_golden_vectors_are_the_generators_calls_of_the_bridge():
    """Every file is a case of generate.py, in the format of README.md, with the positional arguments of runtests.jl
    and the arity and keywords of the bridge's calls."""
    cases = _golden()
    positional = _runtests_positional()
    assert set(cases) == set(re.findall(r'^    "([\w-]+)": lambda', (GOLDEN / "generate.py").read_text(), re.MULTILINE))
    for name, case in cases.items():
        entry = case["entry"]
        assert case["format"] == "pyosc-golden/1" and name.startswith(f"{entry}-{case['model']}-")
        assert case["generator"]["engine"] == "jax"
        assert case["generator"]["script"] == "julia/PyoscEngine/test/golden/generate.py"
        assert list(case["args"]) == positional[entry], name
        assert len(positional[entry]) + 1 == bridge.CALLS[entry].arity, name
        assert set(case["kwargs"]) <= bridge.CALLS[entry].keywords, name


def test_golden_equilibria_are_equilibria_in_the_documented_layout():
    """Decoded as the README says, the Newton cases' phases (N x B) are equilibria of the NumPy reference energy with
    the clamped units where phi0 had them."""
    for name, case in _golden().items():
        if case["entry"] not in ("relax", "ep_step") or case["kwargs"]["method"] != "newton":
            continue
        args, expected = _decode(case["args"]), _decode(case["expected"])
        results = [(expected, args["beta"])] if case["entry"] == "relax" else \
            [(expected["free"], 0.0), (expected["nudged"], args["beta"])]
        free, out = ~args["clamped"], args["outputs"]
        for eq, beta in results:
            phi = eq["phi"].T  # (B, N)
            g = energy_gradient(case["model"], args["params"], phi)
            g[:, out] += beta * np.tan((phi[:, out] - args["targets"].T) / 2)
            assert np.abs(g[:, free]).max() < 1e-9, name
            np.testing.assert_array_equal(phi[:, ~free], args["phi0"].T[:, ~free], err_msg=name)


def test_golden_vectors_are_regenerable_bit_for_bit(tmp_path):
    name = "integrate-optomech-phase-tsit5"
    committed = GOLDEN / f"{name}.json"
    recorded = json.loads(committed.read_text())["generator"]
    installed = {"jax": version("jax"), "diffrax": version("diffrax"), "numpy": np.__version__}
    if any(recorded[k] != v for k, v in installed.items()):
        pytest.skip(f"the golden vectors were written with {recorded}, this is {installed}")
    (path,) = _load_generator().write([name], tmp_path)
    assert path.read_bytes() == committed.read_bytes()
