"""Reproduce the digits results of Wanjura & Marquardt (arXiv 2308.16181) with ``pyosc train scattering-digits``.

Usage: ``python studies/scattering_digits.py [scattering-digits options]``, e.g.
``python studies/scattering_digits.py --hidden 80 --checkpoint studies/results/scattering/n80.ckpt.npz
--out studies/results/scattering/digits_n80.nc``. Runs only the scattering task (independent of other CLI tasks);
re-running the same command resumes from the checkpoint.
"""
from __future__ import annotations

import argparse
import sys

from pyosc.cli import scattering


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="scattering_digits")
    tasks = parser.add_subparsers(dest="task", required=True)
    scattering.add_tasks(tasks)
    args = parser.parse_args(["scattering-digits", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
