"""Engines: the numerics behind the interface of :mod:`pyosc.engines.base`, found by name.

:func:`get_engine` returns an engine, :func:`list_engines` tells which engines exist, whether each can be used here
and why not. The registry :data:`ENGINES` holds small entries, in the spirit of xarray's backend entrypoints: each
names the class that implements its engine, describes it and probes its packages without importing them
(``importlib.util.find_spec`` and ``importlib.metadata``), so that importing this package or listing the engines
loads no JAX. An entry may also name a ``probe`` that tries the engine once its packages are there (the Julia engine
starts Julia in a subprocess: juliacall is never imported by listing the engines).
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass

from pyosc.engines.base import BaseEngine, Engine
from pyosc.errors import EngineUnavailableError, InvalidInputError

DEFAULT_ENGINE = "jax"
"""The engine of ``get_engine()`` when ``$PYOSC_ENGINE`` is not set."""


@dataclass(frozen=True)
class EngineStatus:
    """Whether an engine can be used here. ``reason``: why not and how to get it (empty when ``available``);
    ``versions``: the installed versions of the packages it needs (distribution name -> version) and those its
    probe reports (the Julia engine: Julia, its packages and thread count)."""

    name: str
    available: bool
    reason: str
    description: str
    versions: dict[str, str]


@dataclass(frozen=True)
class EngineEntry:
    """A registered engine: ``target`` = ``"module:Class"`` of its implementation (``None``: not part of this
    version), the packages it ``requires`` (import names, also their distribution names), how to ``install``
    them, and optionally a ``probe`` = ``"module:function"`` returning ``(reason, versions)`` (reason empty when the
    engine works here), called only when the packages are installed (the function caches its answer)."""

    name: str
    target: str | None
    description: str
    requires: tuple[str, ...]
    install: str
    probe: str | None = None

    def status(self) -> EngineStatus:
        """Availability from the installed packages (without importing them), then from the probe."""
        versions = {}
        for package in self.requires:
            try:
                versions[package] = importlib.metadata.version(package)
            except importlib.metadata.PackageNotFoundError:
                pass
        missing = [package for package in self.requires if importlib.util.find_spec(package) is None]
        problems = ([] if self.target else ["not implemented in this version of pyosc"]) + \
            [f"{package} is not installed" for package in missing]
        if not problems and self.probe:
            module, function = self.probe.split(":")
            reason, found = getattr(importlib.import_module(module), function)()
            versions.update(found)
            problems += [reason] if reason else []
        reason = "; ".join(problems + [f"install: {self.install}"]) if problems else ""
        return EngineStatus(self.name, not problems, reason, self.description, versions)


ENGINES: dict[str, EngineEntry] = {e.name: e for e in (
    EngineEntry("jax", "pyosc.engines.jax.engine:JaxEngine", "JAX + diffrax: compiled, float64, CPU or GPU",
                ("jax", "jaxlib", "diffrax", "equinox"), "pip install jax diffrax equinox"),
    EngineEntry("julia", "pyosc.engines.julia.engine:JuliaEngine",
                "Julia (OrdinaryDiffEq.jl, SciMLSensitivity.jl) through juliacall: stiff solvers, adjoints, threads",
                ("juliacall",), "pip install 'pyosc[julia]' then pyosc install-julia",
                probe="pyosc.engines.julia.bridge:probe"),
)}


def list_engines() -> dict[str, EngineStatus]:
    """Every registered engine's :class:`EngineStatus`, by name."""
    return {name: entry.status() for name, entry in ENGINES.items()}


def get_engine(name: str | Engine | None = None) -> Engine:
    """The engine ``name`` (``None``: ``$PYOSC_ENGINE``, else ``"jax"``); an engine instance is returned unchanged.

    Raises :class:`~pyosc.errors.EngineUnavailableError` (saying why and how to get it) if the engine cannot be
    used here, :class:`~pyosc.errors.InvalidInputError` for an unknown name.
    """
    if isinstance(name, BaseEngine):
        return name
    source, env = "", os.environ.get("PYOSC_ENGINE")
    if name is None:
        name, source = (env, " (from $PYOSC_ENGINE)") if env else (DEFAULT_ENGINE, "")
    if not isinstance(name, str) or name not in ENGINES:
        raise InvalidInputError(f"unknown engine {name!r}{source}; the engines are {sorted(ENGINES)}")
    status = ENGINES[name].status()
    if not status.available:
        raise EngineUnavailableError(f"engine {name!r} is unavailable: {status.reason}")
    module, cls = ENGINES[name].target.split(":")
    return getattr(importlib.import_module(module), cls)()
