"""The shared training loop: every trainer stops cleanly on Ctrl-C with a checkpoint and resumes identically;
checkpoints of other settings or corrupt files are refused with the path; progress says "compiling" first.
`pyosc train`: --out checked before training, --overwrite, --restart, checkpoints removed after success."""
import functools
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict

import numpy as np
import pytest

from pyosc.errors import InvalidInputError
from pyosc.experiments import onn_memory, optomech_xor, xor
from pyosc.results import checkpoint_progress
from pyosc.training.loop import ProgressBar, TrainingInterrupted, evaluation_iterations


def _scattering():
    """A tiny layered scattering network on random data (no data files needed)."""
    from pyosc.training.green import TrainConfig, paper_initialisation, train_network

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 5, (60, 8))
    y = (x[:, 0] > x[:, 1]).astype(int)
    net = paper_initialisation([8, 4, 2], np.random.default_rng(1))
    cfg = TrainConfig(n_iterations=12, batch_size=20, eval_every=4, optimizer="adam", learning_rate=0.01)
    return lambda **kw: train_network(net, x, y, x, y, cfg, **kw)[2]


# The XY and ONN trainers take the shapes and options of tests/test_ep.py's XOR runs and of
# tests/test_onn_memory.py's three letters: their programs are compiled once (the suite's compilation cache).
TRAINERS = {
    "xy-ep": lambda **kw: xor.run(xor.Config(n_runs=3, n_iterations=10, eval_every=4, optimizer="adam",
                                             learning_rate=0.05), **kw),
    "onn-ep": lambda **kw: onn_memory.run(onn_memory.Config(letters="TEK", n_iterations=6), **kw),
    "optomech-adjoint": lambda **kw: optomech_xor.run(optomech_xor.Config(
        model="optomech-phase", n_runs=2, n_iterations=6, n_inits=1, eval_every=3, t1=300.0, patience=2), **kw),
    "scattering": lambda **kw: _scattering()(**kw),
}


@functools.cache
def history(name: str):
    """The uninterrupted history of ``TRAINERS[name]``, trained once per test session (tests/test_netcdf_cf.py
    writes these too)."""
    return TRAINERS[name]()


@pytest.mark.parametrize("name", list(TRAINERS))
def test_sigint_saves_a_checkpoint_and_the_resumed_run_is_identical(name, tmp_path, interrupt_at):
    train = TRAINERS[name]
    handler = signal.getsignal(signal.SIGINT)
    whole = history(name)
    ckpt = tmp_path / "run.ckpt.npz"
    with pytest.raises(TrainingInterrupted, match="checkpoint saved to") as stop:
        train(checkpoint=ckpt, progress=interrupt_at(3))
    assert stop.value.iteration == 3 and stop.value.checkpoint == ckpt
    assert checkpoint_progress(ckpt)[0][0] == 3
    resumed = train(checkpoint=ckpt)
    numeric = [v for v in whole.data_vars if whole[v].dtype.kind in "biuf"]
    assert numeric
    for v in numeric:
        np.testing.assert_array_equal(resumed[v].values, whole[v].values, err_msg=v)
    assert signal.getsignal(signal.SIGINT) is handler  # the loop's handler is gone


def test_checkpoint_of_other_settings_or_corrupt_is_refused(tmp_path, interrupt_at):
    ckpt = tmp_path / "run.ckpt.npz"
    config = xor.Config(n_runs=3, n_iterations=6, eval_every=0)
    with pytest.raises(TrainingInterrupted):
        xor.run(config, checkpoint=ckpt, progress=interrupt_at(2))
    with pytest.raises(InvalidInputError, match=r"other settings: learning_rate \(0.1 there, 0.2 here\)"):
        xor.run(xor.Config(n_runs=3, n_iterations=6, eval_every=0, learning_rate=0.2), checkpoint=ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(InvalidInputError, match=f"checkpoint {ckpt} cannot be read.*move it away.*--restart"):
        xor.run(config, checkpoint=ckpt)
    with pytest.raises(InvalidInputError, match="is a directory"):
        xor.run(config, checkpoint=tmp_path)


def test_evaluation_schedule():
    assert evaluation_iterations(10, 4) == [0, 4, 8, 10]
    assert evaluation_iterations(8, 4, at_start=False) == [4, 8]
    assert evaluation_iterations(8, 0) == []


def test_progress_bar_says_compiling_until_the_first_iteration(capsys):
    bar = ProgressBar("EP test")
    bar(0, 3, {})
    assert "compiling" in bar.bar.desc
    bar(1, 3, {"distance": 0.5})
    assert bar.bar.desc == "EP test" and bar.bar.n == 1 and bar.bar.initial == 1  # its rate starts here
    bar(3, 3, {"distance": 0.1})
    assert bar.bar.n == 3
    resumed = ProgressBar("EP test")  # a resumed run: no rate from the iterations done before it
    for done in (13735, 13736, 13737):
        resumed(done, 30000, {})
    assert resumed.bar.initial == 13736 and resumed.bar.n == 13737 and "compiling" not in resumed.bar.desc


def test_cli_ctrl_c_exits_130_with_the_checkpoint(tmp_path):
    """Ctrl-C of `pyosc train`: a message that says where the checkpoint is and how to resume, exit status 130,
    no traceback; the rerun resumes (here: refuses other settings, naming them)."""
    out, ckpt = tmp_path / "x.nc", tmp_path / "x.nc.ckpt.npz"
    cmd = [sys.executable, "-m", "pyosc", "train", "xor", "--n-runs", "3", "--n-iterations", "1000000",
           "--eval-every", "0", "--checkpoint-seconds", "0", "--quiet", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not ckpt.exists():  # training has started
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"checkpoint saved to {ckpt}; rerun the same command to resume" in stderr
    assert ckpt.exists() and not out.exists()
    rerun = subprocess.run(cmd[:-2] + ["--learning-rate", "0.2", "--out", str(out)], capture_output=True, text=True,
                           check=False,
                           timeout=120)
    assert rerun.returncode == 2 and "learning_rate (0.1 there, 0.2 here)" in rerun.stderr


# --- pyosc train: outputs and checkpoints ---------------------------------------------------------------------

def _optdigits():
    from pyosc.data.datasets import get_data_home

    if not (get_data_home() / "optdigits.tra").exists():
        pytest.skip("optdigits not found (set PYOSC_DATA_HOME)")


SCATTERING = ["--hidden", "3", "--n-iterations", "6", "--eval-every", "2", "--batch-size", "500", "--quiet"]


def test_out_is_checked_before_training(tmp_path, capsys):
    from pyosc.cli import main

    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "x.nc"  # its folder is a file
    t = time.perf_counter()
    assert main(["train", "xor", "--n-runs", "2", "--n-iterations", "100000", "--quiet", "--out", str(out)]) == 2
    assert time.perf_counter() - t < 5  # refused before training
    assert f"output {out} cannot be written" in capsys.readouterr().err


def test_existing_output_is_replaced_only_with_overwrite(tmp_path, capsys):
    from pyosc.cli import main
    from pyosc.results import read_netcdf

    _optdigits()
    out = tmp_path / "run.nc"
    out.write_text("an earlier result")
    assert main(["train", "scattering-digits", *SCATTERING, "--out", str(out)]) == 2
    assert f"output {out} exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == "an earlier result"
    assert main(["train", "scattering-digits", *SCATTERING, "--out", str(out), "--overwrite"]) == 0
    assert read_netcdf(out).attrs["config"]["hidden"] == 3


@pytest.mark.parametrize("flag, value, key", [("--learning-rate", "0.3", "learning_rate"), ("--seed", "1", "seed"),
                                              ("--loss", "mse", "loss"), ("--background", "9.0", "background")])
def test_scattering_never_resumes_a_checkpoint_of_other_settings(flag, value, key, tmp_path, capsys, interrupt_at):
    """A checkpoint of `pyosc train scattering-digits` is resumed only under the same settings (trainer settings such
    as the learning rate, and task settings such as the data's background); the refusal names the key, and the
    checkpoint is removed once the same command has finished."""
    from pyosc.cli import main
    from pyosc.experiments import scattering_digits
    from pyosc.training.loop import recording

    _optdigits()
    out, ckpt = tmp_path / "run.nc", tmp_path / "run.nc.ckpt.npz"
    config = scattering_digits.Config(hidden=3, n_iterations=6, eval_every=2, batch_size=500)
    with recording(task=scattering_digits.__name__, config=asdict(config)), pytest.raises(TrainingInterrupted):
        scattering_digits.run(config, checkpoint=ckpt, progress=interrupt_at(2))  # as `pyosc train` would
    assert main(["train", "scattering-digits", *SCATTERING, flag, value, "--out", str(out)]) == 2
    assert re.search(rf"other settings: (config\.)?{key} \(", capsys.readouterr().err)
    assert ckpt.exists() and not out.exists()
    assert main(["train", "scattering-digits", *SCATTERING, "--out", str(out), "--checkpoint-seconds", "0"]) == 0
    assert not ckpt.exists() and out.exists()


def test_restart_sets_the_old_checkpoint_aside(tmp_path, capsys):
    from pyosc.cli import main

    _optdigits()
    out, ckpt = tmp_path / "run.nc", tmp_path / "run.nc.ckpt.npz"
    ckpt.write_bytes(b"not a checkpoint")
    assert main(["train", "scattering-digits", *SCATTERING, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {ckpt} cannot be read" in err and "--restart" in err
    assert main(["train", "scattering-digits", *SCATTERING, "--out", str(out), "--restart"]) == 0
    (aside,) = tmp_path.glob("run.nc.ckpt.npz.old-*")
    assert aside.read_bytes() == b"not a checkpoint" and not ckpt.exists() and out.exists()
