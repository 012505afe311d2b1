"""The models pyosc knows: name -> description of its kind, parameters and state. Imports no JAX.

Engines and front ends find models here (their equations live in the model modules). Two kinds:

* ``"energy"``: phase networks with an energy (one phase per unit), relaxed to equilibrium and trained by
  equilibrium propagation: ``"xy"`` (:mod:`pyosc.models.xy`) and ``"onn"`` (:mod:`pyosc.models.onn`);
* ``"dynamics"``: right-hand sides integrated in time, ``state_size`` numbers per unit: ``"optomech-micro"``,
  ``"optomech-averaged"`` and ``"optomech-phase"`` (:mod:`pyosc.models.optomech`).

Parameters are mappings name -> array. Every array may carry one leading ``runs`` axis (independent networks
computed together), the same for all. The roles, by shape without that axis (N units):

* scalars ``()``; vectors ``(N,)``, one value per unit;
* couplings ``(N, N)`` symmetric (to 1e-12) with a zero diagonal; matrices ``(N, N)`` symmetric (to 1e-14
  relative), diagonal allowed;
* coefficients: 1-D, of lengths the model's own rule checks; tables: 1-D fixed data of one common length
  (e.g. a tabulated function), which get no gradient.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from pyosc.errors import InvalidInputError, as_real_array

KINDS = ("energy", "dynamics")


@dataclass(frozen=True)
class Model:
    """Description of a named model. ``check(params, lead)`` applies the model's own rules to the validated
    arrays (``lead``: the runs axis, ``()`` or ``(runs,)``); ``energy_obstacle(params)`` says why these
    parameters have no energy (``None``: they have one), for energy models whose energy depends on them."""

    name: str
    kind: str
    description: str
    scalars: tuple[str, ...] = ()
    vectors: tuple[str, ...] = ()
    couplings: tuple[str, ...] = ()
    matrices: tuple[str, ...] = ()
    coefficients: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    state_size: int = 1
    autonomous: bool = True
    check: Callable[[dict[str, np.ndarray], tuple[int, ...]], None] | None = None
    energy_obstacle: Callable[[Mapping[str, np.ndarray]], str | None] | None = None

    @property
    def param_names(self) -> tuple[str, ...]:
        return self.couplings + self.matrices + self.vectors + self.coefficients + self.scalars + self.tables

    @property
    def has_energy(self) -> bool:
        """An energy exists (for some parameters): the ``"newton"`` relaxation and EP apply."""
        return self.kind == "energy"


def _onn_check(p: dict[str, np.ndarray], lead: tuple[int, ...]) -> None:
    if np.any(p["shil"] < 0):
        raise InvalidInputError("shil (second-harmonic injection amplitudes) must be >= 0")
    if p["sin"].shape[-1] < 1:
        raise InvalidInputError("sin must hold at least one coefficient (b_1)")
    as_real_array("cos", p["cos"], shape=lead + (p["sin"].shape[-1] + 1,))


def _onn_even_part(p: Mapping[str, np.ndarray]) -> str | None:
    if np.any(np.asarray(p["cos"]) != 0):
        return ("the coupling function H has even (cos) parts, so the phase model has no energy for the 'newton' "
                "relaxation; use RelaxOptions(method='ode')")
    return None


_OPTOMECH_DRIVES = ("f", "psi")
MODELS: dict[str, Model] = {m.name: m for m in (
    Model("xy", "energy", "XY phase oscillators with an energy (Wang, Wanjura & Marquardt)",
          vectors=("h", "psi"), couplings=("W",)),
    Model("onn", "energy", "phase-deviation model of weakly coupled oscillators, coupling function H in "
          "Fourier coefficients (energy when H is odd)",
          vectors=("h", "psi", "omega", "shil"), couplings=("W",), coefficients=("sin", "cos"),
          check=_onn_check, energy_obstacle=_onn_even_part),
    Model("optomech-micro", "dynamics", "microscopic optomechanical network: cavity fields and drum motion",
          scalars=("kappa", "detuning", "gamma_m", "power", "f_in", "frame", "ubar"), vectors=_OPTOMECH_DRIVES,
          matrices=("K",), state_size=4, autonomous=False),
    Model("optomech-averaged", "dynamics", "optomechanical network averaged over the mechanical period "
          "(complex amplitudes, tabulated Bessel balance)",
          scalars=("s_max", "f_in", "frame"), vectors=_OPTOMECH_DRIVES, matrices=("K",),
          tables=("growth", "growth_ds", "shift", "shift_ds"), state_size=2),
    Model("optomech-phase", "dynamics", "phase-only optomechanical network (Heinrich et al.'s modified Kuramoto "
          "model)", scalars=("omega", "h_in", "b_in"), vectors=("h", "b", "psi"), matrices=("J", "C")),
)}


def names(kind: str | None = None) -> tuple[str, ...]:
    """The registered model names (of one kind)."""
    return tuple(name for name, m in MODELS.items() if kind in (None, m.kind))


def _listing(items) -> str:
    quoted = [repr(i) for i in items]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def get_model(name: str) -> Model:
    """The description of model ``name``; InvalidInputError listing the models if there is none."""
    if not isinstance(name, str) or name not in MODELS:
        raise InvalidInputError(f"unknown model {name!r} (energy models {_listing(names('energy'))}; "
                                f"dynamics models {_listing(names('dynamics'))})")
    return MODELS[name]


def as_mapping(params) -> Mapping:
    """``params`` as a mapping name -> array: a mapping as it is, a NamedTuple (XYParams, ONNParams) by ``_asdict``."""
    if isinstance(params, Mapping):
        return params
    if hasattr(params, "_asdict"):
        return params._asdict()
    raise InvalidInputError(f"params must be a mapping of name -> array (or a NamedTuple such as XYParams), "
                            f"got {type(params).__name__}")


def validate_params(model: str, params, n_units: int | None = None) -> tuple[dict[str, np.ndarray], int]:
    """Check that ``params`` holds exactly the arrays of ``model``, finite, with the shapes of their roles.

    ``n_units``: the network size (default: from the first coupling or matrix). Returns the float64 arrays
    in the model's order and the number of runs (0 when there is no runs axis).
    """
    spec = get_model(model)
    params = as_mapping(params)
    want = spec.param_names
    if set(params) != set(want):
        missing, extra = sorted(set(want) - set(params)), sorted(set(params) - set(want))
        raise InvalidInputError(f"params for {model!r}: missing {missing}, unexpected {extra}")
    first = (spec.couplings + spec.matrices)[0]
    shape = as_real_array(first, params[first], ndim=(2, 3)).shape
    lead = shape[:-2]
    if lead and lead[0] < 1:
        raise InvalidInputError(f"the runs axis of {first} must not be empty, got shape {shape}")
    n = shape[-1] if n_units is None else n_units
    out = {}
    for name in spec.couplings + spec.matrices:
        m = as_real_array(name, params[name], shape=lead + (n, n))
        atol = 1e-12 if name in spec.couplings else 1e-14 * max(1.0, np.abs(m).max(initial=0))
        if not np.allclose(m, np.swapaxes(m, -1, -2), rtol=0, atol=atol):
            raise InvalidInputError(f"{name} must be symmetric")
        if name in spec.couplings and np.any(np.diagonal(m, axis1=-2, axis2=-1) != 0):
            raise InvalidInputError(f"{name} must have a zero diagonal")
        out[name] = m
    for name in spec.vectors:
        out[name] = as_real_array(name, params[name], shape=lead + (n,))
    for name in spec.coefficients + spec.tables:
        out[name] = as_real_array(name, params[name], shape=lead + (None,))
    for name in spec.scalars:
        out[name] = as_real_array(name, params[name], shape=lead)
    if spec.tables and len({out[t].shape[-1] for t in spec.tables}) != 1:
        raise InvalidInputError(f"tables {spec.tables} must have the same length")
    if spec.check is not None:
        spec.check(out, lead)
    return {name: out[name] for name in want}, (lead[0] if lead else 0)
