"""Parameter studies: validation at load, crash-safe resumable runs, failures, dask, collection; point files that
verify (configuration hash, data checksum), cooperating runners, killed workers, corrupt checkpoints set aside."""
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from pyosc.engines.base import RelaxOptions
from pyosc.errors import InvalidInputError
from pyosc.experiments.digits import Config as DigitsConfig
from pyosc.results import checkpoint_progress, read_netcdf
from pyosc.studies import collect, collect_to_file, load_study, pending_points, run_study

TINY = """
task = "xy-xor"
[base]
n_runs = 3
n_iterations = 8
eval_every = 4
[sweep]
{sweep}
"""


def _study(tmp_path: Path, sweep: str, name: str = "s") -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"{name}.toml"
    path.write_text(TINY.format(sweep=sweep))
    return path


def test_grid_names_and_ranges(tmp_path):
    study = load_study(_study(tmp_path, 'n_units = [4, 5]\nlearning_rate = {start = 0.05, stop = 0.1, num = 2}'))
    pts = study.points()
    assert len(pts) == 4 and len({p.name for p in pts}) == 4
    assert pts[1].config["learning_rate"] == 0.1 and pts[1].config["n_units"] == 4 and pts[1].config["n_runs"] == 3
    assert study.output == tmp_path / "results" / "s"


def test_zipped_axes(tmp_path):
    path = tmp_path / "z.toml"
    path.write_text('task = "xy-xor"\n[[zip]]\ndim = "setting"\nn_units = [4, 5]\nn_inits = [1, 2]\n')
    pts = load_study(path).points()
    assert [(p.config["n_units"], p.config["n_inits"]) for p in pts] == [(4, 1), (5, 2)]
    assert [p.coords["setting"] for p in pts] == [0, 1]


@pytest.mark.parametrize("text, match", [
    ('task = "xy-xor"\ncolour = 1', "colour"),
    ('task = "xy-xor"\n[base]\nn_unitz = 5', "n_unitz"),
    ('task = "xy-xor"\n[base]\nn_units = "five"', "base.n_units must be of type int"),
    ('task = "xy-xor"\n[sweep]\nbeta = ["a", "b"]', "sweep.beta must be of type float"),
    ('task = "xy-xor"\n[sweep]\nn_units = []', "sweep.n_units is an empty sweep"),
    ('task = "xy-xor"\n[sweep]\nn_units = {start = 3}', "sweep.n_units: a range needs"),
    ('task = "xy-xor"\n[sweep]\nn_runz = [1, 2]', "n_runz"),
    ('task = "heat-equation"', "unknown task 'heat-equation'"),
    ('[base]\nn_units = 5', "must name a task"),
    ('task = "xy-xor"\n[base]\nn_units = 5\n[sweep]\nn_units = [3]', "both in base and swept"),
    ('task = "xy-xor"\n[[zip]]\ndim = "a"\nn_units = [3, 4]\nn_inits = [1]', "equal length"),
    ('task = "xy-xor"\n[base\n', "not valid TOML"),
    ('task = "xy-digits"\n[base]\nshared_steps = "yes"', "base.shared_steps must be of type bool"),
    ('task = "xy-digits"\n[base]\nt_max = true', "base.t_max must be of type float"),
    # ranges, tables and values that today raise raw exceptions or are accepted
    ('task = "xy-xor"\n[sweep]\nbeta = {start = 0.1, stop = 0.2, step = 0}', "sweep.beta.step = 0"),
    ('task = "xy-xor"\n[sweep]\nbeta = {start = 0.2, stop = 0.1, step = 0.05}', "sweep.beta.step = 0.05 gives no"),
    ('task = "xy-xor"\n[sweep]\nbeta = {start = 0.1, stop = 0.2, num = -1}', "sweep.beta.num must be an integer"),
    ('task = "xy-xor"\n[sweep]\nbeta = {start = 0.1, stop = 0.2, num = 1000000000}', "sweep.beta.num must be an"),
    ('task = "xy-xor"\n[sweep]\nbeta = {start = 0.1, stop = 0.2, num = 2.5}', "sweep.beta.num must be an integer"),
    ('task = "xy-xor"\n[sweep]\nbeta = {start = "a", stop = 0.2, num = 2}', "sweep.beta.start must be a finite"),
    ('task = "xy-xor"\n[sweep]\nbeta = {start = 0.1, stop = inf, num = 2}', "sweep.beta.stop must be a finite"),
    ('task = "xy-xor"\nsweep = [1, 2]', "sweep must be a table"),
    ('task = "xy-xor"\nbase = 3', "base must be a table"),
    ('task = "xy-xor"\nzip = {dim = "a"}', "zip must be an array of tables"),
    ('task = "xy-xor"\n[sweep]\nlearning_rate = [1, 1.0]', "sweep.learning_rate repeats a value: 1 and 1.0"),
    ('task = 5', "task must be a string"),
    # range checks of every point run when the file is loaded
    ('task = "xy-xor"\n[sweep]\nn_iterations = [5, 0]', "n_iterations"),
])
def test_invalid_study_files_fail_before_any_work(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InvalidInputError, match=match):
        load_study(path)
    assert not (tmp_path / "results").exists()


def test_xy_tasks_take_the_fixed_horizon_protocol(tmp_path):
    path = tmp_path / "horizon.toml"
    path.write_text('task = "xy-digits"\n[base]\nmethod = "ode"\nt_max = 100\nshared_steps = true\ntol = 1e-6\n')
    (point,) = load_study(path).points()
    relax = DigitsConfig(**point.config).training().relax
    assert (relax.method, relax.t_max, relax.shared_steps, relax.rtol, relax.atol) == ("ode", 100.0, True, 1e-8, 1e-8)
    assert DigitsConfig().training().relax == RelaxOptions()  # the default: Newton


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory):
    """One run of a two-point study whose first point fails: a learning rate of 1e300 overflows the parameters at
    the first update (the task itself raises). Returns (study, summary); the tests that use it copy it to change it."""
    study = load_study(_study(tmp_path_factory.mktemp("failing"), "learning_rate = [1e300, 0.1]"))
    return study, run_study(study, progress=False)


@pytest.fixture(scope="module")
def sizes_run(tmp_path_factory):
    """One local run of a study of two network sizes (XY units 0..3 and 0..4)."""
    study = load_study(_study(tmp_path_factory.mktemp("sizes"), "n_units = [4, 5]"))
    assert not run_study(study, progress=False).failed
    return study


def test_failing_point_is_recorded_and_others_complete(failing_run):
    study, summary = failing_run
    failing = "learning_rate-1e+300"
    assert summary.done == 1 and list(summary.failed) == [failing]
    assert "NaN or infinite" in summary.failed[failing]
    assert (study.points_dir / "learning_rate-0.1.nc").exists() and (study.points_dir / f"{failing}.error.json").exists()
    ds = collect(study, lazy=False)
    assert ds.attrs["missing_points"] == [failing]
    assert np.isnan(ds.distance.sel(learning_rate=1e300)).all() and np.isfinite(ds.distance.sel(learning_rate=0.1)).all()
    back = read_netcdf(collect_to_file(study))  # a missing point's text is empty, not another point's
    assert list(back.role.sel(learning_rate=1e300).values) == [""] * 5
    assert back.role.sel(learning_rate=0.1).values[0] == "input"
    assert list(back.point.values) == [failing, "learning_rate-0.1"]
    np.testing.assert_array_equal(back.learning_rate.values, [1e300, 0.1])  # a float axis
    assert back.point_attrs.sel(learning_rate=1e300).item() == ""
    provenance = json.loads(back.point_attrs.sel(learning_rate=0.1).item())  # each point's provenance is kept
    assert provenance["config"]["learning_rate"] == 0.1 and "pyosc_version" in provenance
    assert "data_sha256" in provenance and "point_config_sha256" in provenance


def test_workers_end_with_a_killed_runner(tmp_path):
    """SIGKILL of the runner alone (not its process group) also ends its worker mid-point."""
    path = tmp_path / "w.toml"
    path.write_text('task = "xy-xor"\n[base]\nn_runs = 3\nn_iterations = 100000\n[sweep]\nn_units = [5]\n')
    proc = subprocess.Popen([sys.executable, "-m", "pyosc", "study", "run", str(path), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    if not children.exists():
        proc.kill()
        pytest.skip("needs Linux /proc to find the worker processes")
    deadline, workers = time.time() + 120, []
    while time.time() < deadline and not workers:
        workers = [pid for pid in children.read_text().split()
                   if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")]
        time.sleep(0.2)
    assert workers, "no worker process started"
    proc.kill()
    proc.wait()

    def running(pid: str) -> bool:
        stat = Path(f"/proc/{pid}/stat")
        return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"

    deadline = time.time() + 30
    while time.time() < deadline and any(running(pid) for pid in workers):
        time.sleep(0.2)
    orphans = [pid for pid in workers if running(pid)]
    for pid in orphans:  # do not leave them running when the test fails
        os.kill(int(pid), signal.SIGKILL)
    assert not orphans


def test_collected_netcdf_round_trip(sizes_run):
    study = sizes_run
    lazy = collect(study)
    assert lazy.distance.chunks is not None  # dask-backed
    values = lazy.distance.values
    back = read_netcdf(collect_to_file(study))
    np.testing.assert_array_equal(back.distance.values, values)
    assert back.distance.dims == ("n_units", "run", "iteration")
    np.testing.assert_array_equal(back.n_units.values, [4, 5])
    assert back.role.sel(n_units=4).values.tolist() == ["input", "input", "hidden", "output", ""]  # padded text
    assert back.psi.attrs["units"] == "rad" and back.wall_time_s.attrs["units"] == "s"
    assert back.attrs["config"]["base"] == {"n_runs": 3, "n_iterations": 8, "eval_every": 4}
    assert back.attrs["config"]["axes"]["n_units"]["values"] == [[4], [5]]
    point = read_netcdf(study.points_dir / "n_units-4.nc")
    assert point.attrs["config"]["n_units"] == 4 and point.attrs["config"]["n_iterations"] == 8


def test_repository_study_files_are_valid():
    studies = Path(__file__).resolve().parents[1] / "studies"
    files = sorted(studies.glob("*.toml"))
    assert len(files) >= 4
    for f in files:
        assert load_study(f).points()


def test_checkpointed_task_resumes_a_killed_point(tmp_path):
    """A long point continues from its checkpoint after a kill: the result equals an uninterrupted run, the time
    before the kill counts, and the checkpoint is removed once the point file exists."""
    from pyosc.experiments import xor
    from pyosc.studies import run_point
    from pyosc.training.loop import TrainingInterrupted

    base = "n_runs = 3\nn_iterations = 12\neval_every = 4"
    for folder in ("whole", "resumed"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "s.toml").write_text(f'task = "xy-xor"\n[base]\n{base}\n')
    whole, resumed = load_study(tmp_path / "whole" / "s.toml"), load_study(tmp_path / "resumed" / "s.toml")
    (point,) = whole.points()
    assert run_point(whole, point).state == "done"
    ckpt = resumed.point_path(point, ".ckpt.npz")
    ckpt.parent.mkdir(parents=True)

    def stop_at_7(done, total, metrics):
        if done == 7:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted):  # the "killed" first part
        xor.run(xor.Config(**point.config), checkpoint=ckpt, progress=stop_at_7)
    steps, before = checkpoint_progress(ckpt)
    assert steps == (7, 12)
    outcome = run_point(resumed, point)
    assert outcome.state == "done"
    assert not ckpt.exists()
    a, b = read_netcdf(whole.point_path(point)), read_netcdf(resumed.point_path(point))
    for name in ("W", "distance", "accuracy"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    assert b.attrs["point_seconds"] == pytest.approx(before + outcome.seconds)  # the time before the kill counts


HIDDEN = ('task = "scattering-digits"\n[base]\nn_iterations = 4\neval_every = 2\nbatch_size = 500\n'
          "[sweep]\nhidden = [0, 3]\n")


@pytest.fixture(scope="module")
def hidden_run(tmp_path_factory):
    """One local run of a study of scattering networks with and without a hidden layer (no compilation)."""
    from pyosc.data.datasets import get_data_home

    if not (get_data_home() / "optdigits.tra").exists():
        pytest.skip("optdigits not found (set PYOSC_DATA_HOME)")
    path = tmp_path_factory.mktemp("hidden") / "h.toml"
    path.write_text(HIDDEN)
    study = load_study(path)
    assert not run_study(study, progress=False).failed
    return study


def test_points_of_different_sizes_collect_and_plot(hidden_run):
    """Scattering networks with and without a hidden layer (parameter arrays of different sizes, no
    coordinates) collect into one Dataset, padded with NaN, and plot as accuracy curves."""
    from pyosc.plots import plot_study

    ds = read_netcdf(collect_to_file(hidden_run))
    assert ds.test_accuracy.dims == ("hidden", "evaluation") and ds.sizes["evaluation"] == 2
    assert np.isfinite(ds.test_accuracy).all()
    hidden = ds.final_detuning_1  # the hidden layer (3 modes) at hidden = 3, the output layer (10) without one
    assert np.isfinite(hidden.sel(hidden=0)).sum() == 10 and np.isfinite(hidden.sel(hidden=3)).sum() == 3
    assert np.isnan(ds.final_detuning_2.sel(hidden=0)).all()
    assert [p.name for p in plot_study(hidden_run)] == ["accuracy_curves.png"]


def test_dask_local_cluster_matches_local_executor(hidden_run, tmp_path):
    pytest.importorskip("dask.distributed")
    (tmp_path / "h.toml").write_text(HIDDEN)
    distributed = load_study(tmp_path / "h.toml")
    assert not run_study(distributed, executor="dask", workers=2, progress=False).failed
    a, b = collect(hidden_run, lazy=False), collect(distributed, lazy=False)
    for name in ("test_accuracy", "final_detuning_1", "final_detuning_2"):  # to the last bits (BLAS threads)
        np.testing.assert_allclose(a[name].values, b[name].values, rtol=1e-12, err_msg=name)


def test_status_reports_each_point(failing_run, tmp_path, capsys):
    """`pyosc study status`: done (with its time), failed (with the error), started (steps from the checkpoint
    and the time left at that pace) and pending points; nothing is run or changed."""
    from pyosc.cli import main
    from pyosc.results import write_checkpoint
    from pyosc.studies import study_status

    path = _copy(failing_run[0], tmp_path)  # learning rate 1e300 failed (the parameters overflow), 0.1 completed
    path.write_text(path.read_text().replace("learning_rate = [1e300, 0.1]", "learning_rate = [1e300, 0.1, 0.2, 0.3]"))
    study = load_study(path)
    write_checkpoint(study.points_dir / "learning_rate-0.2.ckpt.npz", {}, {}, progress=(2, 8), elapsed=30.0)
    files = sorted(study.points_dir.iterdir())
    status = study_status(study)
    assert [s.state for s in status] == ["failed", "done", "started", "pending"]
    assert "NaN or infinite" in status[0].error and status[1].seconds > 0
    assert status[2].steps == (2, 8) and status[2].seconds == 30.0
    assert "2 of 8 steps (25%) in 30 s, about 90 s left" in str(status[2])
    assert sorted(study.points_dir.iterdir()) == files
    assert main(["study", "status", str(path)]) == 0
    assert "4 points: 1 done, 1 started, 1 failed, 1 pending" in capsys.readouterr().out


# --- studies that verify, cooperate and survive their workers ----------------------------------------------------

SCATTERING = """
task = "scattering-digits"
[base]
hidden = 3
eval_every = 2
batch_size = 500
[sweep]
{sweep}
"""


def _file(study, point, suffix: str = ".nc") -> Path:
    return study.points_dir / f"{point.name}{suffix}"


def _optdigits():
    from pyosc.data.datasets import get_data_home

    if not (get_data_home() / "optdigits.tra").exists():
        pytest.skip("optdigits not found (set PYOSC_DATA_HOME)")


def _worker_pids(pid: int) -> list[str]:
    """The spawned worker processes of process ``pid`` (started from any of its threads)."""
    children = [c for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    return [c for c in children if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text(errors="replace")]


def test_sigkill_midway_then_resume(tmp_path):
    """SIGKILL of `pyosc study run` (the runner and its worker) in the middle of its third point: the rerun skips
    the finished points and computes the others, each exactly once."""
    _optdigits()
    path = tmp_path / "k.toml"
    path.write_text(SCATTERING.format(sweep="n_iterations = [4, 6, 30, 8]"))  # the third: several seconds
    study = load_study(path)
    cmd = [sys.executable, "-m", "pyosc", "study", "run", str(path), "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(study.points_dir.glob("*.nc"))) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its worker process
    proc.wait()
    before = sorted(p.name for p in study.points_dir.glob("*.nc"))
    assert 2 <= len(before) < 4, before
    summary = run_study(study, progress=False)
    assert summary.skipped == len(before) and summary.done == 4 - len(before) and not summary.failed
    files = sorted(study.points_dir.glob("*.nc"))
    assert [f.stem for f in files] == sorted(p.name for p in study.points())  # each point exactly once
    assert not list(study.points_dir.glob(".*.tmp"))
    for f in files:  # readable and complete: evaluated every 2 iterations
        assert read_netcdf(f).sizes["evaluation"] == int(f.stem.rsplit("-", 1)[1]) // 2


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """One run of a three-point scattering study (no compilation: a few seconds) whose first point has a corrupt
    checkpoint and a killed writer's temporary file, and whose last (long) point's worker is killed (SIGKILL).
    Returns (study, summary of the run or the exception it raised, the warnings it gave)."""
    import threading

    _optdigits()
    if not Path(f"/proc/{os.getpid()}/task").exists():
        pytest.skip("needs Linux /proc to find the worker process")
    path = tmp_path_factory.mktemp("killed") / "k.toml"
    path.write_text(SCATTERING.format(sweep="n_iterations = [4, 6, 300]"))  # the last: about a minute
    study = load_study(path)
    first, long = study.points()[0], study.points()[-1]
    study.points_dir.mkdir(parents=True)
    _file(study, first, ".ckpt.npz").write_bytes(b"a truncated checkpoint")
    (study.points_dir / f".{first.name}.nc.a1b2c3.tmp").write_bytes(b"left by a killed writer")
    result = []

    def run():
        with warnings.catch_warnings(record=True) as caught:  # only this thread warns meanwhile
            warnings.simplefilter("always")
            try:
                result.append(run_study(study, progress=False))
            except Exception as e:  # noqa: BLE001 (the tests say what went wrong)
                result.append(e)
        result.append([str(w.message) for w in caught])

    runner = threading.Thread(target=run)
    runner.start()
    deadline, owner = time.time() + 120, study.points_dir / f".{long.name}.owner.json"

    def long_point_started() -> bool:  # it claimed it, or the two others are over
        over = [f for p in study.points()[:2] for f in (_file(study, p), _file(study, p, ".error.json")) if f.exists()]
        return owner.exists() or len(over) == 2

    while time.time() < deadline and not long_point_started() and runner.is_alive():
        time.sleep(0.1)
    time.sleep(0.5)
    for pid in _worker_pids(os.getpid()):  # the one worker, now on the long point
        os.kill(int(pid), signal.SIGKILL)
    runner.join(120)
    assert not runner.is_alive()
    return study, result[0], result[1]


def test_a_killed_worker_fails_its_point_not_the_study(killed_run):
    study, summary, _ = killed_run
    assert not isinstance(summary, BaseException), summary
    long = study.points()[-1]
    assert summary.done == 2 and list(summary.failed) == [long.name]
    assert "died (killed by SIGKILL)" in summary.failed[long.name]
    assert "died (killed by SIGKILL)" in _file(study, long, ".error.json").read_text()


def test_a_corrupt_checkpoint_is_set_aside_and_the_point_restarts(killed_run):
    study, _, warned = killed_run
    first = study.points()[0]
    assert any(f"checkpoint {_file(study, first, '.ckpt.npz')} could not be resumed (unreadable); set aside as" in w
               for w in warned), warned
    assert read_netcdf(_file(study, first)).sizes["evaluation"] == 2  # iterations 2 and 4
    (aside,) = study.points_dir.glob(f"{first.name}.ckpt.npz.corrupt-*")
    assert aside.read_bytes() == b"a truncated checkpoint"
    assert not _file(study, first, ".ckpt.npz").exists()


def test_the_runner_that_claims_a_point_removes_its_stale_temporary_files(killed_run):
    study = killed_run[0]
    assert not list(study.points_dir.glob(".*.tmp"))


def _copy(study, tmp_path: Path):
    """The study's file and folder copied to ``tmp_path``; the copy's study file path."""
    import shutil

    shutil.copytree(study.output.parents[1], tmp_path / "copy")  # the output is <folder>/results/<name>
    return tmp_path / "copy" / f"{study.name}.toml"


def test_editing_base_invalidates_finished_points(killed_run, tmp_path):
    from pyosc.studies import study_status

    path = _copy(killed_run[0], tmp_path)
    path.write_text(path.read_text().replace("batch_size = 500", "batch_size = 400"))
    study = load_study(path)
    first, second, long = study.points()
    with pytest.warns(UserWarning) as warned:
        assert [p.name for p in pending_points(study)] == [first.name, second.name, long.name]
    assert [str(w.message).split(" was computed with another configuration")[0] for w in warned] == [
        str(_file(study, first)), str(_file(study, second))]
    assert [s.state for s in study_status(study)] == ["invalid", "invalid", "failed"]


def test_a_truncated_point_file_is_redone_and_never_crashes_status_or_collect(killed_run, tmp_path):
    from pyosc.studies import study_status

    study = load_study(_copy(killed_run[0], tmp_path))
    second, long = study.points()[1:]
    data = _file(study, second).read_bytes()
    _file(study, second).write_bytes(data[:len(data) // 2])
    with pytest.warns(UserWarning, match=f"{_file(study, second)} cannot be read"):
        assert [p.name for p in pending_points(study)] == [second.name, long.name]
    assert [s.state for s in study_status(study)] == ["done", "invalid", "failed"]
    with pytest.warns(UserWarning, match=f"{_file(study, second)} cannot be read"):
        ds = collect(study, lazy=False)
    assert ds.attrs["missing_points"] == [second.name, long.name]
    assert np.isfinite(ds.test_accuracy.sel(n_iterations=4)).all() and np.isnan(ds.test_accuracy.sel(n_iterations=6)).all()


def test_a_starting_run_leaves_other_runners_temporary_files(killed_run, tmp_path):
    study = load_study(_copy(killed_run[0], tmp_path))
    second = study.points()[1]
    theirs = study.points_dir / f".{second.name}.nc.x7y8z9.tmp"  # another runner is writing it
    theirs.write_bytes(b"being written")
    pending_points(study)
    assert theirs.exists()


def test_two_runners_compute_every_point_once(tmp_path):
    """Two `pyosc study run` on one study at once: no error, and between them every point is computed once."""
    _optdigits()
    path = tmp_path / "c.toml"
    path.write_text(SCATTERING.format(sweep="seed = [0, 1, 2, 3, 4, 5]").replace("hidden = 3", "hidden = 3\nn_iterations = 6"))
    cmd = [sys.executable, "-m", "pyosc", "study", "run", str(path), "--quiet"]
    runners = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [r.communicate(timeout=300) for r in runners]
    for r, (out, err) in zip(runners, results):
        assert r.returncode == 0 and "Traceback" not in err, err
    done = [int(re.search(r"(\d+) already complete, (\d+) done", out).group(2)) for out, _ in results]
    assert sum(done) == 6, [out for out, _ in results]
    study = load_study(path)
    assert not pending_points(study) and not list(study.points_dir.glob("*.error.json"))
    assert not list(study.points_dir.glob(".*.tmp"))


def test_plot_before_collect_says_to_collect(tmp_path, capsys):
    from pyosc.cli import main

    path = _study(tmp_path, "n_units = [4, 5]")
    assert main(["study", "plot", str(path)]) == 2
    assert "run 'pyosc study collect" in capsys.readouterr().err


def test_unreachable_dask_scheduler_is_a_pyosc_error(tmp_path):
    pytest.importorskip("dask.distributed")
    study = load_study(_study(tmp_path, "n_units = [4]"))
    with pytest.raises(InvalidInputError, match="cannot reach the dask scheduler at 'tcp://127.0.0.1:9'"):
        run_study(study, executor="dask", scheduler="tcp://127.0.0.1:9", progress=False, connect_timeout=1)
