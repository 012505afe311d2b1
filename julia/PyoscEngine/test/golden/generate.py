"""Write the golden vectors of PyoscEngine's test suite from the JAX engine (format ``pyosc-golden/1``, see README.md).

    python julia/PyoscEngine/test/golden/generate.py                 # every case, into this folder
    python julia/PyoscEngine/test/golden/generate.py relax-xy-ode-free --out /tmp/golden

Each case solves a tiny problem with the JAX engine's public API and records the Julia call that must reproduce it:
the arguments exactly as the Julia engine's bridge passes them (``pyosc.engines.julia.engine.network_args``,
``dynamics_args``, ``loss_args``: batch arrays reversed, parameters in NumPy's index order), the keywords its option
mapping produces (``relax_keywords``, ...), the JAX results in the same layout, and the tolerances of the comparison.
Deterministic (fixed seeds, no timestamps): a rerun with the same package versions rewrites identical files.
"""
from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np

from pyosc import __version__, topology
from pyosc.engines.base import FinalLoss, IntegrateOptions, Nudge, RelaxOptions, SteadyStateOptions
from pyosc.engines.jax.engine import JaxEngine
from pyosc.engines.julia import arrays
from pyosc.engines.julia.engine import (
    dynamics_args,
    flow_keywords,
    integrate_keywords,
    loss_args,
    network_args,
    relax_keywords,
    steady_keywords,
)

HERE = Path(__file__).resolve().parent
SEED = 17
JAX = JaxEngine()
TOPOLOGY = topology.all_to_all(4, n_inputs=1, n_outputs=1)  # unit 0 clamped, unit 3 the output
SAMPLES, INITS = 2, 2


# --- encoding (README.md "Values"): every array as the Julia side sees it ---------------------------------------------

def _number(x: float) -> float | str:
    if math.isfinite(x):
        return x
    return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")


def encode(value):
    """A value as it crosses the bridge, in JSON: arrays with their Julia shape and column-major data."""
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return _number(value)
    a = np.asarray(value)
    kind = {"b": "bool", "i": "int64", "f": "float64"}[a.dtype.kind]
    data = a.ravel(order="F").tolist()
    if kind == "float64":
        data = [_number(x) for x in data]
    return {"array": kind, "shape": list(a.shape), "data": data}


def dumps(value, level: int = 0) -> str:
    """JSON with one object key per line and every list (shapes, data) on one line."""
    if not isinstance(value, dict) or not value:
        return json.dumps(value)
    pad = " " * (level + 1)
    items = ",\n".join(f"{pad}{json.dumps(k)}: {dumps(v, level + 1)}" for k, v in value.items())
    return "{\n" + items + "\n" + " " * level + "}"


def batch(a: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """A per-state result (samples, inits, ...) in the reversed layout of the Julia results."""
    return arrays.to_julia(arrays.states(np.asarray(a)), dtype)


def equilibrium(eq) -> dict:
    return {"phi": batch(eq.phi), "converged": batch(eq.converged, bool), "force": batch(eq.force),
            "work": batch(eq.work)}


def document(entry: str, model: str, description: str, args: dict, kwargs: dict, expected: dict,
             tolerances: dict) -> dict:
    return {"format": "pyosc-golden/1", "entry": entry, "model": model, "description": description,
            "generator": {"engine": "jax", "pyosc": __version__, "jax": version("jax"), "diffrax": version("diffrax"),
                          "numpy": np.__version__, "script": "julia/PyoscEngine/test/golden/generate.py",
                          "seed": SEED},
            "args": encode(args), "kwargs": kwargs, "expected": encode(expected), "tolerances": tolerances}


# --- phase networks ---------------------------------------------------------------------------------------------------

def phase_params(model: str, even: bool = False) -> dict[str, np.ndarray]:
    """A 4-unit all-to-all network; "onn" with H = sin x - 0.2 sin 2x + 0.05 sin 3x (+ small cos parts if ``even``)."""
    rng = np.random.default_rng(SEED)
    n = TOPOLOGY.n_units
    a = rng.uniform(-1.0, 1.0, (n, n))
    p = {"W": 0.8 * (a + a.T) / 2 * (1 - np.eye(n)), "h": rng.uniform(-0.5, 0.5, n),
         "psi": rng.uniform(-np.pi, np.pi, n)}
    if model == "onn":
        p |= {"omega": rng.normal(0.0, 0.05, n), "shil": np.full(n, 0.1), "sin": np.array([1.0, -0.2, 0.05]),
              "cos": np.array([0.02, 0.05, 0.0, 0.01]) if even else np.zeros(4)}
    return p


def phase_start(model: str, p: dict, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(phi0, targets): 0.2 rad off a free equilibrium (well inside its basin), targets 0.5 rad off its outputs."""
    rng = np.random.default_rng(SEED + 1)
    phi = rng.uniform(-np.pi, np.pi, (SAMPLES, INITS, TOPOLOGY.n_units))
    phi[:, 1:, :TOPOLOGY.n_inputs] = phi[:, :1, :TOPOLOGY.n_inputs]  # the inputs are per sample
    options = RelaxOptions.for_tolerance(method, 1e-10)
    eq = JAX.relax(model, p, phi, TOPOLOGY, options=options)
    assert eq.converged.all(), f"{model} {method}: the starts do not converge"
    free = ~TOPOLOGY.clamped
    phi0 = eq.phi + np.where(free, rng.uniform(-0.2, 0.2, eq.phi.shape), 0.0)
    targets = eq.phi[:, 0, TOPOLOGY.output_units] + rng.choice([-0.5, 0.5], (SAMPLES, TOPOLOGY.n_outputs))
    return phi0, targets


def phase_args(p: dict, phi0: np.ndarray, targets: np.ndarray, beta: float) -> dict:
    phi0_, clamped, outputs, targets_ = network_args(phi0, TOPOLOGY, targets)
    return {"params": arrays.params_to_julia(p), "phi0": phi0_, "clamped": clamped, "outputs": outputs,
            "targets": targets_, "beta": beta}


def relax_case(model: str, method: str, beta: float) -> dict:
    even = model == "onn" and method == "ode"
    p = phase_params(model, even)
    phi0, targets = phase_start(model, p, method)
    options = RelaxOptions() if method == "newton" else RelaxOptions.for_tolerance("ode", 1e-8)
    eq = JAX.relax(model, p, phi0, TOPOLOGY, Nudge(beta, targets) if beta else None, options)
    assert eq.converged.all()
    phi_atol = 1e-8 if method == "newton" else 1e-6
    nudge = f"nudged (beta = {beta})" if beta else "free"
    return document("relax", model, f"4 units all-to-all, unit 0 clamped, {SAMPLES} samples x {INITS} inits, "
                    f"{nudge}, method {method}" + (", H with even parts" if even else ""),
                    phase_args(p, phi0, targets, beta), relax_keywords(options), equilibrium(eq),
                    {"default": {"rtol": 1e-7, "atol": 1e-9}, "phi": {"rtol": 0, "atol": phi_atol, "periodic": True},
                     "force": {"rtol": 0, "atol": options.tol}, "work": {"skip": True}})


def trajectory_case(model: str, beta: float) -> dict:
    even = model == "onn"
    p = phase_params(model, even)
    phi0, targets = phase_start(model, p, "ode")
    times = np.array([0.5, 2.0, 5.0, 10.0])
    options = RelaxOptions(rtol=1e-10, atol=1e-10)
    phis = JAX.trajectory(model, p, phi0, TOPOLOGY, times, Nudge(beta, targets) if beta else None, options)
    args = phase_args(p, phi0, targets, beta) | {"times": times}
    return document("trajectory", model, f"the flow from 0.2 rad off an equilibrium, {'nudged' if beta else 'free'}"
                    + (", H with even parts" if even else ""), args, flow_keywords(options),
                    {"phis": batch(phis), "ok": np.ones(SAMPLES * INITS, dtype=bool)},
                    {"default": {"rtol": 0, "atol": 1e-6}, "phis": {"rtol": 0, "atol": 1e-6, "periodic": True}})


def ep_step_case(model: str) -> dict:
    p = phase_params(model)
    phi0, targets = phase_start(model, p, "newton")
    beta, options = 0.1, RelaxOptions()
    step = JAX.ep_step(model, p, phi0, TOPOLOGY, Nudge(beta, targets), options)
    expected = {"gradient": arrays.params_to_julia(step.gradient), "free": equilibrium(step.free),
                "nudged": equilibrium(step.nudged)}
    phase = {"rtol": 0, "atol": 1e-8, "periodic": True}
    return document("ep_step", model, f"one EP step, beta = {beta}, newton", phase_args(p, phi0, targets, beta),
                    relax_keywords(options), expected,
                    {"default": {"rtol": 1e-7, "atol": 1e-9}, "gradient": {"rtol": 1e-6, "atol": 1e-7},
                     "free.phi": phase, "nudged.phi": phase, "free.force": {"rtol": 0, "atol": options.tol},
                     "nudged.force": {"rtol": 0, "atol": options.tol}, "free.work": {"skip": True},
                     "nudged.work": {"skip": True}})


# --- dynamical models (the fixtures of runtests.jl) -------------------------------------------------------------------

def couplings(n: int, scale: float) -> np.ndarray:
    i, j = np.meshgrid(np.arange(1, n + 1), np.arange(1, n + 1), indexing="ij")
    return scale * (np.sin(1.3 * i + 0.7 * j) + np.sin(1.3 * j + 0.7 * i)) / 2 * (1 - np.eye(n))


def dynamics_problem(model: str) -> tuple[dict, np.ndarray, np.ndarray, float]:
    """(params, y0 (samples, inits, N, d), inputs (samples, 1), t1)."""
    if model == "optomech-micro":
        p = {"kappa": 2.0, "detuning": 1.0, "gamma_m": 0.01, "power": 0.06, "f_in": 0.004, "frame": 0.00349,
             "ubar": 0.05, "f": np.array([0.003, 0.002]), "psi": np.array([0.1, 0.4]),
             "K": np.array([[-0.001, 0.002], [0.002, -0.001]])}
        b = np.arange(1.0, SAMPLES + 1)[:, None]
        phase = np.concatenate([b, b + 2.0], 1)  # (samples, 2 cells): near the limit cycle, A = 1.9
        y0 = np.stack([np.full_like(phase, 0.4), 0.3 + 0.1 * phase, 0.05 + 1.9 * np.cos(phase), -1.9 * np.sin(phase)],
                      -1)[:, None]  # (samples, 1 init, 2 cells, 4)
        return p, y0, 0.2 * b, 3.0
    if model == "optomech-averaged":
        s = np.linspace(0.0, 16.0, 33)  # a Stuart-Landau cell: g = 0.01 (1 - s/4), dOmega = 0.002 s (exact)
        p = {"s_max": 16.0, "growth": 0.01 * (1 - s / 4), "growth_ds": np.full(33, -0.0025), "shift": 0.002 * s,
             "shift_ds": np.full(33, 0.002), "f_in": 0.02, "frame": 0.008, "f": np.array([0.02, 0.015]),
             "psi": np.array([0.3, -0.2]), "K": np.array([[-0.001, 0.004], [0.004, -0.001]])}
        angle = 0.4 * np.arange(SAMPLES * INITS).reshape(SAMPLES, INITS, 1) + np.arange(1, 3)
        y0 = np.stack([np.cos(angle), np.sin(angle)], -1) * (2 + 0.1 * np.arange(1, 3))[:, None]
        return p, y0, 0.2 * np.arange(1, SAMPLES + 1)[:, None], 40.0
    p = {"omega": 0.01, "h_in": 0.2, "b_in": 0.02, "h": np.array([0.2, 0.1, 0.15]), "b": np.array([0.02, 0.01, 0.0]),
         "psi": np.array([0.0, 0.4, -0.3]), "J": 0.3 * couplings(3, 1.0), "C": 0.05 * couplings(3, 1.0)}
    k = np.arange(1, 4)
    y0 = 0.3 * np.sin(2 * k + np.arange(SAMPLES * INITS).reshape(SAMPLES, INITS, 1))[..., None]
    return p, y0, 0.2 * np.arange(1, SAMPLES + 1)[:, None], 20.0


def dynamics_call(p: dict, y0: np.ndarray, x: np.ndarray, loss: FinalLoss | None = None) -> dict:
    """The arguments ``params, y0, inputs`` (and ``targets, outputs`` of a loss) by name."""
    y0_, x_ = dynamics_args(y0, x)
    args = {"params": arrays.params_to_julia(p), "y0": y0_, "inputs": x_}
    if loss is not None:
        args["targets"], args["outputs"] = loss_args(y0, loss)
    return args


def integrate_case(model: str) -> dict:
    p, y0, x, t1 = dynamics_problem(model)
    times = t1 * np.array([1 / 3, 2 / 3, 1.0])
    options = IntegrateOptions(rtol=1e-10, atol=1e-10)
    ys = JAX.integrate(model, p, y0, times, inputs=x, options=options)
    return document("integrate", model, f"{y0.shape[0]} samples x {y0.shape[1]} inits, states at t = {times.tolist()}",
                    dynamics_call(p, y0, x) | {"times": times},
                    integrate_keywords(options), {"ys": batch(ys), "ok": np.ones(y0.shape[0] * y0.shape[1], bool)},
                    {"default": {"rtol": 1e-6, "atol": 1e-7}})


def final_state_case(model: str, kind: str) -> dict:
    p, y0, x, t1 = dynamics_problem(model)
    loss = FinalLoss(0.4 + 0.1 * np.arange(1, SAMPLES + 1)[:, None], outputs=(y0.shape[2] - 1,), kind=kind)
    options = IntegrateOptions(rtol=1e-10, atol=1e-10)
    value, grad = JAX.final_state_loss_and_grad(model, p, y0, t1, loss, inputs=x, options=options)
    return document("final_state_loss_and_grad", model, f"loss '{kind}' on the last unit's phase at t1 = {t1}",
                    dynamics_call(p, y0, x, loss) | {"t1": t1},
                    integrate_keywords(options) | {"kind": kind},
                    {"loss": float(value), "gradient": arrays.params_to_julia(grad),
                     "ok": np.ones(y0.shape[0] * y0.shape[1], bool)},
                    {"default": {"rtol": 1e-6, "atol": 1e-9}, "gradient": {"rtol": 1e-5, "atol": 1e-7}})


def steady_state_case(model: str, kind: str) -> dict:
    p, y0, x, _ = dynamics_problem(model)
    y0 = JAX.integrate(model, p, y0, np.array([5e3]), inputs=x, options=IntegrateOptions(rtol=1e-10, atol=1e-10))
    y0 = y0[:, :, 0]  # on the attractor: a stable locked state
    loss = FinalLoss(0.2 * np.arange(1, SAMPLES + 1)[:, None], outputs=(0,), kind=kind)
    options = SteadyStateOptions(tol=1e-12)
    value, grad, converged = JAX.steady_state_loss_and_grad(model, p, y0, loss, inputs=x, options=options)
    assert converged.all(), f"{model}: steady states not found"
    return document("steady_state_loss_and_grad", model, f"loss '{kind}' on unit 0 at the steady state reached "
                    "from the attractor (t = 5000)", dynamics_call(p, y0, x, loss),
                    steady_keywords(options) | {"kind": kind},
                    {"loss": float(value), "gradient": arrays.params_to_julia(grad),
                     "converged": batch(converged, bool)},
                    {"default": {"rtol": 1e-8, "atol": 1e-12}, "gradient": {"rtol": 1e-6, "atol": 1e-10}})


CASES: dict[str, Callable[[], dict]] = {
    "relax-xy-newton-nudged": lambda: relax_case("xy", "newton", 0.5),
    "relax-xy-ode-free": lambda: relax_case("xy", "ode", 0.0),
    "relax-onn-newton-free": lambda: relax_case("onn", "newton", 0.0),
    "relax-onn-ode-nudged": lambda: relax_case("onn", "ode", 0.3),
    "trajectory-xy-nudged": lambda: trajectory_case("xy", 0.5),
    "trajectory-onn-free": lambda: trajectory_case("onn", 0.0),
    "ep_step-xy-newton": lambda: ep_step_case("xy"),
    "ep_step-onn-newton": lambda: ep_step_case("onn"),
    "integrate-optomech-micro-tsit5": lambda: integrate_case("optomech-micro"),
    "integrate-optomech-averaged-tsit5": lambda: integrate_case("optomech-averaged"),
    "integrate-optomech-phase-tsit5": lambda: integrate_case("optomech-phase"),
    "final_state_loss_and_grad-optomech-micro-distance": lambda: final_state_case("optomech-micro", "distance"),
    "final_state_loss_and_grad-optomech-averaged-log": lambda: final_state_case("optomech-averaged", "log"),
    "final_state_loss_and_grad-optomech-phase-distance": lambda: final_state_case("optomech-phase", "distance"),
    "steady_state_loss_and_grad-optomech-averaged-distance": lambda: steady_state_case("optomech-averaged", "distance"),
    "steady_state_loss_and_grad-optomech-phase-log": lambda: steady_state_case("optomech-phase", "log"),
}
"""Every golden case by file name (without ``.json``)."""


def write(names: list[str], out: Path = HERE) -> list[Path]:
    """Write the cases ``names`` as ``out/<name>.json``; returns the paths."""
    paths = []
    for name in names:
        path = out / f"{name}.json"
        path.write_text(dumps(CASES[name]()) + "\n")
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"cases to write (default: all): {', '.join(CASES)}")
    parser.add_argument("--out", type=Path, default=HERE, help="folder (default: %(default)s)")
    args = parser.parse_args()
    if unknown := sorted(set(args.names) - set(CASES)):
        parser.error(f"unknown cases {unknown}")
    for path in write(args.names or list(CASES), args.out):
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
