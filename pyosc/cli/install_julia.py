"""``pyosc install-julia``: set up the Julia engine ahead of time, so that its first use does not wait minutes.

Two steps, with progress: ``juliapkg.resolve()`` (finds or downloads a Julia in the range of ``juliapkg.json``,
installs the packages PyoscEngine needs into juliapkg's project and precompiles them; skipped when
``PYTHON_JULIACALL_EXE`` and ``PYTHON_JULIACALL_PROJECT`` bypass juliapkg), then starting Julia through the engine's
bridge, which loads PyoscEngine (compiling its workload on first load) and reports the versions.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import time

from pyosc.errors import EngineUnavailableError


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("juliacall") is None or importlib.util.find_spec("juliapkg") is None:
        raise EngineUnavailableError("juliacall is not installed; install it with: pip install 'pyosc[julia]'")
    from pyosc.engines.julia import bridge

    started = time.monotonic()
    if os.environ.get("PYTHON_JULIACALL_EXE") and os.environ.get("PYTHON_JULIACALL_PROJECT"):
        print("[1/2] juliapkg bypassed: juliacall uses PYTHON_JULIACALL_EXE and PYTHON_JULIACALL_PROJECT (that project "
              "must hold PythonCall and PyoscEngine)", flush=True)
    else:
        import juliapkg

        print("[1/2] resolving Julia and the packages of juliapkg.json with juliapkg (downloads Julia and packages "
              "if needed; the first time may take 5 to 20 minutes) ...", flush=True)
        juliapkg.resolve(force=args.force)
        print(f"      julia: {juliapkg.executable()}\n      project: {juliapkg.project()}", flush=True)
    print("[2/2] starting Julia and loading PyoscEngine (precompiles it when its sources changed) ...", flush=True)
    versions = bridge.versions()
    print(f"done in {time.monotonic() - started:.0f} s: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    return 0


def add_command(commands) -> None:
    """Add ``install-julia`` to the subcommands ``commands`` (from ``ArgumentParser.add_subparsers``)."""
    parser = commands.add_parser("install-julia", help="install and precompile the Julia engine ahead of time "
                                 "(needs pip install 'pyosc[julia]')")
    parser.add_argument("--force", action="store_true", help="resolve again even if juliapkg thinks nothing changed")
    parser.set_defaults(func=run)
