"""The bridge to Julia: the only module that imports juliacall, and only when the Julia engine starts.

:func:`start` loads the Julia package PyoscEngine (``julia/PyoscEngine``, found by juliapkg through ``juliapkg.json``)
once per process; :func:`call` calls one of its entry points, as listed in :data:`CALLS` (the tests compare that table
with the Julia sources), and turns Julia errors into pyosc errors; :func:`probe` tells, from a subprocess, whether
Julia starts here at all; :func:`versions` reports what runs.

Before importing juliacall, :func:`start` sets ``PYTHON_JULIACALL_HANDLE_SIGNALS=yes`` (multithreaded Julia needs its
signal handlers; Ctrl-C then no longer raises KeyboardInterrupt during a Julia call) and ``PYTHON_JULIACALL_THREADS``
to the number of usable CPUs, each unless the user set it (threads also not when ``JULIA_NUM_THREADS`` is set).
juliacall reads them once per process; if another library imported juliacall first, they do not apply and a warning
says so. Call the engine from the main Python thread.
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from pyosc.engines.julia.arrays import params_to_julia
from pyosc.errors import EngineUnavailableError, InvalidInputError, JuliaError

PROBE_TIMEOUT = 300.0
"""Seconds the subprocess of :func:`probe` may take to start Julia and load PyoscEngine (precompiled)."""


class Call(NamedTuple):
    """How the bridge calls a PyoscEngine entry point: positional ``arity`` (the model name included) and the
    ``keywords`` it may pass."""

    arity: int
    keywords: frozenset[str]


_RELAX = frozenset({"method", "tol", "max_iter", "t_max", "solver", "rtol", "atol", "max_steps"})
_STEPS = frozenset({"solver", "rtol", "atol", "max_steps"})
CALLS: dict[str, Call] = {
    "relax": Call(7, _RELAX),
    "ep_step": Call(7, _RELAX),
    "trajectory": Call(8, _STEPS),
    "integrate": Call(5, _STEPS | {"dt"}),
    "final_state_loss_and_grad": Call(7, _STEPS | {"dt", "kind"}),
    "steady_state_loss_and_grad": Call(6, frozenset({"kind", "tol", "max_iter", "dt0"})),
    "versions": Call(0, frozenset()),
}
"""Every call of the Julia side, by entry point name (see the docstring of ``julia/PyoscEngine/src/PyoscEngine.jl``)."""


class _Julia(NamedTuple):
    """A started Julia: the juliacall module, the PyoscEngine module and the type ``Dict{String, Any}``."""

    juliacall: Any
    engine: Any
    dict_type: Any


_session: _Julia | None = None


def _usable_cpus() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def configure_environment() -> None:
    """Set juliacall's signal handling and thread count for the engine, unless the user set them."""
    os.environ.setdefault("PYTHON_JULIACALL_HANDLE_SIGNALS", "yes")
    if "PYTHON_JULIACALL_THREADS" not in os.environ and "JULIA_NUM_THREADS" not in os.environ:
        os.environ["PYTHON_JULIACALL_THREADS"] = str(_usable_cpus())


def start() -> _Julia:
    """The running Julia with PyoscEngine loaded (started, resolved and compiled as needed on the first call).

    Raises :class:`~pyosc.errors.EngineUnavailableError` with the reason if Julia or PyoscEngine does not load.
    """
    global _session
    if _session is not None:
        return _session
    if "juliacall" in sys.modules:
        warnings.warn("juliacall was imported before pyosc's Julia engine started, so pyosc's settings "
                      "PYTHON_JULIACALL_HANDLE_SIGNALS=yes and PYTHON_JULIACALL_THREADS do not apply; without "
                      "HANDLE_SIGNALS=yes, multithreaded Julia can crash", stacklevel=2)
    else:
        configure_environment()
    try:
        import juliacall

        module = juliacall.newmodule("PyoscBridge")
        module.seval("import PyoscEngine")
        _session = _Julia(juliacall, module.PyoscEngine, juliacall.Main.seval("Dict{String, Any}"))
    except Exception as e:
        raise EngineUnavailableError(f"the Julia engine did not start: {type(e).__name__}: {e} "
                                     "(set it up with: pyosc install-julia)") from e
    return _session


def _julia_dict(julia: _Julia, params: Mapping[str, np.ndarray]):
    """``params`` as a Julia ``Dict{String, Any}``: arrays copied into native Julia arrays, numbers as Float64."""
    d = julia.dict_type()
    for name, value in params_to_julia(params).items():
        d[name] = julia.juliacall.convert(julia.juliacall.Main.Array, value) if isinstance(value, np.ndarray) \
            else value
    return d


def call(entry: str, *args, **kwargs):
    """``PyoscEngine.<entry>(args...; kwargs...)`` as juliacall returns it (tuples as tuples, arrays wrapped: copy
    them with :mod:`~pyosc.engines.julia.arrays`). Mappings among ``args`` go as Julia dicts; pass arrays in the
    layout of :mod:`~pyosc.engines.julia.arrays` and Python ``float``/``int``/``str`` scalars.

    A Julia ``ArgumentError`` raises :class:`~pyosc.errors.InvalidInputError`, any other Julia error
    :class:`~pyosc.errors.JuliaError`, both with Julia's message.
    """
    spec = CALLS[entry]
    if len(args) != spec.arity or not set(kwargs) <= spec.keywords:
        raise TypeError(f"PyoscEngine.{entry} called with {len(args)} positional arguments and keywords "
                        f"{sorted(kwargs)}; CALLS allows {spec}")
    julia = start()
    args = tuple(_julia_dict(julia, a) if isinstance(a, Mapping) else a for a in args)
    try:
        return getattr(julia.engine, entry)(*args, **kwargs)
    except julia.juliacall.JuliaError as e:
        main = julia.juliacall.Main
        message = str(main.sprint(main.showerror, e.exception))
        if main.isa(e.exception, main.ArgumentError):
            raise InvalidInputError(f"Julia engine: {message}") from e
        raise JuliaError(f"PyoscEngine.{entry}: {message}") from e


def versions() -> dict[str, str]:
    """Versions of Julia, PyoscEngine and its SciML packages, and Julia's thread count (starts Julia)."""
    d = call("versions")
    return {str(k): str(d[k]) for k in d}


_PROBE = """
import json
from pyosc.engines.julia import bridge
try:
    print("PYOSC-PROBE", json.dumps({"versions": bridge.versions()}))
except Exception as e:
    print("PYOSC-PROBE", json.dumps({"error": str(e)}))
"""


@functools.cache
def probe() -> tuple[str, dict[str, str]]:
    """``(reason, versions)``: why the Julia engine cannot start here (``""`` if it can) and, if it can, its
    :func:`versions`. Tried once per process, in a subprocess with ``PYTHON_JULIAPKG_OFFLINE=yes`` (a failed Julia
    start cannot be retried in the same process, and a probe must not download), within :data:`PROBE_TIMEOUT`."""
    if _session is not None:
        return "", versions()
    root = str(Path(__file__).resolve().parents[3])  # the directory holding the pyosc package
    env = {**os.environ, "PYTHON_JULIAPKG_OFFLINE": "yes",
           "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE], check=False, env=env, capture_output=True,
                              text=True, timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return (f"Julia did not start within {PROBE_TIMEOUT:.0f} s (is PyoscEngine precompiled? run "
                "pyosc install-julia)"), {}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("PYOSC-PROBE "):
            found = json.loads(line.removeprefix("PYOSC-PROBE "))
            return found.get("error", ""), found.get("versions", {})
    tail = " | ".join(done.stderr.strip().splitlines()[-3:])
    return f"the Julia probe exited with status {done.returncode}: {tail}", {}
