"""The ``pyosc`` command line.

``pyosc train TASK [options]`` trains one task (:mod:`pyosc.experiments`) and writes its history to NetCDF;
``pyosc study run|status|collect|plot FILE`` runs parameter studies (:mod:`pyosc.studies`); ``pyosc info`` shows
the engines and the data home. Modules load only when their command runs, so ``pyosc --help`` imports no JAX.
"""
from __future__ import annotations

import argparse
import sys

from pyosc import __version__
from pyosc.errors import PyoscError


def build_parser() -> argparse.ArgumentParser:
    from pyosc.cli import info, install_julia, study, train

    parser = argparse.ArgumentParser(prog="pyosc", description="Train physical oscillator and wave networks.")
    parser.add_argument("--version", action="version", version=f"pyosc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train.add_command(commands)
    study.add_command(commands)
    info.add_command(commands)
    install_julia.add_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failed study points, 2 error, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PyoscError as e:
        print(f"pyosc: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\npyosc: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
