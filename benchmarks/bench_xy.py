"""Speed of XY equilibrium propagation on the JAX engine, against the paper's own code.

Reference (the paper's JAX/diffrax code, Tsit5 with rtol = atol = 1e-8 and a fixed horizon T = 100, on
this 2-core machine kind): XOR, 5 units, 100 runs x 1000 iterations: 403 s (0.40 s per iteration);
digits all-to-all N = 85, batch 300: 38.7 s per EP iteration (free + nudge).

Run: python benchmarks/bench_xy.py [--quick]. Prints wall times, ratios and the accuracy reached.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import pyosc
from pyosc import topology
from pyosc.data import datasets
from pyosc.engines import get_engine
from pyosc.engines.base import Nudge
from pyosc.models import xy
from pyosc.training.ep import EPConfig, random_phases, train_ep

PAPER_XOR_S = 403.0
PAPER_DIGITS85_S_PER_IT = 38.7


def bench_xor(iterations: int) -> None:
    topo = topology.all_to_all(5, 2, 1)
    params = xy.init_params(topo, np.random.default_rng(0), scheme="xor", n_runs=100)
    train_ep(topo, datasets.xor(), params, EPConfig(n_iterations=2), progress=False)  # compile
    t = time.perf_counter()
    ds = train_ep(topo, datasets.xor(), params, EPConfig(n_iterations=iterations), progress=False)
    dt = time.perf_counter() - t
    final = ds.distance.isel(iteration=-1).values
    print(f"XOR N=5, 100 runs x {iterations} iterations: {dt:.1f} s ({dt / iterations * 1e3:.1f} ms per iteration); "
          f"paper code {PAPER_XOR_S * iterations / 1000:.0f} s -> {PAPER_XOR_S * iterations / 1000 / dt:.0f}x faster")
    print(f"  final distance: max {final.max():.2e}, runs < 1e-3: {np.mean(final < 1e-3):.0%}, "
          f"< 1e-2: {np.mean(final < 1e-2):.0%}; unconverged relaxations: {int(ds.unconverged.sum())}")


def bench_digits(arch: str, repeats: int) -> None:
    topo = topology.from_spec(arch, n_inputs=64, n_outputs=10)
    rng = np.random.default_rng(0)
    params = xy.init_params(topo, rng, scheme="layered" if topo.layers else "all-to-all")
    train, _ = datasets.digits_paper_split()
    engine = get_engine("jax")
    times, iters = [], []
    for k in range(repeats + 1):
        idx = datasets.class_balanced_batch(train.labels, 30, rng)
        phi0 = random_phases(rng, train.x[idx], 1, topo.n_units, None)
        t = time.perf_counter()
        step = engine.ep_step("xy", params, phi0, topo, Nudge(0.1, train.y[idx]))
        if k:  # the first call compiles
            times.append(time.perf_counter() - t)
            iters.append([(e.work.max(), e.work.mean()) for e in (step.free, step.nudged)])
    dt = float(np.median(times))
    line = f"digits {arch}, batch 300: {dt:.3f} s per EP iteration (median of {repeats})"
    if arch == "all-to-all:85":
        line += f"; paper code {PAPER_DIGITS85_S_PER_IT} s -> {PAPER_DIGITS85_S_PER_IT / dt:.0f}x faster"
    print(line)
    worst, mean = np.max(iters, axis=0)[:, 0], np.mean(iters, axis=0)[:, 1]
    useful = np.sum(iters, axis=0)[:, 1] / np.sum(iters, axis=0)[:, 0]  # of a loop that keeps the whole batch
    print(f"  Newton iterations, slowest / mean state: free {worst[0]:.0f} / {mean[0]:.1f}, nudged {worst[1]:.0f} / "
          f"{mean[1]:.1f} (a loop over the whole batch to the slowest state would do {useful[0]:.0%} and "
          f"{useful[1]:.0%} useful work); "
          f"all converged: {bool(step.free.converged.all() and step.nudged.converged.all())}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 XOR iterations and 3 digits repeats")
    ap.add_argument("--arch", nargs="+", default=["all-to-all:85", "layered:64,200,10"],
                    help="digits architectures (default: all-to-all:85 layered:64,200,10)")
    a = ap.parse_args()
    import jax

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"pyosc {pyosc.__version__}, jax {jax.__version__} on {jax.devices()[0].platform}, {cores} of {os.cpu_count()} "
          "CPU cores (jaxlib factorises a batch of matrices on all of them)")
    bench_xor(200 if a.quick else 1000)
    for arch in a.arch:
        bench_digits(arch, 3 if a.quick else 10)
