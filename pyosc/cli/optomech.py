"""``pyosc train optomech-xor``: optomechanical networks trained on XOR by gradients of the dynamics.

The defaults are the protocol of studies/results/optomech/README.md (locking cell, steady-state adjoint,
1500 iterations, restarts after 100 stalled iterations, at most 20), which solved 40 of 40 runs."""
from __future__ import annotations

import argparse

import numpy as np

from pyosc import datasets
from pyosc.engines.base import IntegrateOptions
from pyosc.models.optomech import CELLS
from pyosc.results import write_netcdf
from pyosc.training.adjoint import (
    GRADIENTS,
    MODELS,
    SIGNS,
    AdjointConfig,
    noisy_xor,
    train_adjoint,
)


def add_tasks(tasks) -> None:
    p = tasks.add_parser("optomech-xor", help="XOR on 5 self-oscillating optomechanical cells (arXiv 2604.11658), "
                                              "Adam on adjoint gradients")
    d = AdjointConfig()
    p.add_argument("--model", choices=MODELS, default=d.model, help="network model (default %(default)s)")
    p.add_argument("--cell", choices=sorted(CELLS), default="locking",
                   help="optomechanical cell preset (pyosc.models.optomech; default %(default)s)")
    p.add_argument("--gradient", choices=GRADIENTS, default="steady-state",
                   help="through the dynamics to t1, or implicit at the steady state (default %(default)s)")
    p.add_argument("--runs", type=int, default=10, help="independent runs trained together")
    p.add_argument("--samples", type=int, choices=[4, 20], default=4,
                   help="4 clean XOR samples or 20 noisy ones (5 copies of each)")
    p.add_argument("--train-noise", type=float, default=0.3, help="input-phase noise std of the 20 samples (rad)")
    p.add_argument("--sign", choices=SIGNS, default=d.sign, help="coupling sign: geometry-fixed or both")
    p.add_argument("--k-max", type=float, default=d.k_max, help="coupling bound |K| / (m Omega_m^2)")
    p.add_argument("--f-max", type=float, default=d.f_max, help="bias drive bound (units of Omega_m^2 / G)")
    p.add_argument("--f-in", type=float, default=d.f_in, help="input drive strength")
    p.add_argument("--t1", type=float, default=2e4, help="read-out time (units of 1/Omega_m; default %(default)g)")
    p.add_argument("--loss", choices=["distance", "log"], default=d.loss)
    p.add_argument("--lr", type=float, default=d.learning_rate, help="Adam learning rate on the raw parameters")
    p.add_argument("--iterations", type=int, default=1500)
    p.add_argument("--n-inits", type=int, default=d.n_inits, help="random initial states per sample and iteration")
    p.add_argument("--patience", type=int, default=100, help="iterations without improvement before a restart")
    p.add_argument("--max-restarts", type=int, default=20)
    p.add_argument("--eval-every", type=int, default=d.eval_every)
    p.add_argument("--rtol", type=float, default=1e-6, help="integration tolerance (rtol = atol)")
    p.add_argument("--max-steps", type=int, default=16384, help="step budget of one integration")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="optomech_xor.nc", help="NetCDF file for the history (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_xor)


def run_xor(args: argparse.Namespace) -> int:
    config = AdjointConfig(model=args.model, sign=args.sign, k_max=args.k_max, f_max=args.f_max, f_in=args.f_in,
                           t1=args.t1, loss=args.loss, n_inits=args.n_inits, learning_rate=args.lr,
                           n_iterations=args.iterations, patience=args.patience, max_restarts=args.max_restarts,
                           eval_every=args.eval_every, seed=args.seed, gradient=args.gradient,
                           integrate=IntegrateOptions(rtol=args.rtol, atol=args.rtol, max_steps=args.max_steps))
    train = datasets.xor() if args.samples == 4 else noisy_xor(5, args.train_noise, np.random.default_rng([args.seed, 2]))
    ds = train_adjoint(train, config, n_runs=args.runs, cell=CELLS[args.cell], progress=not args.quiet)
    write_netcdf(ds, args.out)
    final = ds.accuracy.isel(checkpoint=-1).values
    print(f"optomech XOR ({args.model}, {args.cell} cell, {args.gradient} gradient, {train.name}), {args.runs} runs x {args.iterations} iterations "
          f"in {ds.attrs['wall_time_s']:.0f} s")
    print(f"runs that reached 100 % accuracy: {np.mean(ds.solved.values):.0%} (without restarts: "
          f"{np.mean(ds.solved_first_attempt.values):.0%}); restarts used: {int(ds.n_restarts.sum())}")
    print(f"final accuracy: mean {final.mean():.1%}, min {final.min():.1%}")
    print(f"history written to {args.out}")
    return 0
