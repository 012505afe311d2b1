"""Plot the digits learning curves of pyosc's scattering networks next to the published ones.

Reads ``studies/results/scattering/digits_{n80,none}.nc`` (or, for a run still in progress, its checkpoint
``digits_*.ckpt.npz``) and the published curves in ``<data home>/neuroscatter-curves`` (one test accuracy every
60 mini-batches, starting at iteration 0). Writes ``digits_curves.png`` and ``digits_summary.json``.
Usage: ``PYOSC_DATA_HOME=../shared/data python studies/scattering_plot_curves.py``.
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

RESULTS = Path(__file__).resolve().parent / "results" / "scattering"
RUNS = {"n80": ("N2 = 80", "N2=80_accuracy_test.csv"), "none": ("no hidden layer", "N2=none_accuracy_test.csv")}


def ours(tag: str) -> tuple[np.ndarray, np.ndarray, str] | None:
    nc, ckpt = RESULTS / f"digits_{tag}.nc", RESULTS / f"digits_{tag}.ckpt.npz"
    if nc.exists():
        ds = read_netcdf(nc)
        return ds["evaluation"].values, ds["test_accuracy"].values, "finished"
    if ckpt.exists():
        with np.load(ckpt) as f:
            return f["hist/iteration"], f["hist/test_accuracy"], "in progress"
    return None


def main() -> dict:
    curves = get_data_home() / "neuroscatter-curves"
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    summary = {}
    for (tag, (label, fname)), color in zip(RUNS.items(), ["C0", "C3"]):
        pub = np.loadtxt(curves / fname)
        pub_it = 60 * np.arange(pub.size)
        ax.plot(pub_it[1:], 100 * pub[1:], color=color, alpha=0.35, lw=1, label=f"published, {label}")
        entry = {"published_best": float(pub.max()), "published_best_iteration": int(pub_it[np.argmax(pub)])}
        run = ours(tag)
        if run is not None:
            it, acc, status = run
            ax.plot(it, 100 * acc, color=color, lw=1.2, label=f"pyosc, {label}")
            k = int(np.argmax(acc))
            entry.update(status=status, iterations=int(it[-1]), best=float(acc[k]), best_iteration=int(it[k]),
                         final=float(acc[-1]),
                         first_iteration_at_published_best=(int(it[np.argmax(acc >= pub.max())])
                                                            if np.any(acc >= pub.max()) else None))
        summary[tag] = entry
    ax.set_xscale("log")
    ax.set_ylim(85, 100)
    ax.set_xlabel("mini-batch iteration (batch 200)")
    ax.set_ylabel("test accuracy on optdigits.tes (%)")
    ax.set_title("Linear scattering network, optdigits (train .tra, test .tes)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(RESULTS / "digits_curves.png", dpi=130)
    (RESULTS / "digits_summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
