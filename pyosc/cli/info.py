"""``pyosc info``: pyosc's version, its data home and the engines, available or why not. Imports no JAX."""
from __future__ import annotations

import argparse

from pyosc import __version__
from pyosc.data.datasets import get_data_home
from pyosc.engines import list_engines


def report() -> str:
    """The text ``pyosc info`` prints."""
    lines = [f"pyosc {__version__}", f"data home: {get_data_home()}", "engines:"]
    for name, status in list_engines().items():
        versions = ", ".join(f"{package} {version}" for package, version in status.versions.items())
        lines.append(f"  {name}: {'available' if status.available else 'unavailable'} - {status.description}"
                     + (f" ({versions})" if versions else ""))
        if not status.available:
            lines.append(f"    why: {status.reason}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    print(report())
    return 0


def add_command(commands) -> None:
    """Add ``info`` to the subcommands ``commands`` (from ``ArgumentParser.add_subparsers``)."""
    parser = commands.add_parser("info", help="show pyosc's version, data home and engines (available or why not)")
    parser.set_defaults(func=run)
