"""The ``pyosc`` command line.

``pyosc train TASK [options]`` trains one task and writes its history to NetCDF;
``pyosc study run|collect|plot FILE`` runs parameter studies (:mod:`pyosc.studies`). Each module in
:data:`TASK_MODULES` adds its tasks through ``add_tasks(subparsers)``; a task's parser sets
``func(args) -> int`` as its default.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from pyosc.errors import PyoscError

TASK_MODULES = ["pyosc.cli.xy", "pyosc.cli.scattering", "pyosc.cli.optomech", "pyosc.cli.onn"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyosc", description="Train physical oscillator and wave networks.")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a network on a task and write its history to NetCDF")
    tasks = train.add_subparsers(dest="task", required=True, metavar="TASK")
    for name in TASK_MODULES:
        importlib.import_module(name).add_tasks(tasks)
    from pyosc.cli.study import add_commands

    add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PyoscError as e:
        print(f"pyosc: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
