import os
import shutil
import signal
import tempfile
from pathlib import Path

# One persistent JAX compilation cache per test run, shared by the xdist workers (they inherit this environment) and
# the processes the tests start: a program compiled by one of them is loaded, not compiled again, by the others.
# Three quarters of the suite's time is compilation. Created by the first process (the controller), removed by it.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="pyosc-tests-jax-cache-")
    os.environ["PYOSC_TESTS_OWN_JAX_CACHE"] = str(os.getpid())
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
# XLA's classic CPU emitters instead of its MLIR fusion emitters: the engine's programs compile in about 60 % of the
# time, run at the same speed, and give the same numbers up to rounding (XOR and layered EP histories within 3e-11).
if "xla_cpu_use_fusion_emitters" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_use_fusion_emitters=false".strip()

import numpy as np
import pytest

import pyosc.models  # noqa: F401  (switches JAX to float64)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if "PYOSC_DATA_HOME" not in os.environ and SHARED_DATA.is_dir():
    os.environ["PYOSC_DATA_HOME"] = str(SHARED_DATA)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def interrupt_at():
    """``interrupt_at(k)``: a progress callback that sends this process SIGINT (Ctrl-C) after iteration k."""
    def make(k: int):
        def progress(done, total, metrics):
            if done == k:
                os.kill(os.getpid(), signal.SIGINT)

        return progress

    return make


# --- pytest-xdist: tests that share compiled programs or module fixtures run on one worker ------------------------

# Each worker compiles its own JAX programs and builds its own module fixtures, so tests that share them (the same
# network shapes and options, a study run once for several tests, the trainers' histories that
# tests/test_netcdf_cf.py writes) run on one worker: nodeid prefix -> group. Every other test goes to whichever
# worker is free. (xdist's own ``xdist_group`` marks would say this, but pytest-xdist 3.8 cannot rename test nodes
# under pytest 9, so ``--dist loadgroup`` ignores them.)
SHARED_WORKER = {
    "tests/test_conformance.py::": "conformance",
    "tests/test_engine.py::": "conformance",
    "tests/test_ep.py::": "ep",
    "tests/test_estimators.py::": "estimators",
    "tests/test_julia_bridge.py::test_engine_glue_conforms_with_a_jax_stand_in": "conformance",  # same programs
    "tests/test_loop.py::test_sigint_saves_a_checkpoint_and_the_resumed_run_is_identical": "trainer-histories",
    "tests/test_netcdf_cf.py::": "trainer-histories",
    "tests/test_onn.py::": "onn",
    "tests/test_onn_memory.py::": "onn-memory",
    "tests/test_optomech.py::test_xor_cli_writes_history": "trainer-histories",  # the optomech trainer's programs
    "tests/test_optomech.py::": "optomech",
    "tests/test_relaxation_basin.py::": "basin",
    "tests/test_xy_model.py::": "xy-model",
    **{f"tests/test_studies.py::{name}": "studies-failing-run"
       for name in ("test_failing_point_is_recorded_and_others_complete", "test_status_reports_each_point")},
    **{f"tests/test_studies.py::{name}": "studies-hidden-run"
       for name in ("test_dask_local_cluster_matches_local_executor", "test_points_of_different_sizes_collect_and_plot")},
    **{f"tests/test_studies.py::{name}": "studies-killed-run"
       for name in ("test_a_killed_worker_fails_its_point_not_the_study",
                    "test_a_corrupt_checkpoint_is_set_aside_and_the_point_restarts",
                    "test_the_runner_that_claims_a_point_removes_its_stale_temporary_files",
                    "test_editing_base_invalidates_finished_points",
                    "test_a_truncated_point_file_is_redone_and_never_crashes_status_or_collect",
                    "test_a_starting_run_leaves_other_runners_temporary_files")},
}


# The work units that take longest (a minute or more for the groups, 20-30 s for the single tests, on the idle 2-core
# machine), handed out first in this order, so that the run ends on short tests with every worker busy (longest
# processing time first); the other units follow in xdist's order (most tests first).
LONGEST_FIRST = ("optomech", "conformance", "ep", "trainer-histories", "onn", "estimators",
                 "tests/test_interfaces.py::test_readme_example_runs",
                 "tests/test_mnist.py::test_a_small_mnist_subset_trains_above_chance",
                 "studies-hidden-run", "basin")


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` (pyproject's addopts): each group of :data:`SHARED_WORKER` is one work unit, given whole
    to one worker; every other test is a unit of its own. Units start in the order of :data:`LONGEST_FIRST`, then
    in xdist's."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class SharedWorkerScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)  # an xdist_group mark, where xdist could apply it
            if scope != nodeid:
                return scope
            return next((group for prefix, group in SHARED_WORKER.items() if nodeid.startswith(prefix)), nodeid)

        def _assign_work_unit(self, node) -> None:
            if not getattr(self, "ordered", False):  # the first assignment: the queue is complete
                rank = {scope: i for i, scope in enumerate(LONGEST_FIRST)}
                units = sorted(self.workqueue.items(), key=lambda unit: rank.get(unit[0], len(rank)))  # stable
                self.workqueue.clear()
                self.workqueue.update(units)
                self.ordered = True
            super()._assign_work_unit(node)

    return SharedWorkerScheduling(config, log)


@pytest.hookimpl(tryfirst=True)  # before -k and -m deselect
def pytest_collection_modifyitems(config, items):
    """Warn about a :data:`SHARED_WORKER` prefix or a :data:`LONGEST_FIRST` unit that names no test of a collected
    file (a renamed test)."""
    if any("::" in arg for arg in config.args):  # single tests asked for
        return
    ids = [item.nodeid for item in items]
    files = {nodeid.split("::")[0] for nodeid in ids}
    names = [("SHARED_WORKER", prefix, prefix) for prefix in SHARED_WORKER]
    names += [("LONGEST_FIRST", unit, unit) for unit in LONGEST_FIRST if "::" in unit]
    names += [("LONGEST_FIRST", unit, next(p for p, g in SHARED_WORKER.items() if g == unit))
              for unit in LONGEST_FIRST if unit in SHARED_WORKER.values()]
    for table, name, prefix in names:
        if prefix.split("::")[0] in files and not any(nodeid.startswith(prefix) for nodeid in ids):
            config.issue_config_time_warning(pytest.PytestConfigWarning(
                f"tests/conftest.py: {table} names {name!r}, which matches no collected test"), stacklevel=2)
    unknown = [u for u in LONGEST_FIRST if "::" not in u and u not in SHARED_WORKER.values()]
    if unknown:
        config.issue_config_time_warning(pytest.PytestConfigWarning(
            f"tests/conftest.py: LONGEST_FIRST names groups {unknown} that SHARED_WORKER does not define"), stacklevel=2)


def pytest_unconfigure(config):
    if os.environ.get("PYOSC_TESTS_OWN_JAX_CACHE") == str(os.getpid()):
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
