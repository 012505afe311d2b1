"""Cost and faithfulness of the default relaxation (issue 16): today's default before the change (a frozen copy of
pyosc at ``--base-commit``, run in a worker process) against the new default, interleaved on the same batches.

Prints, with the load average before and after:

* the EP iteration (free + nudged relaxation and the gradient, ``engine.ep_step``) on digits, all-to-all N = 85,
  batch 300 (30 per class), and on XOR with 100 runs (4 samples): median wall time of each method, the median of
  the per-batch ratios new / before, the mean iterations of the free and nudged phases. The two processes run
  alternately, one EP iteration at a time, so that both see the same load; ``continuation`` (today's algorithm in the
  current tree, ``RelaxOptions(method="continuation")``) is timed alongside, for reference;
* the EP gradient on one digits batch (all-to-all N = 85, initial parameters, batch 300, beta = 0.1): relative
  distance |g - g_flow| / |g_flow| of the default (before and after) to the gradient from the flow's equilibria
  (diffrax Tsit5, rtol = atol = 1e-11, steady at 1e-9), and how many free and nudged equilibria lie in another
  basin (max |wrap(phi - phi_flow)| > 1e-6 rad on the free units).

Run: python benchmarks/bench_relaxation_basin.py [--repeats 5] [--base-commit 1b56ae2] [--base PATH] [--no-gradient]
(--base: a directory holding the old ``pyosc`` package instead of extracting it from git).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pyosc import topology  # the old pyosc in the worker (its PYTHONPATH), the current one here
from pyosc.data import datasets
from pyosc.engines import get_engine
from pyosc.engines.base import Nudge, RelaxOptions
from pyosc.models import xy
from pyosc.training.ep import random_phases

ROOT = Path(__file__).resolve().parents[1]

ENGINE = get_engine("jax")


def case(name, repeats):
    """(params, topology, [(phi0, targets)] * (repeats + 1)): the first batch compiles."""
    rng = np.random.default_rng(5)
    if name == "xor":
        topo = topology.all_to_all(5, 2, 1)
        data, per, runs, scheme = datasets.xor(), None, 100, "xor"
    else:
        topo = topology.from_spec("all-to-all:85", n_inputs=64, n_outputs=10)
        data, per, runs, scheme = datasets.digits_paper_split()[0], 30, None, "all-to-all"
    p = xy.init_params(topo, np.random.default_rng(0), scheme=scheme, n_runs=runs)
    batches = []
    for _ in range(repeats + 1):
        idx = np.arange(data.x.shape[0]) if per is None else datasets.class_balanced_batch(data.labels, per, rng)
        batches.append((random_phases(rng, data.x[idx], 1, topo.n_units, runs), data.y[idx]))
    return {"W": p.W, "h": p.h, "psi": p.psi}, topo, batches


def gradient_batch():
    """The digits batch of the gradient comparison (all-to-all N = 85, initial parameters, batch 300)."""
    topo = topology.from_spec("all-to-all:85", n_inputs=64, n_outputs=10)
    p = xy.init_params(topo, np.random.default_rng(0), scheme="all-to-all")
    train = datasets.digits_paper_split()[0]
    rng = np.random.default_rng(11)
    idx = datasets.class_balanced_batch(train.labels, 30, rng)
    phi0 = random_phases(rng, train.x[idx], 1, topo.n_units, None)
    return {"W": p.W, "h": p.h, "psi": p.psi}, topo, phi0, train.y[idx]


def timed_step(params, topo, batch, options=None):
    """(seconds, mean iterations free, nudged, all converged) of one EP iteration."""
    phi0, y = batch
    t = time.perf_counter()
    step = ENGINE.ep_step("xy", params, phi0, topo, Nudge(0.1, y), *(() if options is None else (options,)))
    dt = time.perf_counter() - t
    converged = bool(step.free.converged.all() and step.nudged.converged.all())
    return dt, float(step.free.work.mean()), float(step.nudged.work.mean()), converged


def worker() -> None:
    """The old pyosc's side: answers "run CASE K REPEATS" (timing of batch K) and "grad FILE" on stdin."""
    cases = {}
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "run":
            name, k, repeats = cmd[1], int(cmd[2]), int(cmd[3])
            if name not in cases:
                cases[name] = case(name, repeats)
            params, topo, batches = cases[name]
            print(json.dumps(timed_step(params, topo, batches[k])), flush=True)
        elif cmd[0] == "grad":
            params, topo, phi0, y = gradient_batch()
            step = ENGINE.ep_step("xy", params, phi0, topo, Nudge(0.1, y))
            np.savez(cmd[1], free=step.free.phi, nudged=step.nudged.phi,
                     **{"g_" + k: v for k, v in step.gradient.items()})
            print("{}", flush=True)


def load() -> str:
    return os.popen("uptime").read().strip()


class Before:
    """A worker process importing the old pyosc."""

    def __init__(self, path: Path):
        env = {**os.environ, "PYTHONPATH": str(path)}
        self.proc = subprocess.Popen([sys.executable, "-u", __file__, "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=path, env=env)

    def ask(self, line: str):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError("the worker with the old pyosc died (see its error above)")
        return json.loads(answer)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def base_tree(args, tmp: str) -> Path:
    if args.base:
        return Path(args.base)
    out = Path(tmp) / "base"
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.base_commit, "pyosc"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


def bench_speed(before: Before, repeats: int) -> None:
    continuation = RelaxOptions(method="continuation")
    for name, label in (("digits", "digits all-to-all N=85, batch 300"), ("xor", "XOR N=5, 100 runs x 4 samples")):
        params, topo, batches = case(name, repeats)
        rows = {"before": [], "continuation": [], "after": []}
        for k in range(repeats + 1):
            results = {"before": before.ask(f"run {name} {k} {repeats}"),
                       "continuation": timed_step(params, topo, batches[k], continuation),
                       "after": timed_step(params, topo, batches[k])}
            if k:  # the first batch compiles
                for m, r in results.items():
                    rows[m].append(r)
        print(f"{label}: EP iteration (free + nudged), median of {repeats} interleaved")
        base = np.array([r[0] for r in rows["before"]])
        for m, label_m in (("before", f"before (default at {ARGS.base_commit})"),
                           ("continuation", "continuation (current tree)"), ("after", "after (new default)")):
            t = np.array([r[0] for r in rows[m]])
            its = np.mean([r[1:3] for r in rows[m]], axis=0)
            ok = all(r[3] for r in rows[m])
            print(f"  {label_m:42s} {np.median(t) * 1e3:8.1f} ms  ratio to before {np.median(t / base):5.2f}  "
                  f"iterations free {its[0]:.1f} nudged {its[1]:.1f}{'' if ok else '  (some unconverged)'}")
        print(f"  {load()}", flush=True)


def flat_gradient(g: dict, topo) -> np.ndarray:
    free = ~topo.clamped
    return np.concatenate([np.asarray(g["W"])[np.triu(topo.trainable_coupling_mask)], np.asarray(g["h"])[free],
                           np.asarray(g["psi"])[free]])


def bench_gradient(before: Before, tmp: str) -> None:
    params, topo, phi0, y = gradient_batch()
    free = ~topo.clamped
    t = time.perf_counter()
    flow = ENGINE.ep_step("xy", params, phi0, topo, Nudge(0.1, y),
                          RelaxOptions(method="ode", tol=1e-9, rtol=1e-11, atol=1e-11))
    t_flow = time.perf_counter() - t
    before.ask(f"grad {tmp}/before.npz")
    old = np.load(f"{tmp}/before.npz")
    new = ENGINE.ep_step("xy", params, phi0, topo, Nudge(0.1, y))
    ref = flat_gradient(flow.gradient, topo)
    off = lambda a, b: int(np.sum(np.max(np.abs(np.angle(np.exp(1j * (a - b))))[..., free], axis=-1) > 1e-6))
    print(f"EP gradient, digits all-to-all N=85 at initialisation, one batch of 300, beta 0.1; flow reference: "
          f"diffrax Tsit5 rtol=atol=1e-11 ({t_flow:.0f} s)")
    for label, g, f, n in (("before", {k[2:]: old[k] for k in old.files if k.startswith("g_")}, old["free"],
                            old["nudged"]),
                           ("after", new.gradient, new.free.phi, new.nudged.phi)):
        rel = np.linalg.norm(flat_gradient(g, topo) - ref) / np.linalg.norm(ref)
        print(f"  {label:7s} |g - g_flow| / |g_flow| = {rel:.2e}; equilibria in another basin than the flow's: "
              f"free {off(f, flow.free.phi)}/300, nudged {off(n, flow.nudged.phi)}/300")


def main() -> None:
    print(load())
    with tempfile.TemporaryDirectory() as tmp:
        before = Before(base_tree(ARGS, tmp))
        try:
            bench_speed(before, ARGS.repeats)
            if ARGS.gradient:
                bench_gradient(before, tmp)
        finally:
            before.close()
    print(load())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--base-commit", default="1b56ae2")
    parser.add_argument("--base", default=None, help="directory with the old pyosc package (instead of git)")
    parser.add_argument("--no-gradient", dest="gradient", action="store_false")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ARGS = parser.parse_args()
    worker() if ARGS.worker else main()
