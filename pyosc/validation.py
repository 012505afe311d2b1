"""Declarative argument checks: constraint tables, in the spirit of scikit-learn's ``utils/_param_validation``.

A table maps argument names to the constraints a value may satisfy (any one of them; ``None`` in the list allows
``None``)::

    CONSTRAINTS = {"hidden": [Interval(Integral, 0, None)], "optimizer": [Options("sgd", "adam")],
                   "random_state": [None, SEED]}
    validate(CONSTRAINTS, {"hidden": -1, ...})  # InvalidInputError: hidden must be an integer >= 0, got -1

Every failure raises :class:`~pyosc.errors.InvalidInputError` with one message form: ``"<name> must be <what is
allowed>, got <value>"``. Nothing is coerced: ``True`` is not an integer, ``2.5`` is not a count, ``1.0`` is not the
option ``1``, and a real number must be finite.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

from pyosc.errors import InvalidInputError

__all__ = ["COUNT", "NON_NEGATIVE", "NON_NEGATIVE_INT", "POSITIVE", "SEED", "Constraint", "InstanceOf", "Interval",
           "Options", "Pattern", "RealRange", "TupleOf", "check", "describe", "is_integer", "is_real", "validate"]

_CLOSED = ("both", "left", "right", "neither")


def is_integer(value) -> bool:
    """An int or NumPy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value) -> bool:
    """A finite int or float (NumPy scalars included), not a bool and not complex."""
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
            and bool(np.isfinite(value)))


class Constraint(ABC):
    """A set of allowed values, with a description that completes "<name> must be ..."."""

    @abstractmethod
    def is_satisfied_by(self, value: Any) -> bool:
        """Whether ``value`` is allowed."""

    @abstractmethod
    def __str__(self) -> str:
        """What is allowed, e.g. ``"an integer >= 0"``."""


class Interval(Constraint):
    """Integers (``kind=Integral``) or finite real numbers (``kind=Real``) between ``left`` and ``right`` (``None``:
    unbounded); ``closed`` is ``"both"``, ``"left"``, ``"right"`` or ``"neither"``; ``text`` replaces the generated
    description (e.g. to write a bound as ``2**63 - 1``)."""

    def __init__(self, kind: type, left: float | None, right: float | None, *, closed: str = "both",
                 text: str | None = None):
        if kind not in (Integral, Real) or closed not in _CLOSED:
            raise TypeError(f"Interval needs kind Integral or Real and closed in {_CLOSED}")
        self.kind, self.left, self.right, self.closed, self.text = kind, left, right, closed, text

    def is_satisfied_by(self, value) -> bool:
        if not (is_integer(value) if self.kind is Integral else is_real(value)):
            return False
        low_open, high_open = self.closed in ("right", "neither"), self.closed in ("left", "neither")
        if self.left is not None and (value < self.left or (low_open and value == self.left)):
            return False
        return self.right is None or not (value > self.right or (high_open and value == self.right))

    def __str__(self) -> str:
        if self.text is not None:
            return self.text
        what = "an integer" if self.kind is Integral else "a finite number"
        low = None if self.left is None else (">" if self.closed in ("right", "neither") else ">=")
        high = None if self.right is None else ("<" if self.closed in ("left", "neither") else "<=")
        if low and high:
            brackets = ("[" if low == ">=" else "(") + f"{self.left}, {self.right}" + ("]" if high == "<=" else ")")
            return f"{what} in {brackets}"
        if low:
            return f"{what} {low} {self.left}"
        return f"{what} {high} {self.right}" if high else what


def _same_kind(a, b) -> bool:
    if isinstance(b, (bool, np.bool_)):
        return isinstance(a, (bool, np.bool_))
    if is_integer(b):
        return is_integer(a)
    if isinstance(b, str):
        return isinstance(a, str)
    return type(a) is type(b)


class Options(Constraint):
    """One of the given values, of the same kind (``1.0`` is not the option ``1``, nor ``True``)."""

    def __init__(self, *values):
        self.values = tuple(values)

    def is_satisfied_by(self, value) -> bool:
        return any(_same_kind(value, v) and value == v for v in self.values)

    def __str__(self) -> str:
        return repr(self.values[0]) if len(self.values) == 1 else "one of " + ", ".join(map(repr, self.values))


class InstanceOf(Constraint):
    """An instance of ``kind`` (``bool`` is not an ``int`` here); ``description`` completes "must be"."""

    def __init__(self, kind: type | tuple[type, ...], description: str):
        self.kind, self.description = kind, description

    def is_satisfied_by(self, value) -> bool:
        bool_ok = self.kind is bool or (isinstance(self.kind, tuple) and bool in self.kind)
        return isinstance(value, self.kind) and (bool_ok or not isinstance(value, bool))

    def __str__(self) -> str:
        return self.description


class Pattern(Constraint):
    """A string matching the regular expression ``regex`` in full; ``description`` says what it means."""

    def __init__(self, regex: str, description: str):
        self.regex, self.description = re.compile(regex), description

    def is_satisfied_by(self, value) -> bool:
        return isinstance(value, str) and self.regex.fullmatch(value) is not None

    def __str__(self) -> str:
        return self.description


class RealRange(Constraint):
    """A pair ``(min, max)`` of finite numbers with ``min < max``."""

    def is_satisfied_by(self, value) -> bool:
        return (isinstance(value, (tuple, list, np.ndarray)) and len(value) == 2 and all(is_real(v) for v in value)
                and value[0] < value[1])

    def __str__(self) -> str:
        return "a pair (min, max) of finite numbers with min < max"


class TupleOf(Constraint):
    """A tuple or list whose every item satisfies ``item``."""

    def __init__(self, item: Constraint):
        self.item = item

    def is_satisfied_by(self, value) -> bool:
        return isinstance(value, (tuple, list)) and all(self.item.is_satisfied_by(v) for v in value)

    def __str__(self) -> str:
        return f"a list of {_plural(str(self.item))}"


def _plural(description: str) -> str:
    for article in ("an ", "a "):
        if description.startswith(article):
            noun, _, rest = description[len(article):].partition(" ")
            return f"{noun}s {rest}".strip()
    return description


class _IsNone(Constraint):
    def is_satisfied_by(self, value) -> bool:
        return value is None

    def __str__(self) -> str:
        return "None"


def _constraints(allowed) -> list[Constraint]:
    items = allowed if isinstance(allowed, (list, tuple)) else [allowed]
    return [_IsNone() if c is None else c for c in items]


def describe(allowed) -> str:
    """The description of a constraint or list of constraints: ``"None or an integer >= 0"``."""
    texts = [str(c) for c in _constraints(allowed)]
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]


def check(name: str, value, allowed):
    """``value`` if it satisfies ``allowed`` (a constraint, ``None`` or a list of them), else
    :class:`InvalidInputError` ``"<name> must be <allowed>, got <value>"``."""
    if not any(c.is_satisfied_by(value) for c in _constraints(allowed)):
        raise InvalidInputError(f"{name} must be {describe(allowed)}, got {value!r}")
    return value


def validate(table: Mapping[str, Sequence | Constraint], values: Mapping[str, Any], where: str = "") -> None:
    """Check every entry of ``table`` against ``values`` (argument name -> value); errors name ``where + name``."""
    for name, allowed in table.items():
        check(f"{where}{name}", values[name], allowed)


COUNT = Interval(Integral, 1, None)
"""An integer >= 1 (iterations, samples, runs)."""
NON_NEGATIVE_INT = Interval(Integral, 0, None)
"""An integer >= 0 (sizes that may be empty, evaluation periods with 0 = never)."""
POSITIVE = Interval(Real, 0, None, closed="neither")
"""A finite number > 0."""
NON_NEGATIVE = Interval(Real, 0, None)
"""A finite number >= 0."""
SEED = Interval(Integral, 0, 2**63 - 1, text="an integer in [0, 2**63 - 1]")
"""A random seed: an integer in [0, 2**63 - 1] (it must fit the int64 attributes of a NetCDF file)."""
