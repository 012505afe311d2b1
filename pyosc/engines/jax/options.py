"""Option records inside compiled programs: the fields that shape a program (a method name, a step budget) are part of
its cache key; the numbers (tolerances, iteration caps, horizons) are traced arguments, so that one compiled program
serves every value of them."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace


def split(options, static: tuple[str, ...]) -> tuple[tuple, dict]:
    """``(key, numbers)``: the ``static`` fields of the dataclass ``options`` as hashable (name, value) pairs, and
    every other field by name (pass them to the compiled program; ``None`` is structure, not a number)."""
    numbers = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
    return tuple((name, numbers.pop(name)) for name in static), numbers


def view(key: tuple, numbers: dict) -> SimpleNamespace:
    """The options inside the program: attribute access to the fields of both parts."""
    return SimpleNamespace(**dict(key), **numbers)
