"""Compare the hidden-size study (studies/scattering_hidden_sizes.toml) with the published curves.

Reads the collected study ``results/scattering_hidden_sizes/scattering_hidden_sizes.nc`` (run ``pyosc study
collect`` first) and the published test-accuracy curves in ``<data home>/neuroscatter-curves`` (one value every
60 mini-batches from iteration 0). The published runs differ in length (N2 = 30: 540k iterations, N2 = 60: 113k),
so the fair comparison is the best published value within our run length. Writes ``best_vs_hidden.png`` and
``summary.json`` next to the study and prints a table.
Usage: ``PYOSC_DATA_HOME=../shared/data python studies/plot_scattering_hidden_sizes.py``.
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from pyosc.data.datasets import get_data_home
from pyosc.results import read_netcdf

RESULTS = Path(__file__).resolve().parent / "results" / "scattering_hidden_sizes"
PUBLISHED = {0: "N2=none_accuracy_test.csv", 20: "N2=20_accuracy_test.csv", 30: "N2=30_accuracy_test_run3.csv",
             60: "N2=60_accuracy_test_run2.csv", 80: "N2=80_accuracy_test.csv"}


def main() -> dict:
    ds = read_netcdf(RESULTS / "scattering_hidden_sizes.nc")
    curves = get_data_home() / "neuroscatter-curves"
    summary = {}
    for hidden in ds.hidden.values:
        acc = ds.test_accuracy.sel(hidden=hidden)
        pub = np.loadtxt(curves / PUBLISHED[int(hidden)])
        pub_it = 60 * np.arange(pub.size)
        entry = {"published_best": float(pub.max()), "published_best_iteration": int(pub_it[pub.argmax()]),
                 "published_iterations": int(pub_it[-1])}
        if np.isfinite(acc).any():
            it = acc.evaluation.values
            k = int(np.nanargmax(acc.values))
            within = pub[pub_it <= it[-1]]
            entry.update(iterations=int(it[-1]), best=float(acc[k]), best_iteration=int(it[k]),
                         final=float(acc.values[-1]), published_best_within=float(within.max()))
        summary[int(hidden)] = entry
    done = [h for h, e in summary.items() if "best" in e]
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    labels = [str(h) if h else "none" for h in summary]
    x = np.arange(len(summary))
    ax.plot(x, [100 * e["published_best"] for e in summary.values()], "s", mfc="none", color="0.5",
            label="published, whole run")
    ax.plot([list(summary).index(h) for h in done], [100 * summary[h]["published_best_within"] for h in done], "s",
            color="0.3", label="published, same number of iterations")
    ax.plot([list(summary).index(h) for h in done], [100 * summary[h]["best"] for h in done], "o", color="C0",
            label="pyosc")
    ax.set(xticks=x, xticklabels=labels, xlabel="hidden modes N2", ylabel="best test accuracy (%)",
           title="Scattering network on optdigits: hidden-layer size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "best_vs_hidden.png", dpi=130)
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2))
    print("N2    iterations  best (iteration)     final    published: same iterations / whole run (iteration)")
    for h, e in summary.items():
        ours = (f"{e['iterations']:10d}  {100 * e['best']:.2f} % ({e['best_iteration']:6d})  {100 * e['final']:.2f} %"
                f"   {100 * e['published_best_within']:.2f} %" if "best" in e else f"{'not run yet':>49s}   ")
        print(f"{h if h else 'none':>4}  {ours} / {100 * e['published_best']:.2f} % ({e['published_best_iteration']})")
    return summary


if __name__ == "__main__":
    main()
