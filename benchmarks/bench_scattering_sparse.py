"""Benchmark (b): S columns + full gradient of a sparse network against one sparse LU factorisation.

The network is an L x L square lattice (couplings J = 1 with +-10 % disorder, random detunings in [-1, 1],
intrinsic loss 0.1 everywhere) plus ``--long-range`` random long-range couplers; 10 output modes with
waveguides (kappa_ext = 0.5) are read in the diagonal scheme (Im S_ll). "total" is
``network_loss_and_gradient(method="sparse-lu")`` (assembly, one SuperLU factorisation, 10 solves, outputs,
cross-entropy, dC/dDelta for every mode and dC/dJ for every coupling); "floor" is ``scipy.sparse.linalg.splu`` of
the same matrix with the same options (:data:`pyosc.engines.scattering.SYMMETRIC_LU`).
Prints a table; writes JSON (and a plot with --plot).
"""
from __future__ import annotations

import argparse
import json
from functools import partial

import numpy as np
import scipy.sparse.linalg as spla
from _timing import best_time

from pyosc.engines.scattering import SYMMETRIC_LU
from pyosc.models.scattering import CoupledModeNetwork, Readout
from pyosc.training.green import network_loss_and_gradient


def lattice_network(side: int, n_long: int, rng: np.random.Generator) -> tuple[CoupledModeNetwork, Readout]:
    idx = np.arange(side * side).reshape(side, side)
    edges = [np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], 1), np.stack([idx[:-1].ravel(), idx[1:].ravel()], 1)]
    pairs = set(map(tuple, np.sort(np.concatenate(edges), axis=1)))
    long_range = []
    while len(long_range) < n_long:
        k, l_ = sorted(rng.choice(side * side, 2, replace=False))
        if (k, l_) not in pairs:
            pairs.add((k, l_))
            long_range.append((k, l_))
    e = np.concatenate(edges + ([np.array(long_range)] if long_range else []))
    n = side * side
    out = rng.choice(n, 10, replace=False)
    kext = np.zeros(n)
    kext[out] = 0.5
    net = CoupledModeNetwork(rng.uniform(-1, 1, n), e, 1 + 0.1 * rng.uniform(-1, 1, len(e)), kext, 0.1)
    return net, Readout.diagonal(np.sort(out))


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sides", type=int, nargs="+", default=[10, 32, 100, 178, 317])
    ap.add_argument("--long-range", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    ap.add_argument("--plot", default=None)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    for side in args.sides:
        net, readout = lattice_network(side, args.long_range, rng)
        m = net.system_matrix(net.detuning)
        floor = best_time(partial(spla.splu, m, **SYMMETRIC_LU), args.repeats)
        total = best_time(partial(network_loss_and_gradient, net, None, [0], readout, method="sparse-lu"), args.repeats)
        auto = best_time(partial(network_loss_and_gradient, net, None, [0], readout), args.repeats)
        rows.append({"modes": net.n_modes, "couplings": len(net.edges), "lu_seconds": floor,
                     "total_seconds": total, "auto_seconds": auto, "ratio": total / floor})
        print(f"N = {net.n_modes:7d}  E = {len(net.edges):7d}  LU {floor:.4e} s  S+gradient {total:.4e} s  "
              f"(auto {auto:.4e} s)  ratio {total / floor:.2f}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        n = [r["modes"] for r in rows]
        fig, ax = plt.subplots(figsize=(5, 3.6))
        ax.loglog(n, [r["lu_seconds"] for r in rows], "o-", label="one sparse LU (floor)")
        ax.loglog(n, [r["total_seconds"] for r in rows], "s-", label="S columns + full gradient (sparse-lu)")
        ax.loglog(n, [r["auto_seconds"] for r in rows], "^--", label="S columns + full gradient (auto)")
        ax.set_xlabel("modes N")
        ax.set_ylabel("seconds (one core)")
        ax.set_title(f"2-D lattice + {args.long_range} long-range couplers")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
    return rows


if __name__ == "__main__":
    main()
