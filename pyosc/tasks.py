"""Trainable tasks that parameter studies can run: a name, a typed configuration schema, a run function.

A task's ``run(config) -> xarray.Dataset`` trains one configuration (for the XY tasks, ``runs``
independent networks in one vectorised call) and returns its history. Study files name a task and
set its keys; :func:`validate_config` checks names and types before any work starts.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from pyosc.errors import InvalidInputError


@dataclass(frozen=True)
class Task:
    """``schema`` maps each configuration key to ``(type, default)``. A ``checkpointed`` task's ``run`` takes
    ``checkpoint=path`` too: it saves its state there while it trains and resumes from it when it exists."""

    name: str
    description: str
    schema: dict[str, tuple[type, Any]]
    run: Callable[..., xr.Dataset]
    checkpointed: bool = False


def _ep_config(c: dict, batch_per_class=None):
    from pyosc.engines.base import RelaxOptions
    from pyosc.training.ep import EPConfig

    return EPConfig(beta=c["beta"], learning_rate=c["learning_rate"], optimizer=c["optimizer"],
                    n_iterations=c["iterations"], n_inits=c["n_inits"], batch_per_class=batch_per_class,
                    eval_every=c["eval_every"], snapshots=tuple(c.get("snapshots", ())), seed=c["seed"],
                    relax=RelaxOptions.for_tolerance(c["method"], c["tol"], c["t_max"], c["shared_steps"]))


def _run_xy_xor(c: dict, checkpoint=None) -> xr.Dataset:
    from pyosc import datasets, topology
    from pyosc.models import xy
    from pyosc.training.ep import train_ep

    topo = topology.all_to_all(c["units"], 2, 1)
    params = xy.init_params(topo, np.random.default_rng(c["seed"]), scheme="xor", n_runs=c["runs"])
    return train_ep(topo, datasets.xor(), params, _ep_config(c), progress=False, checkpoint=checkpoint)


def _run_xy_digits(c: dict, checkpoint=None) -> xr.Dataset:
    from pyosc import datasets, topology
    from pyosc.models import xy
    from pyosc.training.ep import train_ep

    topo = topology.from_spec(c["arch"], n_inputs=64, n_outputs=10)
    params = xy.init_params(topo, np.random.default_rng(c["seed"]), scheme="layered" if topo.layers else "all-to-all")
    train, test = datasets.digits_paper_split()
    return train_ep(topo, train, params, _ep_config(c, c["batch_per_class"]), test=test, progress=False,
                    checkpoint=checkpoint)


def _run_onn_memory(c: dict) -> xr.Dataset:
    from pyosc.cli.onn import memory_experiment

    return memory_experiment(**c)[0]


def _run_scattering_digits(c: dict, checkpoint=None) -> xr.Dataset:
    from pyosc.cli.scattering import digits_experiment
    from pyosc.training.scattering import train_network

    network, config, data, _ = digits_experiment(**c)
    return train_network(network, *data, config, checkpoint=checkpoint)[2]


_EP_KEYS = {"beta": (float, 0.1), "optimizer": (str, "sgd"), "n_inits": (int, 1), "seed": (int, 0), "tol": (float, 1e-10),
            "method": (str, "newton"), "t_max": (float, 1e4), "shared_steps": (bool, False)}

TASKS: dict[str, Task] = {
    "xy-xor": Task("xy-xor", "XOR on an all-to-all XY network trained by EP (runs = independent seeds)",
                   {"units": (int, 5), "runs": (int, 100), "iterations": (int, 1000), "learning_rate": (float, 0.1),
                    "eval_every": (int, 100), **_EP_KEYS}, _run_xy_xor, checkpointed=True),
    "xy-digits": Task("xy-digits", "8x8 digits on a layered or all-to-all XY network trained by EP",
                      {"arch": (str, "layered:64,200,10"), "iterations": (int, 2000), "learning_rate": (float, 0.01),
                       "batch_per_class": (int, 30), "eval_every": (int, 5), "snapshots": (list, []), **_EP_KEYS},
                      _run_xy_digits, checkpointed=True),
    "onn-memory": Task("onn-memory", "letters stored in a phase-oscillator associative memory by EP, against Hebbian",
                       {"letters": (str, "AEIOU"), "nonlinearity": (float, 0.0), "harmonics": (int, 5),
                        "shil": (float, 0.3), "beta": (float, 0.1), "learning_rate": (float, 0.005),
                        "iterations": (int, 150), "trials": (int, 4), "corruption": (float, 0.1),
                        "init": (str, "hebbian"), "eval_trials": (int, 50), "seed": (int, 0)}, _run_onn_memory),
    "scattering-digits": Task("scattering-digits", "layered linear scattering network on UCI optdigits (arXiv 2308.16181)",
                              {"hidden": (int, 80), "replication": (int, 2), "kappa": (float, 0.5),
                               "background": (float, 5.0), "iterations": (int, 58440), "batch_size": (int, 200),
                               "optimizer": (str, "sgd"), "lr": (float, 0.2), "offset_lr_scale": (float, 4.0),
                               "loss": (str, "cross-entropy"), "beta": (float, 8.0), "eval_every": (int, 60),
                               "seed": (int, 0)}, _run_scattering_digits, checkpointed=True),
}


def register(task: Task) -> None:
    """Add a task (e.g. from another platform's module)."""
    TASKS[task.name] = task


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise InvalidInputError(f"unknown task {name!r}; available: {sorted(TASKS)}")
    return TASKS[name]


def check_value(task: Task, key: str, value: Any, where: str) -> Any:
    """``value`` converted to the schema type of ``key``; errors name ``where`` (e.g. 'sweep.units')."""
    if key not in task.schema:
        raise InvalidInputError(f"unknown key {where!r} for task {task.name!r}; allowed: {sorted(task.schema)}")
    kind = task.schema[key][0]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InvalidInputError(f"{where} must be of type {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def validate_config(task: Task, config: dict) -> dict:
    """The full configuration: defaults overlaid with ``config``, every key and type checked."""
    full = {k: default for k, (_, default) in task.schema.items()}
    for k, v in config.items():
        full[k] = check_value(task, k, v, k)
    return full
