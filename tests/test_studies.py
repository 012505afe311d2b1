"""Parameter studies: validation, crash-safe resumable runs, failures, dask, collection."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pyosc.engines.base import RelaxOptions
from pyosc.errors import InvalidInputError
from pyosc.experiments.digits import Config as DigitsConfig
from pyosc.results import checkpoint_progress, read_netcdf
from pyosc.studies import collect, collect_to_file, load_study, run_study

TINY = """
task = "xy-xor"
[base]
n_runs = 2
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
    assert pts[1].config["learning_rate"] == 0.1 and pts[1].config["n_units"] == 4 and pts[1].config["n_runs"] == 2
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


def test_failing_point_is_recorded_and_others_complete(tmp_path):
    # N = 2 leaves no room for an output unit next to the 2 inputs: the task itself raises
    study = load_study(_study(tmp_path, "n_units = [2, 4]"))
    summary = run_study(study, progress=False)
    assert summary.done == 1 and list(summary.failed) == ["n_units-2"]
    assert "n_outputs" in summary.failed["n_units-2"]
    assert (study.points_dir / "n_units-4.nc").exists() and (study.points_dir / "n_units-2.error.json").exists()
    ds = collect(study, lazy=False)
    assert ds.attrs["missing_points"] == ["n_units-2"]
    assert np.isnan(ds.distance.sel(n_units=2)).all() and np.isfinite(ds.distance.sel(n_units=4)).all()


def test_sigkill_midway_then_resume(tmp_path):
    path = _study(tmp_path, "n_units = [3, 4, 5]\nseed = [0, 1]", name="k")
    study = load_study(path)
    cmd = [sys.executable, "-m", "pyosc", "study", "run", str(path), "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(study.points_dir.glob("*.nc"))) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its worker processes
    proc.wait()
    before = sorted(p.name for p in study.points_dir.glob("*.nc"))
    assert 2 <= len(before) < 6, before
    summary = run_study(study, progress=False)
    assert summary.skipped == len(before) and summary.done == 6 - len(before) and not summary.failed
    files = sorted(study.points_dir.glob("*.nc"))
    assert [f.stem for f in files] == sorted(p.name for p in study.points())  # each point exactly once
    assert not list(study.points_dir.glob(".*.tmp"))
    for f in files:
        assert read_netcdf(f).sizes["iteration"] == 8  # readable and complete


def test_workers_end_with_a_killed_runner(tmp_path):
    """SIGKILL of the runner alone (not its process group) also ends its worker mid-point."""
    path = tmp_path / "w.toml"
    path.write_text('task = "xy-xor"\n[base]\nn_runs = 2\nn_iterations = 100000\n[sweep]\nn_units = [5]\n')
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


def test_dask_local_cluster_matches_local_executor(tmp_path):
    pytest.importorskip("dask.distributed")
    local = load_study(_study(tmp_path / "a", "n_units = [4, 5]"))
    distributed = load_study(_study(tmp_path / "b", "n_units = [4, 5]"))
    assert not run_study(local, progress=False).failed
    assert not run_study(distributed, executor="dask", workers=2, progress=False).failed
    a, b = collect(local, lazy=False), collect(distributed, lazy=False)
    np.testing.assert_allclose(a.distance.values, b.distance.values, rtol=1e-12)
    np.testing.assert_allclose(a.W.values, b.W.values, rtol=1e-12)


def test_collected_netcdf_round_trip(tmp_path):
    study = load_study(_study(tmp_path, "beta = [0.05, 0.1]"))
    run_study(study, progress=False)
    lazy = collect(study)
    assert lazy.distance.chunks is not None  # dask-backed
    values = lazy.distance.values
    back = read_netcdf(collect_to_file(study))
    np.testing.assert_array_equal(back.distance.values, values)
    assert back.distance.dims == ("beta", "run", "iteration")
    np.testing.assert_array_equal(back.beta.values, [0.05, 0.1])
    assert back.psi.attrs["units"] == "rad" and back.wall_time_s.attrs["units"] == "s"
    assert back.attrs["config"]["base"] == {"n_runs": 2, "n_iterations": 8, "eval_every": 4}
    assert back.attrs["config"]["axes"]["beta"]["values"] == [[0.05], [0.1]]
    point = read_netcdf(study.points_dir / "beta-0.05.nc")
    assert point.attrs["config"]["beta"] == 0.05 and point.attrs["config"]["n_iterations"] == 8


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
    from pyosc.studies import _execute
    from pyosc.training.loop import TrainingInterrupted

    config = {"n_runs": 2, "n_iterations": 12, "eval_every": 4}
    whole, resumed = tmp_path / "whole.nc", tmp_path / "resumed.nc"
    assert _execute("xy-xor", config, {}, str(whole))[1] is None
    ckpt = resumed.with_suffix(".ckpt.npz")

    def stop_at_7(done, total, metrics):
        if done == 7:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted):  # the "killed" first part
        xor.run(xor.Config(**config), checkpoint=ckpt, progress=stop_at_7)
    steps, before = checkpoint_progress(ckpt)
    assert steps == (7, 12)
    seconds, error = _execute("xy-xor", config, {}, str(resumed))
    assert error is None
    assert not ckpt.exists()
    a, b = read_netcdf(whole), read_netcdf(resumed)
    for name in ("W", "distance", "accuracy"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    assert b.attrs["point_seconds"] == pytest.approx(before + seconds)  # the time before the kill counts


def test_points_of_different_sizes_collect_and_plot(tmp_path):
    """Scattering networks with and without a hidden layer (parameter arrays of different sizes, no
    coordinates) collect into one Dataset, padded with NaN, and plot as accuracy curves."""
    from pyosc.data.datasets import get_data_home
    from pyosc.plots import plot_study

    if not (get_data_home() / "optdigits.tra").exists():
        pytest.skip("optdigits not found (set PYOSC_DATA_HOME)")
    path = tmp_path / "h.toml"
    path.write_text('task = "scattering-digits"\n[base]\nn_iterations = 4\neval_every = 2\nbatch_size = 500\n'
                    "[sweep]\nhidden = [0, 3]\n")
    study = load_study(path)
    assert not run_study(study, progress=False).failed
    ds = read_netcdf(collect_to_file(study))
    assert ds.test_accuracy.dims == ("hidden", "evaluation") and ds.sizes["evaluation"] == 2
    assert np.isfinite(ds.test_accuracy).all()
    hidden = ds.final_detuning_1  # the hidden layer (3 modes) at hidden = 3, the output layer (10) without one
    assert np.isfinite(hidden.sel(hidden=0)).sum() == 10 and np.isfinite(hidden.sel(hidden=3)).sum() == 3
    assert np.isnan(ds.final_detuning_2.sel(hidden=0)).all()
    assert [p.name for p in plot_study(study)] == ["accuracy_curves.png"]


def test_status_reports_each_point(tmp_path, capsys):
    """`pyosc study status`: done (with its time), failed (with the error), started (steps from the checkpoint
    and the time left at that pace) and pending points; nothing is run or changed."""
    from pyosc.cli import main
    from pyosc.results import write_checkpoint
    from pyosc.studies import _execute, study_status

    path = _study(tmp_path, "n_units = [2, 4, 5, 6]")
    study = load_study(path)
    study.points_dir.mkdir(parents=True)
    for p in study.points()[:2]:  # n_units = 2 fails (no room for an output unit), n_units = 4 completes
        _execute(study.task.name, p.config, p.coords, str(study.points_dir / f"{p.name}.nc"))
    write_checkpoint(study.points_dir / "n_units-5.ckpt.npz", {}, {}, progress=(2, 8), elapsed=30.0)
    files = sorted(study.points_dir.iterdir())
    status = study_status(study)
    assert [s.state for s in status] == ["failed", "done", "started", "pending"]
    assert "n_outputs" in status[0].error and status[1].seconds > 0
    assert status[2].steps == (2, 8) and status[2].seconds == 30.0
    assert "2 of 8 steps (25%) in 30 s, about 90 s left" in str(status[2])
    assert sorted(study.points_dir.iterdir()) == files
    assert main(["study", "status", str(path)]) == 0
    assert "4 points: 1 done, 1 started, 1 failed, 1 pending" in capsys.readouterr().out
