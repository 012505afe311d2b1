"""``pyosc train xor`` and ``pyosc train digits``: XY networks trained by equilibrium propagation."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pyosc import datasets, topology
from pyosc.engines.base import RelaxOptions
from pyosc.models import xy
from pyosc.results import write_netcdf
from pyosc.training.ep import EPConfig, train_ep


def _common(p: argparse.ArgumentParser, *, beta, lr, iterations, eval_every, out) -> None:
    p.add_argument("--beta", type=float, default=beta, help="nudging strength (default %(default)s)")
    p.add_argument("--lr", type=float, default=lr, help="learning rate (default %(default)s)")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    p.add_argument("--iterations", type=int, default=iterations)
    p.add_argument("--n-inits", type=int, default=1, help="random initial states per sample (M_init)")
    p.add_argument("--eval-every", type=int, default=eval_every, help="iterations between accuracy checks (0: never)")
    p.add_argument("--tol", type=float, default=1e-10, help="steady state: max |dphi/dt| (default %(default)s)")
    p.add_argument("--method", choices=["newton", "ode"], default="newton", help="relaxation method")
    p.add_argument("--t-max", type=float, default=RelaxOptions.t_max,
                   help="ode: stop integrating at this time even if not steady (the paper's protocol: 100)")
    p.add_argument("--shared-steps", action="store_true",
                   help="ode: one step-size controller for the whole batch (as the paper's code)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=out, help="NetCDF file for the history (default %(default)s)")
    p.add_argument("--checkpoint", default=None,
                   help="save the training state to this .npz every 2 min; rerunning resumes from it "
                        "(deleted once the history is written)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_tasks(tasks) -> None:
    p = tasks.add_parser("xor", help="XOR on an all-to-all XY network (arXiv 2402.08579, Fig. 3)")
    p.add_argument("--units", type=int, default=5, help="network size N (2 inputs, 1 output)")
    p.add_argument("--runs", type=int, default=100, help="independent runs trained together")
    _common(p, beta=0.1, lr=0.1, iterations=1000, eval_every=100, out="xor.nc")
    p.set_defaults(func=run_xor)

    p = tasks.add_parser("digits", help="8x8 digits on an XY network (arXiv 2402.08579, Table 2)")
    p.add_argument("--arch", default="layered:64,200,10",
                   help="'layered:64,H,10' or 'all-to-all:N' (64 inputs, 10 outputs)")
    p.add_argument("--batch-per-class", type=int, default=30, help="samples per class per iteration")
    _common(p, beta=0.1, lr=0.01, iterations=2000, eval_every=5, out="digits.nc")
    p.set_defaults(func=run_digits)


def _config(args, batch_per_class=None) -> EPConfig:
    return EPConfig(beta=args.beta, learning_rate=args.lr, optimizer=args.optimizer, n_iterations=args.iterations,
                    n_inits=args.n_inits, batch_per_class=batch_per_class, eval_every=args.eval_every, seed=args.seed,
                    relax=RelaxOptions.for_tolerance(args.method, args.tol, args.t_max, args.shared_steps))


def run_xor(args) -> int:
    topo = topology.all_to_all(args.units, 2, 1)
    params = xy.init_params(topo, np.random.default_rng(args.seed), scheme="xor", n_runs=args.runs)
    ds = train_ep(topo, datasets.xor(), params, _config(args), progress=not args.quiet,
                  checkpoint=args.checkpoint)
    write_netcdf(ds, args.out)
    if args.checkpoint:
        Path(args.checkpoint).unlink(missing_ok=True)
    final = ds.distance.isel(iteration=-1).values
    print(f"XOR, N = {args.units}, {args.runs} runs x {args.iterations} iterations in {ds.attrs['wall_time_s']:.1f} s")
    print(f"final distance: median {np.median(final):.2e}, max {final.max():.2e}; "
          f"runs below 1e-3: {np.mean(final < 1e-3):.0%}, below 1e-2: {np.mean(final < 1e-2):.0%}")
    if ds.sizes["checkpoint"]:
        print(f"final accuracy: {ds.accuracy.isel(checkpoint=-1).mean().item():.1%} (mean over runs)")
    print(f"history written to {args.out}")
    return 0


def run_digits(args) -> int:
    topo = topology.from_spec(args.arch, n_inputs=64, n_outputs=10)
    scheme = "layered" if topo.layers else "all-to-all"
    params = xy.init_params(topo, np.random.default_rng(args.seed), scheme=scheme)
    train, test = datasets.digits_paper_split()
    ds = train_ep(topo, train, params, _config(args, args.batch_per_class), test=test, progress=not args.quiet,
                  checkpoint=args.checkpoint)
    write_netcdf(ds, args.out)
    if args.checkpoint:
        Path(args.checkpoint).unlink(missing_ok=True)
    acc = ds.accuracy.isel(run=0)
    print(f"digits, {topo.name} ({topo.n_trainable} parameters), {args.iterations} iterations "
          f"in {ds.attrs['wall_time_s']:.0f} s")
    if acc.size:
        best = int(np.argmax(acc.values))
        print(f"test accuracy: best {acc.max().item():.1%} at iteration {int(acc.checkpoint[best])}, "
              f"final {acc.isel(checkpoint=-1).item():.1%}")
    print(f"history written to {args.out}")
    return 0
