"""Tasks: one module per experiment, each with a ``Config`` (a frozen dataclass whose fields hold every default,
see :mod:`pyosc.experiments.options`), ``run(config, *, checkpoint=None, progress=False, engine=None) ->
xarray.Dataset`` (the training history) and ``summary(history) -> str``.

:data:`TASKS` names them for the CLI (``pyosc train NAME``) and study files (``task = "NAME"``); modules load only
when a task is used, so listing tasks costs nothing.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from pyosc.errors import InvalidInputError


@dataclass(frozen=True)
class Task:
    """A task's name, its short ``aliases`` on the command line, its module and a one-line description."""

    name: str
    module: str
    description: str
    aliases: tuple[str, ...] = ()

    def load(self) -> ModuleType:
        """The experiment module (``Config``, ``run``, ``summary``)."""
        return importlib.import_module(self.module)


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("xy-xor", "pyosc.experiments.xor", "XOR on an all-to-all XY network trained by EP (arXiv 2402.08579, "
                                            "Fig. 3)", ("xor",)),
    Task("xy-digits", "pyosc.experiments.digits", "8x8 digits on an XY network trained by EP (arXiv 2402.08579, "
                                                  "Table 2)", ("digits",)),
    Task("xy-mnist", "pyosc.experiments.mnist", "MNIST on a layered XY network trained by EP",
         ("mnist",)),
    Task("onn-memory", "pyosc.experiments.onn_memory", "associative memory of 5x5 letters on a phase-reduced "
                                                       "Van der Pol ONN (EP vs Hebbian)"),
    Task("optomech-xor", "pyosc.experiments.optomech_xor", "XOR on 5 self-oscillating optomechanical cells "
                                                           "(arXiv 2604.11658), Adam on adjoint gradients"),
    Task("scattering-digits", "pyosc.experiments.scattering_digits", "layered linear scattering network on UCI "
                                                                     "optdigits (arXiv 2308.16181)"),
)}


def get_task(name: str) -> Task:
    """The task called ``name`` or one of its aliases."""
    for task in TASKS.values():
        if name == task.name or name in task.aliases:
            return task
    names = sorted(TASKS) + sorted(a for t in TASKS.values() for a in t.aliases)
    raise InvalidInputError(f"unknown task {name!r}; available: {names}")
