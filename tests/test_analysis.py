"""Analysis helpers: learning speed, accuracy summaries, confusion matrices and their figures."""
import numpy as np
import pytest
import xarray as xr

from pyosc import analysis, plots
from pyosc import topology as T
from pyosc.data import datasets
from pyosc.engines.base import RelaxOptions
from pyosc.errors import InvalidInputError
from pyosc.models import xy
from pyosc.training.ep import EPConfig, train_ep


def test_learning_speed_of_an_exponential_decay():
    it = np.arange(400)
    d = xr.DataArray(np.stack([10 ** (-0.01 * it), 10 ** (-0.01 * it)]), dims=("run", "iteration"),
                     coords={"iteration": it})
    assert float(analysis.learning_speed(d, 300)) == pytest.approx(0.01, rel=1e-10)
    assert float(analysis.speed_per_init(analysis.learning_speed(d, 300), 4)) == pytest.approx(0.0025)
    with pytest.raises(InvalidInputError, match="first"):
        analysis.learning_speed(d, 1000)


def test_accuracy_summaries_and_confusion():
    acc = xr.DataArray([[0.2, 0.9, 0.8]], dims=("run", "evaluation"))
    assert analysis.best_accuracy(acc).item() == 0.9 and analysis.final_accuracy(acc).item() == 0.8
    m = analysis.confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), 3)
    np.testing.assert_array_equal(m, [[1, 1, 0], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(InvalidInputError, match="shape"):
        analysis.confusion_matrix(np.zeros(3, int), np.zeros(2, int), 2)


def test_confusion_of_snapshots_from_a_digits_history(tmp_path):
    train, test = datasets.digits_paper_split(n_train_per_class=20, n_test_per_class=5)
    topo = T.layered([64, 6, 10])
    p = xy.init_params(topo, np.random.default_rng(0), scheme="layered")
    config = EPConfig(n_iterations=4, learning_rate=0.05, batch_per_class=3, snapshots=(0, 4),
                      relax=RelaxOptions(method="continuation"))
    ds = train_ep(topo, train, p, config, test=test, progress=False)
    np.testing.assert_array_equal(ds.snapshot.values, [0, 4])
    np.testing.assert_array_equal(ds.W_snapshot.isel(snapshot=0, run=0).values, p.W)
    np.testing.assert_array_equal(ds.W_snapshot.isel(snapshot=1).values, ds.W.values)
    mats = [analysis.xy_confusion(ds, test, topo, snapshot=s, options=config.relax) for s in (0, 4)]
    assert all(m.shape == (10, 10) and m.sum() == 50 for m in mats)
    np.testing.assert_array_equal(mats[1], analysis.xy_confusion(ds, test, topo, options=config.relax))
    fig = plots.confusion_panels(mats, ["iteration 0", "iteration 4"])
    assert len(fig.axes) == 2
    conf = ds.confusion.isel(run=0)  # recorded by train_ep at the snapshots, same seed and relaxation
    assert conf.dims == ("snapshot", "true_class", "predicted_class")
    for s, m in zip((0, 4), mats):
        np.testing.assert_array_equal(conf.sel(snapshot=s).values, m)
    grid = plots.confusion_panels([mats, mats[:1]], [["a", "b"], ["c"]], row_labels=["x", "y"])
    assert len(grid.axes) == 4
