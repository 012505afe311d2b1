"""Analysis of training histories (xarray in, xarray/NumPy out).

Learning speed follows arXiv 2402.08579: the negative slope of a straight-line fit of
log10 <distance>_runs against the iteration over the first K iterations (decades per iteration);
"normalised" speed divides it by the number of random initial states M_init.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from pyosc.errors import InvalidInputError


def learning_speed(distance: xr.DataArray, first: int = 300) -> xr.DataArray:
    """-d log10 <distance>_run / d iteration over iterations 0..first-1, for every other coordinate."""
    if "iteration" not in distance.dims:
        raise InvalidInputError("distance needs an 'iteration' dimension")
    if not 2 <= first <= distance.sizes["iteration"]:
        raise InvalidInputError(f"first must lie in 2..{distance.sizes['iteration']}, got {first}")
    mean = distance.mean("run") if "run" in distance.dims else distance
    logd = np.log10(mean.isel(iteration=slice(0, first)))
    fit = logd.polyfit("iteration", 1)
    speed = -fit.polyfit_coefficients.sel(degree=1, drop=True)
    speed.attrs = {"long_name": f"learning speed (first {first} iterations)", "units": "decades per iteration"}
    return speed


def speed_per_init(speed: xr.DataArray, n_inits) -> xr.DataArray:
    """Learning speed divided by M_init (the cost of a speed-up bought with more initial states)."""
    out = speed / n_inits
    out.attrs = {"long_name": "learning speed per initial state", "units": "decades per iteration"}
    return out


def best_accuracy(accuracy: xr.DataArray) -> xr.DataArray:
    """Maximum over checkpoints (the paper's reported value)."""
    return accuracy.max("checkpoint")


def final_accuracy(accuracy: xr.DataArray) -> xr.DataArray:
    """Accuracy at the last checkpoint."""
    return accuracy.isel(checkpoint=-1)


def confusion_matrix(true_labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[i, j] = samples of class i predicted as j."""
    true_labels, predicted = np.asarray(true_labels), np.asarray(predicted)
    if true_labels.shape != predicted.shape:
        raise InvalidInputError(f"true_labels and predicted differ in shape: {true_labels.shape} vs {predicted.shape}")
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (true_labels, predicted), 1)
    return counts


def xy_confusion(history: xr.Dataset, data, topology, snapshot: int | None = None, run: int = 0, seed: int = 0,
                 engine="jax", options=None) -> np.ndarray:
    """Confusion matrix of an XY history's parameters (final, or at ``snapshot`` iteration) on ``data``, from one
    random initial state per sample (``seed``), relaxed with ``options`` (default: ``RelaxOptions()``)."""
    from pyosc.datasets import decode_classes
    from pyosc.engines.base import RelaxOptions, get_engine
    from pyosc.models import xy
    from pyosc.training.ep import predict_phases

    sel = {"run": run} if snapshot is None else {"run": run, "snapshot": snapshot}
    names = ("W", "h", "psi") if snapshot is None else ("W_snapshot", "h_snapshot", "psi_snapshot")
    params = xy.XYParams(*(history[n].sel(sel).values for n in names))
    out, _ = predict_phases(get_engine(engine), params, topology, data.x, np.random.default_rng(seed),
                            options or RelaxOptions())
    return confusion_matrix(data.labels, decode_classes(out[:, 0, :]), topology.n_outputs)


def snapshot_confusion(history: xr.Dataset, data, topology, **kwargs) -> xr.DataArray:
    """Confusion matrices at every snapshot of every run (``kwargs`` as in :func:`xy_confusion`):
    dims ``(run, snapshot, true_class, predicted_class)``, counts of ``data``'s samples."""
    counts = [[xy_confusion(history, data, topology, snapshot=int(s), run=r, **kwargs)
               for s in history.snapshot.values] for r in range(history.sizes["run"])]
    classes = np.arange(topology.n_outputs)
    return xr.DataArray(np.asarray(counts, dtype=np.int64), dims=("run", "snapshot", "true_class", "predicted_class"),
                        coords={"snapshot": history.snapshot.values, "true_class": classes, "predicted_class": classes},
                        attrs={"long_name": f"confusion counts on {history.attrs.get('eval_data', 'the data')}",
                               "units": "1"})
