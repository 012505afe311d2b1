"""Study: associative-memory retrieval accuracy vs load P/N, EP against Hebbian couplings (issue 6).

N = 25 pixels (5 x 5 letters) + 1 clamped reference oscillator, first-harmonic coupling H(x) = sin x
(the near-harmonic Van der Pol limit) with a second-harmonic injection s = 0.3 on every pixel.
For each load P the first P letters of a fixed random order are stored: Hebbian couplings, and EP
trained from them (MemoryEPConfig defaults: beta 0.1, SGD lr 0.005, 150 iterations, 4 corrupted
copies per pattern at 10 % corruption; lr 0.02 over 100 iterations, the first run, failed from
P = 5 on: the couplings overshoot once the Hebbian start retrieves nothing). Both are evaluated on fresh corrupted copies at several
corruption levels (exact retrieval of all 25 pixels).

    /work/venv/bin/python studies/onn_memory_load.py [--quick]

Writes studies/results/onn/memory_load.nc (NetCDF), memory_load.png and memory_load.json.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from pyosc.data import patterns as memory
from pyosc.models import onn
from pyosc.results import provenance, write_netcdf
from pyosc.training.hebbian import hebbian_couplings
from pyosc.training.memory import MemoryEPConfig, evaluate_memory, train_memory_ep

OUT = Path(__file__).resolve().parent / "results" / "onn"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="3 loads, 20 iterations (smoke test)")
    args = ap.parse_args()
    loads = [2, 3] if args.quick else [1, 2, 3, 4, 5, 6, 7, 8, 10, 12]
    levels = [0.04, 0.12, 0.2]
    order = "".join(np.random.default_rng(0).permutation(list(memory.LETTERS)))
    H = onn.coupling_function([1.0])
    config = MemoryEPConfig(n_iterations=20 if args.quick else 150)
    n_eval = 40
    acc = np.zeros((len(loads), 2, len(levels)))
    ovl = np.zeros_like(acc)
    curves = np.zeros((len(loads), config.n_iterations))
    seconds = np.zeros(len(loads))
    for i, P in enumerate(loads):
        xi = memory.letters(order[:P])
        shil = np.r_[0.0, np.full(25, config.shil)]
        heb = onn.make_params(hebbian_couplings(np.concatenate([np.ones((P, 1)), xi], axis=1)), H, shil=shil)
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # H is odd and frequencies identical: no PhaseModelWarning expected
            ds = train_memory_ep(xi, H, config, progress=False)
        seconds[i] = time.perf_counter() - t
        curves[i] = ds.accuracy.values
        ep = onn.make_params(ds.W.values, H, shil=shil)
        for j, level in enumerate(levels):
            for k, params in enumerate((heb, ep)):
                a, o, _ = evaluate_memory(params, xi, level, n_eval, np.random.default_rng([P, j, 7]),
                                          noise=config.noise, options=config.relax)
                acc[i, k, j], ovl[i, k, j] = a, o
        print(f"P = {P:2d} (P/N = {P / 25:.2f}) letters {order[:P]}: Hebbian "
              + " ".join(f"{a:.3f}" for a in acc[i, 0]) + " | EP " + " ".join(f"{a:.3f}" for a in acc[i, 1])
              + f"  (corruption {levels}; EP training {seconds[i]:.1f} s)", flush=True)
    result = xr.Dataset(
        {"accuracy": (("load", "method", "corruption"), acc, {"long_name": "exact retrieval fraction", "units": "1"}),
         "overlap": (("load", "method", "corruption"), ovl, {"long_name": "mean overlap with the pattern", "units": "1"}),
         "ep_train_accuracy": (("load", "iteration"), curves, {"long_name": "EP training-trial retrieval", "units": "1"}),
         "ep_seconds": (("load",), seconds, {"long_name": "EP training wall time (shared 2-core machine)", "units": "s"})},
        coords={"load": np.array(loads) / 25, "n_patterns": ("load", np.array(loads)), "method": ["hebbian", "ep"],
                "corruption": levels, "iteration": np.arange(config.n_iterations)},
        attrs={"title": "ONN associative memory: EP vs Hebbian", "letters_order": order, "n_pixels": 25,
               "eval_trials_per_pattern": n_eval, "H_sin": [1.0], "config": config.to_dict(), **provenance()})
    OUT.mkdir(parents=True, exist_ok=True)
    write_netcdf(result, OUT / "memory_load.nc")
    (OUT / "memory_load.json").write_text(json.dumps(
        {"loads": [p / 25 for p in loads], "corruption": levels,
         "hebbian": acc[:, 0].tolist(), "ep": acc[:, 1].tolist(), "ep_seconds": seconds.tolist()}, indent=1))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, len(levels), figsize=(4 * len(levels), 3.4), sharey=True)
    for j, level in enumerate(levels):
        ax[j].plot(np.array(loads) / 25, acc[:, 0, j], "o-", label="Hebbian")
        ax[j].plot(np.array(loads) / 25, acc[:, 1, j], "s-", label="EP (from Hebbian)")
        ax[j].set_title(f"{level:.0%} pixels flipped")
        ax[j].set_xlabel("load P/N")
    ax[0].set_ylabel("exact retrieval")
    ax[0].legend()
    fig.suptitle("5x5 letters, N = 25 phase oscillators + reference, H = sin, SHIL 0.3")
    fig.tight_layout()
    fig.savefig(OUT / "memory_load.png", dpi=120)


if __name__ == "__main__":
    main()
