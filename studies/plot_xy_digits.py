"""Plot test accuracy vs iteration for the XY digits runs (NetCDF files in a folder) and print a table.

Usage: python studies/plot_xy_digits.py studies/results/xy_digits
"""
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from pyosc.results import read_netcdf

PAPER_BEST = {"layered:64,200,10": 0.950, "all-to-all:85": 0.933}

folder = Path(sys.argv[1] if len(sys.argv) > 1 else "studies/results/xy_digits")
fig, ax = plt.subplots(figsize=(6, 4))
for path in sorted(folder.glob("*.nc")):
    ds = read_netcdf(path)
    acc = ds.accuracy.isel(run=0)
    name = ds.attrs["topology"]
    seed = ds.attrs["config"].get("seed", 0)
    relax = ds.attrs["config"]["relax"]
    protocol = f"T = {relax['t_max']:g}" if relax["method"] == "ode" else "relaxed"
    best = float(acc.max())
    ax.plot(acc.evaluation, 100 * acc,
            label=f"{name} seed {seed}, {protocol} ({ds.attrs['n_trainable']} par.), best {100 * best:.1f} %")
    if name in PAPER_BEST and seed == 0:
        ax.axhline(100 * PAPER_BEST[name], ls=":", color=ax.lines[-1].get_color(), lw=1)
    print(f"{name:22s} seed {seed} {protocol:8s} best test accuracy {100 * best:.1f} % at iteration {int(acc.evaluation[int(acc.argmax('evaluation'))])}"
          f" (paper {100 * PAPER_BEST.get(name, float('nan')):.1f} %), final {100 * float(acc[-1]):.1f} %, "
          f"{ds.attrs['wall_time_s'] / 60:.0f} min")
ax.set(xlabel="EP iteration (batch 300)", ylabel="test accuracy (%)", ylim=(0, 100),
       title="XY networks, 8x8 digits (700 test images); dotted: paper")
ax.legend(loc="lower right", fontsize=7)
fig.tight_layout()
fig.savefig(folder / "test_accuracy.png", dpi=120)
print(f"plot written to {folder / 'test_accuracy.png'}")
