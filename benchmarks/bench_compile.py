"""Compile time of pyosc's JAX programs on CPU with XLA's default (MLIR fusion) emitters and its classic ones
(``XLA_FLAGS=--xla_cpu_use_fusion_emitters=false``, which the test suite sets: tests/conftest.py).

Each program is traced, lowered and compiled in a fresh process per setting (no compilation cache), ``--repeat`` times
in alternation; printed: CPU seconds (``time.process_time``) of the XLA compilation alone. Programs: the default
relaxation of the conformance suite's network (layered [2, 3, 2]), an EP step of XOR (100 runs, continuation), and
the adjoint gradient of the conformance suite's optomech-phase network (Dormand-Prince 5).

Run: python benchmarks/bench_compile.py [--repeat 2]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

FLAG = "--xla_cpu_use_fusion_emitters=false"
PROGRAMS = ("relax-layered", "ep-step-xor", "adjoint-optomech")


def compile_seconds(program: str) -> float:
    """CPU seconds of XLA's compilation of ``program`` in this process."""
    import numpy as np

    from pyosc import testing
    from pyosc import topology as T
    from pyosc.data import datasets
    from pyosc.engines.base import FinalLoss, RelaxOptions
    from pyosc.engines.jax import dynamics as D
    from pyosc.engines.jax import relax as R
    from pyosc.engines.jax.batching import flat_states
    from pyosc.engines.jax.options import split
    from pyosc.models import xy
    from pyosc.training.ep import random_phases

    rng = np.random.default_rng(0)
    if program in ("relax-layered", "ep-step-xor"):
        xor = program == "ep-step-xor"
        topo = T.all_to_all(5, 2, 1) if xor else T.layered([2, 3, 2])
        p = xy.init_params(topo, rng, scheme="xor" if xor else "layered", n_runs=100 if xor else None)
        data = datasets.xor()
        phi0 = random_phases(rng, data.x, 1 if xor else 2, topo.n_units, 100 if xor else None)
        key, numbers = split(RelaxOptions(method="continuation" if xor else "newton"), R.STATIC)
        fn = R._compiled("ep_step" if xor else "relax", "xy", R._plan(topo), key, xor)
        args = (R._jax_params("xy", p._asdict()), *flat_states(phi0, 1, data.y if xor else np.zeros((4, topo.n_outputs))),
                0.1 if xor else 0.0, numbers)
    else:
        p, y0, x = testing._dynamics_net("optomech-phase")
        loss = FinalLoss(np.array([[1.0], [-1.0]]), outputs=(2,))
        key, numbers = split(testing.DYNAMICS, D.STATIC)
        fn = D._loss_grad_fn("optomech-phase", key, loss.outputs, loss.kind, False)
        trainable, tables = D._split("optomech-phase", p)
        args = (trainable, tables, *flat_states(y0, 2, x, loss.targets), 20.0, numbers)
    lowered = fn.lower(*args)
    t = time.process_time()
    lowered.compile()
    return time.process_time() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--program", choices=PROGRAMS, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.program:
        print(compile_seconds(args.program))
        return
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_COMPILATION_CACHE_DIR")}
    for program in PROGRAMS:
        times = {"default emitters": [], "classic emitters": []}
        for _ in range(args.repeat):
            for label, flags in (("default emitters", ""), ("classic emitters", FLAG)):
                out = subprocess.run([sys.executable, __file__, "--program", program], env={**env, "XLA_FLAGS": flags},
                                     capture_output=True, text=True, check=True).stdout
                times[label].append(float(out.split()[-1]))
        shown = "; ".join(f"{k} {' / '.join(f'{t:.2f}' for t in v)} s" for k, v in times.items())
        ratio = sum(times["classic emitters"]) / sum(times["default emitters"])
        print(f"{program:18s} compile (CPU): {shown}; classic / default {ratio:.2f} (load {os.getloadavg()[0]:.2f})",
              flush=True)


if __name__ == "__main__":
    main()
