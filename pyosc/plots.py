"""Figures for training histories and parameter studies (matplotlib, written as PNG).

Figures are built as :class:`matplotlib.figure.Figure` objects, without pyplot, so importing or using this module
never selects or changes the matplotlib backend.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from pyosc import analysis


def learning_curves(distance: xr.DataArray, by: str | None = None, ax=None):
    """Run-averaged distance vs iteration (log scale), one line per value of ``by``."""
    ax = ax or Figure(figsize=(6, 4)).subplots()
    mean = distance.mean("run") if "run" in distance.dims else distance
    groups = [(None, mean)] if by is None else [(v, mean.sel({by: v})) for v in mean[by].values]
    for v, line in groups:
        ax.semilogy(line.iteration, line, label=None if v is None else f"{by} = {v}")
    ax.set(xlabel="iteration", ylabel="distance (mean over runs)")
    if by is not None:
        ax.legend(fontsize=8)
    return ax


def speed_sweep(speed: xr.DataArray, dim: str, per: xr.DataArray | None = None, label: str | None = None):
    """Learning speed vs a swept quantity; with ``per``, a second panel of speed / per."""
    fig = Figure(figsize=(10 if per is not None else 5, 4))
    axes = fig.subplots(1, 2 if per is not None else 1, squeeze=False)
    lines = [speed] if len(speed.dims) == 1 else [speed.sel({d: v}) for d in speed.dims if d != dim for v in speed[d].values]
    for s in lines:
        extra = ", ".join(f"{k} = {s[k].item()}" for k in s.coords if k != dim and s[k].ndim == 0)
        axes[0, 0].plot(s[dim], s, "o-", label=extra or None)
        if per is not None:
            axes[0, 1].plot(s[dim], analysis.speed_per_init(s, s[dim]), "o-", label=extra or None)
    axes[0, 0].set(xlabel=label or dim, ylabel="learning speed (decades / iteration)")
    if per is not None:
        axes[0, 1].set(xlabel=label or dim, ylabel="speed / M_init")
    for ax in axes.ravel():
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_curves(accuracy: xr.DataArray, by: str, ax=None):
    """Test accuracy vs iteration, one line per value of ``by`` (first run), along the ``evaluation`` dimension
    (whose coordinate gives the iteration of each evaluation)."""
    ax = ax or Figure(figsize=(6, 4)).subplots()
    acc = accuracy.isel(run=0) if "run" in accuracy.dims else accuracy
    for v in acc[by].values:
        line = acc.sel({by: v}).dropna("evaluation")
        if line.size == 0:  # a missing or failed point
            continue
        ax.plot(line["evaluation"], 100 * line, label=f"{v}: best {100 * float(line.max()):.1f} %")
    ax.set(xlabel="iteration", ylabel="test accuracy (%)", ylim=(0, 100))
    ax.legend(fontsize=8)
    return ax


def confusion_panels(matrices, titles, row_labels=None):
    """Confusion matrices (rows: true class, columns: predicted class) as panels: a list gives one row of
    panels, a list of lists a grid; ``titles`` is shaped alike, ``row_labels`` names the grid's rows."""
    grid = matrices if isinstance(matrices[0], (list, tuple)) else [matrices]
    names = titles if isinstance(titles[0], (list, tuple)) else [titles]
    n_rows, n_cols = len(grid), max(len(r) for r in grid)
    fig = Figure(figsize=(2.6 * n_cols, 2.8 * n_rows))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for i, (row, row_titles) in enumerate(zip(grid, names)):
        for j, ax in enumerate(axes[i]):
            if j >= len(row):
                ax.axis("off")
                continue
            m = row[j]
            ax.imshow(m, cmap="Blues")
            ax.set(title=row_titles[j], xlabel="predicted", ylabel="true", xticks=range(m.shape[0]),
                   yticks=range(m.shape[0]))
            for text in (ax.title, ax.xaxis.label, ax.yaxis.label):
                text.set_fontsize(8)
            ax.tick_params(labelsize=6)
        if row_labels is not None:
            axes[i, 0].set_ylabel(f"{row_labels[i]}\ntrue", fontsize=8)
    fig.tight_layout()
    return fig


def plot_study(study, first: int = 300) -> list[Path]:
    """The standard figures of a collected study (``<output>/<name>.nc``): learning curves, speed sweeps
    (over ``n_units`` and ``n_inits``) for XOR studies, accuracy curves for digits studies, and confusion matrices
    at the snapshot iterations (one row per value of the first sweep axis) for XY digits studies."""
    from pyosc.errors import InvalidInputError
    from pyosc.results import read_netcdf

    collected = study.output / f"{study.name}.nc"
    if not collected.exists():
        raise InvalidInputError(f"study {study.name!r} has no collected file {collected}; run 'pyosc study collect "
                                f"{study.file or '<study file>'}' first")
    ds = read_netcdf(collected)
    out, dims = [], [a.dim for a in study.axes]
    if "distance" in ds:
        by = dims[0] if dims else None
        dist = ds.distance if len(dims) <= 1 else ds.distance.isel({d: 0 for d in dims[1:]})
        ax = learning_curves(dist, by)
        out.append(_save(ax.figure, study.output / "learning_curves.png"))
        k = min(first, ds.sizes["iteration"])
        speed = analysis.learning_speed(ds.distance, k)
        for dim, label in (("n_units", "network size N"), ("n_inits", "M_init")):
            if dim in dims:
                fig = speed_sweep(speed, dim, per=ds[dim] if dim == "n_inits" else None, label=label)
                fig.axes[0].set_title(f"{study.name}: speed over the first {k} iterations", fontsize=9)
                out.append(_save(fig, study.output / f"speed_vs_{dim}.png"))
    for name in ("accuracy", "test_accuracy"):
        if name in ds and ds.sizes.get("evaluation", 0) > 1 and dims:
            acc = ds[name] if len(dims) == 1 else ds[name].isel({d: 0 for d in dims[1:]})
            ax = accuracy_curves(acc, dims[0])
            if name == "test_accuracy":  # long SGD runs (scattering): most of the change is early
                ax.set_xscale("log")
            out.append(_save(ax.figure, study.output / "accuracy_curves.png"))
    if "confusion" in ds and dims:
        conf = ds.confusion.isel(run=0).isel({d: 0 for d in dims[1:]})
        rows = [v for v in conf[dims[0]].values if np.isfinite(conf.sel({dims[0]: v})).all()]
        if rows:
            mats = [[conf.sel({dims[0]: v, "snapshot": s}).values for s in conf.snapshot.values] for v in rows]
            titles = [[f"iteration {s}: {np.trace(m) / m.sum():.1%}" for s, m in zip(conf.snapshot.values, r)]
                      for r in mats]
            out.append(_save(confusion_panels(mats, titles, row_labels=rows), study.output / "confusion.png"))
    return out


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
