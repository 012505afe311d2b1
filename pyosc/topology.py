"""Network topologies: which units are inputs, hidden or outputs, and which pairs are coupled.

Conventions
-----------
Units are numbered ``0 .. n_units-1`` with the inputs first and the outputs last. A topology holds a
symmetric boolean ``coupling_mask`` (no self-coupling): pairs outside it are absent from the network.
Couplings between two input units and biases of input units exist physically but never change in
training (clamped units give them zero gradient), so :attr:`Topology.n_trainable` leaves them out; it
reproduces Table 1 of Wang, Wanjura & Marquardt (arXiv 2402.08579).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from numbers import Integral

import numpy as np

from pyosc.errors import InvalidInputError
from pyosc.validation import Interval, check

MAX_UNITS = 10_000
"""Largest network a topology may describe: its dense coupling mask (and every N x N parameter array) grows as N^2,
so larger sizes are refused with an error instead of exhausting memory (10,000 units: 800 MB per float64 matrix)."""


@dataclass(frozen=True)
class Topology:
    """Unit roles and coupling graph of an oscillator network.

    Parameters
    ----------
    coupling_mask : (N, N) bool array, symmetric with a false diagonal.
    n_inputs, n_outputs : number of input units (the first ones) and output units (the last ones).
    name : short description, e.g. ``"all-to-all:5"`` or ``"layered:64,200,10"``.
    layers : layer sizes for layered networks, else ``None``.
    """

    coupling_mask: np.ndarray = field(repr=False)
    n_inputs: int
    n_outputs: int
    name: str
    layers: tuple[int, ...] | None = None

    def __post_init__(self):
        mask = np.asarray(self.coupling_mask, dtype=bool)
        if mask.ndim != 2 or mask.shape[0] != mask.shape[1]:
            raise InvalidInputError(f"coupling_mask must be square, got shape {mask.shape}")
        if not np.array_equal(mask, mask.T):
            raise InvalidInputError("coupling_mask must be symmetric")
        if mask.diagonal().any():
            raise InvalidInputError("coupling_mask must have a false diagonal (no self-coupling)")
        n = mask.shape[0]
        _check_count("n_inputs", self.n_inputs, 0)
        _check_count("n_outputs", self.n_outputs, 1)
        if self.n_inputs < 0 or self.n_outputs < 1 or self.n_inputs + self.n_outputs > n:
            raise InvalidInputError(f"need 0 <= n_inputs and 1 <= n_outputs with n_inputs + n_outputs <= "
                                    f"n_units = {n}; got n_inputs={self.n_inputs}, n_outputs={self.n_outputs}")
        mask.setflags(write=False)
        object.__setattr__(self, "coupling_mask", mask)

    @property
    def n_units(self) -> int:
        return self.coupling_mask.shape[0]

    @property
    def input_units(self) -> np.ndarray:
        return np.arange(self.n_inputs)

    @property
    def output_units(self) -> np.ndarray:
        return np.arange(self.n_units - self.n_outputs, self.n_units)

    @property
    def hidden_units(self) -> np.ndarray:
        return np.arange(self.n_inputs, self.n_units - self.n_outputs)

    @property
    def clamped(self) -> np.ndarray:
        """(N,) bool: True for units held fixed (the inputs)."""
        c = np.zeros(self.n_units, dtype=bool)
        c[: self.n_inputs] = True
        return c

    @property
    def trainable_coupling_mask(self) -> np.ndarray:
        """(N, N) bool: coupled pairs with at least one free unit."""
        c = self.clamped
        return self.coupling_mask & ~(c[:, None] & c[None, :])

    @property
    def n_trainable(self) -> int:
        """Trainable parameters: one coupling per trainable pair plus (h, psi) per free unit."""
        pairs = int(np.triu(self.trainable_coupling_mask).sum())
        return pairs + 2 * (self.n_units - self.n_inputs)


def all_to_all(n_units: int, n_inputs: int, n_outputs: int) -> Topology:
    """Every pair of units coupled (inputs included)."""
    _check_count("n_units", n_units, 2)
    _check_size(n_units)
    mask = ~np.eye(n_units, dtype=bool)
    return Topology(mask, n_inputs, n_outputs, name=f"all-to-all:{n_units}")


def layered(sizes) -> Topology:
    """Feed-forward layers ``[n_in, n_hidden..., n_out]``: couplings only between consecutive layers."""
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__") or len(sizes) < 2:
        raise InvalidInputError(f"sizes must list at least 2 layer sizes, got {sizes!r}")
    for s in sizes:
        _check_count("layer size", s, 1)
    sizes = tuple(int(s) for s in sizes)
    n = _check_size(sum(sizes))
    mask = np.zeros((n, n), dtype=bool)
    starts = np.cumsum((0,) + sizes)
    for k in range(len(sizes) - 1):
        a = slice(starts[k], starts[k + 1])
        b = slice(starts[k + 1], starts[k + 2])
        mask[a, b] = True
        mask[b, a] = True
    return Topology(mask, sizes[0], sizes[-1], name="layered:" + ",".join(map(str, sizes)), layers=sizes)


def square_lattice(rows: int, cols: int, n_inputs: int, n_outputs: int, periodic: bool = False) -> Topology:
    """Nearest-neighbour square lattice, units numbered row by row (inputs first, outputs last)."""
    _check_count("rows", rows, 1)
    _check_count("cols", cols, 1)
    n = _check_size(rows * cols)
    mask = np.zeros((n, n), dtype=bool)
    idx = np.arange(n).reshape(rows, cols)
    right = np.roll(idx, -1, axis=1) if periodic else idx[:, 1:]
    down = np.roll(idx, -1, axis=0) if periodic else idx[1:, :]
    for a, b in ((idx if periodic else idx[:, :-1], right), (idx if periodic else idx[:-1, :], down)):
        mask[a.ravel(), b.ravel()] = True
    mask = (mask | mask.T) & ~np.eye(n, dtype=bool)
    return Topology(mask, n_inputs, n_outputs, name=f"lattice:{rows}x{cols}")


_SPEC = re.compile(r"^(all-to-all|layered|lattice):([-+0-9x,.]+)$")


def from_spec(spec: str, n_inputs: int | None = None, n_outputs: int | None = None) -> Topology:
    """Build a topology from a string: ``"all-to-all:85"``, ``"layered:64,200,10"``, ``"lattice:10x10"``.

    All-to-all and lattice specs take ``n_inputs`` / ``n_outputs`` from the arguments (the task knows them).
    """
    m = _SPEC.match(spec.strip().lower()) if isinstance(spec, str) else None
    if m is None:
        raise InvalidInputError(f"unknown topology {spec!r}; use 'all-to-all:N', 'layered:n0,n1,...,nL' "
                                "or 'lattice:RxC'")
    kind, body = m.groups()
    try:
        if kind == "layered":
            topo = layered([int(s) for s in body.split(",")])
        elif kind == "all-to-all":
            topo = all_to_all(int(body), _need(n_inputs, "n_inputs", spec), _need(n_outputs, "n_outputs", spec))
        else:
            r, c = (int(s) for s in body.split("x"))
            topo = square_lattice(r, c, _need(n_inputs, "n_inputs", spec), _need(n_outputs, "n_outputs", spec))
    except ValueError as e:
        if isinstance(e, InvalidInputError):
            raise
        raise InvalidInputError(f"cannot read topology {spec!r}: {e}") from None
    for name, want, got in (("inputs", n_inputs, topo.n_inputs), ("outputs", n_outputs, topo.n_outputs)):
        if want is not None and want != got:
            raise InvalidInputError(f"topology {spec!r} has {got} {name} but the task needs {want}")
    return topo


def _need(value: int | None, name: str, spec: str) -> int:
    if value is None:
        raise InvalidInputError(f"topology {spec!r} needs {name}")
    return int(value)


def _check_count(name: str, value: int, minimum: int) -> None:
    check(name, value, Interval(Integral, minimum, None))


def _check_size(n_units: int) -> int:
    if n_units > MAX_UNITS:
        raise InvalidInputError(f"the network would have {n_units} units; at most {MAX_UNITS} are allowed (dense "
                                "N x N arrays)")
    return n_units
