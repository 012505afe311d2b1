"""Analysis of training histories (xarray in, xarray/NumPy out).

Learning speed follows arXiv 2402.08579: the negative slope of a straight-line fit of
log10 <distance>_runs against the iteration over the first K iterations (decades per iteration);
"normalised" speed divides it by the number of random initial states M_init.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from pyosc.errors import InvalidInputError
from pyosc.training.ep import confusion_matrix, snapshot_confusion, xy_confusion

__all__ = ["best_accuracy", "confusion_matrix", "final_accuracy", "learning_speed", "snapshot_confusion",
           "speed_per_init", "xy_confusion"]


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
    """Maximum over evaluations (the paper's reported value)."""
    return accuracy.max("evaluation")


def final_accuracy(accuracy: xr.DataArray) -> xr.DataArray:
    """Accuracy at the last evaluation."""
    return accuracy.isel(evaluation=-1)
