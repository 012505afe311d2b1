"""Benchmark (a): forward pass + full cost gradient per digit sample for the 128-80-10 scattering network.

Compares, per sample (batch of 200 optdigits images, one core advised: OMP_NUM_THREADS=1):
  layered  - the Schur-complement recursion (pyosc.engines.scattering.layered_green_columns) + gradients;
  dense    - pyosc's dense batched path on the flat 218-mode network (10 G columns per sample) + gradients;
  inverse  - numpy.linalg.inv of each dense 218 x 218 matrix i(omega - H) (no outputs, no gradient): the naive floor.
Prints seconds per sample and ratios; writes JSON with --out.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
from _timing import best_time

from pyosc.data.detunings import load_optdigits_detunings
from pyosc.models.scattering import Readout
from pyosc.training.green import (
    layered_loss_and_gradient,
    network_loss_and_gradient,
    paper_initialisation,
)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    x, y = load_optdigits_detunings("train")
    x, y = x[:args.batch], y[:args.batch]
    net = paper_initialisation([128, 80, 10], np.random.default_rng(0))
    flat = net.to_network()
    out_sites = np.arange(208, 218)
    readout = Readout.diagonal(out_sites)
    ref = layered_loss_and_gradient(net, x, y)
    chk = network_loss_and_gradient(flat, x, y, readout, method="dense")
    assert abs(ref[0] - chk[0]) < 1e-10 * abs(ref[0])
    mats = flat.dense_system_matrices(flat.detunings_for(x))
    t_layered = best_time(lambda: layered_loss_and_gradient(net, x, y), args.repeats) / args.batch
    t_dense = best_time(lambda: network_loss_and_gradient(flat, x, y, readout, method="dense"),
                        args.repeats) / args.batch
    t_inv = best_time(lambda: [np.linalg.inv(m) for m in mats], args.repeats) / args.batch
    res = {"batch": args.batch, "seconds_per_sample": {"layered": t_layered, "dense_batched": t_dense,
                                                       "numpy_inverse_218": t_inv},
           "ratio_inverse_over_layered": t_inv / t_layered, "ratio_dense_over_layered": t_dense / t_layered}
    print(f"per sample: layered {t_layered * 1e3:.3f} ms, dense batched {t_dense * 1e3:.3f} ms, "
          f"numpy inv 218x218 {t_inv * 1e3:.3f} ms (inverse/layered = {t_inv / t_layered:.1f}x)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == "__main__":
    main()
