"""Static checks of the Julia engine (no Julia needed): every .jl file parses, the fatou linter and
formatter are clean, Project.toml and juliapkg.json agree, juliapkg finds one consistent set of
requirements, the wheel carries the Julia package where its juliapkg.json points, the entry points
keep their signatures, and every SciML call names the package version it follows."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from julia_signatures import (
    PACKAGE,
    ROOT,
    julia_exports,
    julia_methods,
    julia_signatures,
    syntax_errors,
)

JULIA_DIR = ROOT / "julia"
JULIA_FILES = sorted(JULIA_DIR.rglob("*.jl"))
JULIAPKG = ROOT / "juliapkg.json"

RELAX_KEYWORDS = frozenset({"method", "tol", "max_iter", "t_max", "solver", "rtol", "atol", "max_steps"})
ENTRY_POINTS = {
    "relax": (7, RELAX_KEYWORDS),
    "ep_step": (7, RELAX_KEYWORDS),
    "trajectory": (8, frozenset({"solver", "rtol", "atol", "max_steps"})),
    "integrate": (5, frozenset({"solver", "rtol", "atol", "max_steps", "dt"})),
    "final_state_loss_and_grad": (7, frozenset({"kind", "solver", "rtol", "atol", "max_steps", "dt", "sensealg"})),
    "steady_state_loss_and_grad": (6, frozenset({"kind", "tol", "max_iter", "dt0", "sensealg"})),
    "versions": (0, frozenset()),
}


def _tree_sitter():
    pytest.importorskip("tree_sitter", reason="tree-sitter is in the test extra")
    pytest.importorskip("tree_sitter_julia", reason="tree-sitter-julia is in the test extra")


def _toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli", reason="reading TOML on Python 3.10 needs tomli")
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def _fatou() -> str:
    exe = shutil.which("fatou") or str(Path(sys.executable).with_name("fatou"))
    if not Path(exe).exists():
        pytest.skip("fatou is not installed (pip install fatou)")
    return exe


# --- syntax, lint, format ----------------------------------------------------------------------------

def test_julia_package_files_exist():
    src = PACKAGE / "src"
    for name in ("PyoscEngine.jl", "models.jl", "relaxation.jl", "integration.jl", "sensitivities.jl",
                 "precompile.jl"):
        assert (src / name).is_file(), name
    assert (PACKAGE / "Project.toml").is_file()
    assert (PACKAGE / "test" / "runtests.jl").is_file()
    assert (PACKAGE / "test" / "golden" / "README.md").is_file()


@pytest.mark.parametrize("path", JULIA_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_julia_file_parses(path):
    _tree_sitter()
    assert syntax_errors(path) == []


def test_syntax_check_detects_errors(tmp_path):
    _tree_sitter()
    bad = tmp_path / "bad.jl"
    bad.write_text("function f(x\n    return x + 1\nend\n")
    assert syntax_errors(bad)


def test_fatou_lint_is_clean():
    result = subprocess.run([_fatou(), "lint", "--color", "never", str(JULIA_DIR)], check=False, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_fatou_format_is_clean():
    result = subprocess.run([_fatou(), "format", "--check", "--color", "never", str(JULIA_DIR)],
                            check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# --- entry points ------------------------------------------------------------------------------------

def test_entry_point_signatures():
    """The bridge calls these with exactly these positional arities and keyword names."""
    _tree_sitter()
    signatures = julia_signatures()
    for name, expected in ENTRY_POINTS.items():
        assert signatures.get(name) == expected, (name, signatures.get(name))
    assert julia_exports() == set(ENTRY_POINTS)
    for name in ENTRY_POINTS:
        assert len(julia_methods()[name]) == 1, f"{name} must have a single method"


def test_signature_helper_reads_short_forms_and_keywords(tmp_path):
    _tree_sitter()
    module = tmp_path / "M.jl"
    module.write_text('module M\ninclude("more.jl")\nfunction f(a, b::Int = 2; c = 1, d::Real = 2.0)\n'
                      "    inner(x) = x\n    return a\nend\nend\n")
    (tmp_path / "more.jl").write_text("g(x, y; z) = x\n@inline h(x) = x\n(s::S)(u) = u\n")
    methods = julia_methods(module)
    assert set(methods) == {"f", "g", "h"}
    (f,) = methods["f"]
    assert (f.positional, f.optional, f.keywords) == (2, 1, frozenset({"c", "d"}))
    assert julia_signatures(module)["g"] == (2, frozenset({"z"}))


# --- every SciML call names the version it follows ---------------------------------------------------

SCIML_CALL = re.compile(
    r"\b(solve|ODEProblem|ODEFunction|SteadyStateProblem|TerminateSteadyState|adjoint_sensitivities|GaussAdjoint|"
    r"InterpolatingAdjoint|SteadyStateAdjoint|EnzymeVJP|successful_retcode|build_solution|Tsit5|DP5|DP8|"
    r"Kvaerno[345]|Rodas5P)\s*[({]")
VERSION_NOTE = re.compile(
    r"#.*\b(SciMLBase|OrdinaryDiffEq\w*|SciMLSensitivity|DiffEqCallbacks|PrecompileTools)\s+v?\d+(\.\d+)*")


def test_every_sciml_call_names_a_version():
    missing = []
    for path in sorted((PACKAGE / "src").glob("*.jl")):
        lines = path.read_text().splitlines()
        in_docstring = False
        for i, line in enumerate(lines):
            if line.count('"""') % 2:
                in_docstring = not in_docstring
                continue
            code = line.split("#", 1)[0]
            if in_docstring or not SCIML_CALL.search(code) or re.match(r"\s*(function|const)\b", code):
                continue
            if not any(VERSION_NOTE.search(prev) for prev in lines[max(0, i - 12):i + 1]):
                missing.append(f"{path.name}:{i + 1}: {line.strip()}")
    assert missing == [], "SciML calls without a '# <Package> v<version>: ...' comment nearby:\n" + "\n".join(missing)


# --- Project.toml and juliapkg.json ------------------------------------------------------------------

def _assert_agrees_with_project(doc: dict, base: Path, project: dict):
    """``doc`` (a juliapkg.json, its relative paths resolved from ``base``) lists exactly the Project's deps."""
    assert doc["julia"] == project["compat"]["julia"]
    packages = doc["packages"]
    assert set(packages) == set(project["deps"]) | {"PyoscEngine"}
    for name, uuid in project["deps"].items():
        assert packages[name]["uuid"] == uuid, name
        assert packages[name].get("version") == project["compat"][name], name
    engine = packages["PyoscEngine"]
    assert engine["uuid"] == project["uuid"]
    assert engine.get("dev") is True
    assert "version" not in engine
    return base / engine["path"]


def test_project_toml_is_complete():
    project = _toml(PACKAGE / "Project.toml")
    assert project["name"] == "PyoscEngine"
    assert project["version"] == "0.1.0"
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", project["uuid"])
    assert project["compat"]["julia"] == "1.10 - 1.11"
    for name in list(project["deps"]) + list(project["extras"]):
        assert name in project["compat"], f"[compat] lacks {name}"
    assert set(project["targets"]["test"]) == set(project["extras"]) == {"Test", "JSON"}
    for required in ("SciMLBase", "SciMLSensitivity", "OrdinaryDiffEqTsit5", "OrdinaryDiffEqSDIRK",
                     "OrdinaryDiffEqRosenbrock", "ForwardDiff", "PrecompileTools", "LinearAlgebra"):
        assert required in project["deps"]
    # every package the sources load is a dependency
    used = set()
    for path in (PACKAGE / "src").glob("*.jl"):
        for match in re.finditer(r"^\s*(?:using|import)\s+([A-Za-z0-9_]+)", path.read_text(), re.MULTILINE):
            used.add(match.group(1))
    assert used <= set(project["deps"]), used - set(project["deps"])


def test_juliapkg_json_agrees_with_project_toml():
    project = _toml(PACKAGE / "Project.toml")
    doc = json.loads(JULIAPKG.read_text())
    engine_dir = _assert_agrees_with_project(doc, ROOT, project)
    assert engine_dir.resolve() == PACKAGE.resolve()


def _discovered(directories: list[Path]) -> list[Path]:
    """The juliapkg.json files juliapkg reads from these sys.path entries (pyjuliapkg 0.1.23 deps_files():
    ``<entry>/juliapkg.json`` and ``<entry>/<subdir>/juliapkg.json``)."""
    found = set()
    for entry in directories:
        candidates = [entry / "juliapkg.json"] + [d / "juliapkg.json" for d in entry.iterdir() if d.is_dir()]
        found.update(c.resolve() for c in candidates if c.is_file())
    return sorted(found)


def test_juliapkg_sees_one_consistent_engine_from_the_checkout():
    """From the checkout (editable install, or running in the repo root) juliapkg merges every juliapkg.json it
    finds and requires each package's resolved "path" to be identical (pyjuliapkg 0.1.23 find_requirements,
    merge_unique): a second copy under pyosc/ pointing at pyosc/julia/... would break it. The wheel's copy
    is made at build time (pyproject force-include)."""
    files = _discovered([ROOT, ROOT / "tests"])
    assert files == [JULIAPKG.resolve()]
    paths = {}
    for fn in files:
        for name, spec in json.loads(fn.read_text())["packages"].items():
            if "path" in spec:
                paths.setdefault(name, set()).add(os.path.normpath(fn.parent / spec["path"]))
    assert all(len(v) == 1 for v in paths.values()), paths
    assert (Path(next(iter(paths["PyoscEngine"]))) / "Project.toml").is_file()


# --- the wheel ---------------------------------------------------------------------------------------

def _build_wheel(out: Path) -> Path:
    """Build the wheel with `python -m build`, or pip (no build isolation when hatchling is importable)."""
    if importlib.util.find_spec("build") is not None:
        cmd = [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)]
        if importlib.util.find_spec("hatchling") is not None:
            cmd.insert(4, "--no-isolation")
    else:
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out), str(ROOT)]
        if importlib.util.find_spec("hatchling") is not None:
            cmd.insert(5, "--no-build-isolation")
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    if result.returncode != 0:
        if re.search(r"(No matching distribution|Could not find a version|No module named 'hatchling'|"
                     r"Failed to establish a new connection|network)", log, re.IGNORECASE):
            pytest.skip(f"cannot build a wheel here (build backend unavailable): {log[-300:]}")
        pytest.fail(f"wheel build failed:\n{log[-3000:]}")
    wheels = sorted(out.glob("pyosc-*.whl"))
    assert len(wheels) == 1, log
    return wheels[0]


def test_wheel_carries_juliapkg_json_and_julia_sources(tmp_path):
    if importlib.util.find_spec("pip") is None and importlib.util.find_spec("build") is None:
        pytest.skip("neither pip nor build is available to build the wheel")
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert "pyosc/juliapkg.json" in names
        doc = json.loads(zf.read("pyosc/juliapkg.json"))
        assert doc == json.loads(JULIAPKG.read_text())
        # juliapkg resolves "path" relative to the directory of the juliapkg.json: pyosc/
        engine = os.path.normpath(os.path.join("pyosc", doc["packages"]["PyoscEngine"]["path"])).replace(os.sep, "/")
        assert engine == "pyosc/julia/PyoscEngine"
        for source in [PACKAGE / "Project.toml", *sorted((PACKAGE / "src").glob("*.jl"))]:
            member = f"{engine}/{source.relative_to(PACKAGE).as_posix()}"
            assert member in names, member
            assert zf.read(member) == source.read_bytes(), member
        project = _toml(PACKAGE / "Project.toml")
        _assert_agrees_with_project(doc, Path("pyosc"), project)
        # nothing else of the checkout's julia/ folder, and no second juliapkg.json
        assert not any(n.startswith("julia/") for n in names)
        assert [n for n in names if n.endswith("juliapkg.json")] == ["pyosc/juliapkg.json"]
