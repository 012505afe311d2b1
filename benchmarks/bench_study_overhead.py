"""Cost of the study machinery (process start, files, scheduling, collection) against the training it runs.

Runs a study file's grid afresh in a temporary folder with the local executor, then collects it, and
prints: wall time, time inside the task runs, collection time and the machinery's share.
Usage: python benchmarks/bench_study_overhead.py [STUDY.toml] [--iterations N]
(default: the XOR size sweep with 200 iterations per point; the full sweep takes about 40 min on 2 cores).
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import tomllib

from pyosc.studies import collect_to_file, load_study, run_study

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("study", nargs="?", default=str(Path(__file__).resolve().parents[1] / "studies" / "xor_size_sweep.toml"))
ap.add_argument("--iterations", type=int, default=200, help="override base.iterations (0: keep the file's)")
a = ap.parse_args()

raw = tomllib.loads(Path(a.study).read_text())
tmp = Path(tempfile.mkdtemp())
try:
    text = Path(a.study).read_text()
    if a.iterations:
        raw.setdefault("base", {})["iterations"] = a.iterations
        lines = [f'task = "{raw["task"]}"', "[base]"] + [f"{k} = {v!r}" for k, v in raw["base"].items()]
        lines += ["[sweep]"] + [f"{k} = {v!r}" for k, v in raw.get("sweep", {}).items()]
        text = "\n".join(lines).replace("'", '"')
    path = tmp / Path(a.study).name
    path.write_text(text)
    study = load_study(path)
    summary = run_study(study, progress=False)
    t = time.perf_counter()
    collect_to_file(study)
    collect_s = time.perf_counter() - t
    machinery = summary.wall_s - summary.task_s + collect_s
    total = summary.wall_s + collect_s
    print(f"{study.name}: {summary}")
    print(f"collection {collect_s:.1f} s; machinery {machinery:.1f} s of {total:.1f} s = {100 * machinery / total:.1f} %")
finally:
    shutil.rmtree(tmp)
