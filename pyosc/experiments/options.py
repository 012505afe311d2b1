"""Task configurations: frozen dataclasses whose fields carry their default, help text and allowed values.

Every default is written once, in an experiment's ``Config`` (fields made by :func:`option`); study files,
the CLI (``--learning-rate``, ``--n-iterations``, ...) and the Python API all derive their keys, types, defaults
and help from it. :func:`from_mapping` builds a config from plain values (a study file, parsed CLI flags) with every
key and type checked.

Each field also declares the values it allows (``allowed``: constraints of :mod:`pyosc.validation`; by default its
``choices``, else any value of its type). A config's ``__post_init__`` calls :func:`check_fields`, so every way of
making a config (Python, CLI, a study file when it is loaded) is checked the same way, before any work starts.
"""
from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

import numpy as np

from pyosc.errors import InvalidInputError
from pyosc.validation import Constraint, InstanceOf, Interval, Options, TupleOf, check


def option(default: Any, help: str, *, choices: tuple | None = None, allowed: Constraint | list | None = None) -> Any:
    """A config field with its ``default``, ``help`` text (shown by ``--help``), optional ``choices`` and the values
    it allows (``allowed``, checked by :func:`check_fields`)."""
    kwargs = {"default_factory": lambda: default} if isinstance(default, (list, dict)) else {"default": default}
    return dataclasses.field(metadata={"help": help, "choices": choices, "allowed": allowed}, **kwargs)


_BY_TYPE = {int: Interval(Integral, None, None), float: Interval(Real, None, None),
            str: InstanceOf(str, "a string"), bool: InstanceOf(bool, "True or False"),
            tuple: TupleOf(Interval(Integral, None, None))}


def check_fields(config) -> None:
    """Check every field of the dataclass instance ``config`` against what it allows (see :func:`option`); errors
    name the field. Integers given for float fields become floats and lists for tuple fields tuples (so that equal
    settings record alike); nothing else is converted."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        kind = hints[f.name]
        kind = tuple if typing.get_origin(kind) is tuple else kind
        value = getattr(config, f.name)
        if kind is float and isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            value = float(value)
        elif kind is tuple and isinstance(value, list):
            value = tuple(value)
        allowed = f.metadata.get("allowed")
        choices = f.metadata.get("choices")
        if allowed is None:
            allowed = Options(*choices) if choices is not None else _BY_TYPE.get(kind, InstanceOf(kind, str(kind)))
        check(f.name, value, allowed)
        object.__setattr__(config, f.name, value)


def fields(config_cls) -> dict[str, tuple[type, Any, str, tuple | None]]:
    """Key -> (type, default, help, choices) of a config class, in declaration order. Types are ``int``,
    ``float``, ``str``, ``bool``, or ``tuple`` (of ints)."""
    hints = typing.get_type_hints(config_cls)
    out = {}
    for f in dataclasses.fields(config_cls):
        kind = hints[f.name]
        kind = tuple if typing.get_origin(kind) is tuple else kind
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out[f.name] = (kind, default, f.metadata.get("help", ""), f.metadata.get("choices"))
    return out


def check_value(config_cls, key: str, value: Any, where: str) -> Any:
    """``value`` converted to the type of ``key`` (ints are accepted for floats, lists for tuples); errors name
    ``where`` (e.g. 'sweep.n_units')."""
    table = fields(config_cls)
    if key not in table:
        raise InvalidInputError(f"unknown key {where!r}; allowed: {sorted(table)}")
    kind, _, _, choices = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    elif kind is tuple and isinstance(value, list):
        value = tuple(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InvalidInputError(f"{where} must be of type {kind.__name__}, got {type(value).__name__} {value!r}")
    if choices is not None and value not in choices:
        raise InvalidInputError(f"{where} must be one of {list(choices)}, got {value!r}")
    return value


def from_mapping(config_cls, values: Mapping[str, Any], where: str = ""):
    """A config from ``values`` (missing keys take their defaults); keys, types and the config's own checks
    are applied, and errors name the key (prefixed by ``where``)."""
    checked = {k: check_value(config_cls, k, v, f"{where}{k}") for k, v in values.items()}
    try:
        return config_cls(**checked)
    except InvalidInputError as e:  # a value out of range: the config's own message starts with the key
        if where and any(str(e).startswith(f"{k} ") for k in checked):
            raise InvalidInputError(f"{where}{e}") from None
        raise
