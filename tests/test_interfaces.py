"""The scikit-learn style classifier and the CLI."""
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits

from pyosc.cli import main
from pyosc.errors import InvalidInputError
from pyosc.estimators import XYClassifier
from pyosc.results import read_netcdf


def test_classifier_fit_predict_score():
    X, y = load_digits(return_X_y=True)
    keep = y < 3
    X, y = X[keep][:240], y[keep][:240]
    clf = XYClassifier(hidden="layered:8", learning_rate=0.05, n_iterations=60, batch_per_class=20,
                       input_range=(0, 16), method="continuation", random_state=0)
    assert clone(clf).get_params()["hidden"] == "layered:8"
    clf.fit(X[:180], y[:180])
    assert clf.predict(X[180:]).shape == (60,)
    assert set(np.unique(clf.predict(X))) <= {0, 1, 2}
    assert clf.score(X[180:], y[180:]) > 0.6  # three classes: chance is 1/3
    assert clf.history_.sizes["iteration"] == 60 and clf.params_["W"].shape == (75, 75)


def test_classifier_bad_inputs():
    X = np.random.default_rng(0).random((20, 4))
    with pytest.raises(InvalidInputError, match="y must have shape"):
        XYClassifier().fit(X, np.zeros(19))
    with pytest.raises(InvalidInputError, match="hidden"):
        XYClassifier(hidden="conv:3").fit(X, np.arange(20) % 2)
    with pytest.raises(InvalidInputError, match="not fitted"):
        XYClassifier().predict(X)
    with pytest.raises(InvalidInputError, match="two classes"):
        XYClassifier().fit(X, np.zeros(20))


def test_cli_trains_xor_and_writes_netcdf(tmp_path, capsys):
    out = tmp_path / "xor.nc"
    assert main(["train", "xor", "--n-runs", "3", "--n-iterations", "30", "--quiet", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "final distance" in text and "xor.nc" in text
    ds = read_netcdf(out)
    assert ds.sizes["run"] == 3 and ds.sizes["iteration"] == 30
    assert ds.attrs["config"]["n_iterations"] == 30


def test_cli_fixed_horizon_protocol_with_checkpoint(tmp_path, capsys):
    out, ckpt = tmp_path / "xor.nc", tmp_path / "xor.ckpt.npz"
    args = ["train", "xor", "--n-runs", "2", "--n-iterations", "5", "--quiet", "--out", str(out), "--method", "ode",
            "--t-max", "2", "--shared-steps", "--tol", "1e-6", "--checkpoint", str(ckpt)]
    assert main(args) == 0
    relax = read_netcdf(out).attrs["training"]["relax"]
    assert relax["t_max"] == 2.0 and relax["shared_steps"] and relax["rtol"] == 1e-8
    assert read_netcdf(out).unconverged.values.min() > 0  # t = 2 is far from steady
    assert not ckpt.exists()


def test_cli_reports_bad_topology(capsys):
    assert main(["train", "digits", "--arch", "ring:5", "--n-iterations", "1", "--quiet"]) == 2
    assert "unknown topology 'ring:5'" in capsys.readouterr().err


def test_readme_example_runs(tmp_path, monkeypatch):
    """The README's Python example runs as written and its 100 XOR runs learn (final distance < 1e-2)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    assert blocks, "the README has no Python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 (our own README)
    assert (tmp_path / "xor.nc").is_file()
    assert float(namespace["history"].distance.isel(iteration=-1).max()) < 1e-2
