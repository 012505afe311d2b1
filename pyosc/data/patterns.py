"""Binary patterns for associative memories: letters, corruption, phase encoding, read-out, accuracy.

Encoding (Part B.3 of shared/research/optomech_onn.md). A binary pattern xi in {-1, +1}^N is stored
as oscillator phases phi_k = 0 (xi_k = +1) or pi (xi_k = -1) relative to a reference. RECONSTRUCTED
choice: the reference is an explicit oscillator, unit 0 of the network, clamped at phase 0 (the
read-out compares every oscillator with it), and pixels are units 1..N. It removes the global
phase symmetry (no zero mode at equilibrium) and the global flip xi -> -xi, so retrieval is judged
without "up to a flip". All pixel units are visible: they are the outputs that EP nudges.

Retrieval: start from a corrupted pattern (a fraction ``corruption`` of its pixels flipped, chosen
at random, exactly round(corruption N) per trial) plus Gaussian phase noise of std ``noise`` rad
(every binary state is an equilibrium of an odd coupling, so without noise a corrupted pattern
would never move), relax to a stable equilibrium, read xi_k = sign cos(phi_k - phi_0). A trial
succeeds when every pixel matches the clean pattern.

Arrays: patterns (P, N) of +-1; corrupted trials (P, trials, N); network phases (P, trials, N + 1).
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from pyosc.errors import InvalidInputError, as_real_array, check_positive
from pyosc.topology import Topology, all_to_all
from pyosc.validation import COUNT, Interval, check

CORRUPTION = Interval(Real, 0, 0.5)
"""Allowed fractions of flipped pixels."""

_FONT = {  # 5 x 5 capital letters, '#' = +1
    "A": (".###.", "#...#", "#####", "#...#", "#...#"), "B": ("####.", "#...#", "####.", "#...#", "####."),
    "C": (".####", "#....", "#....", "#....", ".####"), "D": ("####.", "#...#", "#...#", "#...#", "####."),
    "E": ("#####", "#....", "####.", "#....", "#####"), "F": ("#####", "#....", "####.", "#....", "#...."),
    "G": (".####", "#....", "#..##", "#...#", ".###."), "H": ("#...#", "#...#", "#####", "#...#", "#...#"),
    "I": ("#####", "..#..", "..#..", "..#..", "#####"), "J": ("#####", "...#.", "...#.", "#..#.", ".##.."),
    "K": ("#...#", "#..#.", "###..", "#..#.", "#...#"), "L": ("#....", "#....", "#....", "#....", "#####"),
    "M": ("#...#", "##.##", "#.#.#", "#...#", "#...#"), "N": ("#...#", "##..#", "#.#.#", "#..##", "#...#"),
    "O": (".###.", "#...#", "#...#", "#...#", ".###."), "P": ("####.", "#...#", "####.", "#....", "#...."),
    "Q": (".###.", "#...#", "#.#.#", "#..#.", ".##.#"), "R": ("####.", "#...#", "####.", "#..#.", "#...#"),
    "S": (".####", "#....", ".###.", "....#", "####."), "T": ("#####", "..#..", "..#..", "..#..", "..#.."),
    "U": ("#...#", "#...#", "#...#", "#...#", ".###."), "V": ("#...#", "#...#", "#...#", ".#.#.", "..#.."),
    "W": ("#...#", "#...#", "#.#.#", "##.##", "#...#"), "X": ("#...#", ".#.#.", "..#..", ".#.#.", "#...#"),
    "Y": ("#...#", ".#.#.", "..#..", "..#..", "..#.."), "Z": ("#####", "...#.", "..#..", ".#...", "#####"),
}
LETTERS = "".join(sorted(_FONT))


def letters(names: str = LETTERS) -> np.ndarray:
    """5 x 5 letter patterns, shape (len(names), 25), +1 on the strokes and -1 elsewhere."""
    bad = sorted(set(names) - set(_FONT))
    if not names or bad:
        raise InvalidInputError(f"names must be a non-empty string of capital letters A-Z, got {names!r}")
    return np.array([[1.0 if ch == "#" else -1.0 for row in _FONT[c] for ch in row] for c in names])


def random_patterns(n_patterns: int, n_pixels: int, rng: np.random.Generator) -> np.ndarray:
    """Independent unbiased +-1 patterns, shape (n_patterns, n_pixels)."""
    check("n_patterns", n_patterns, COUNT)
    check("n_pixels", n_pixels, Interval(Integral, 2, None))
    return rng.choice([-1.0, 1.0], size=(n_patterns, n_pixels))


def check_patterns(patterns) -> np.ndarray:
    xi = as_real_array("patterns", patterns, ndim=2)
    if xi.shape[0] < 1 or xi.shape[1] < 2 or not np.all(np.abs(xi) == 1):
        raise InvalidInputError(f"patterns must be a (P, N) array of +1/-1 with P >= 1, N >= 2, got shape {xi.shape}")
    return xi


def corrupt(patterns, corruption: float, n_trials: int, rng: np.random.Generator) -> np.ndarray:
    """(P, n_trials, N) copies of each pattern with exactly round(corruption N) random pixels flipped."""
    xi = check_patterns(patterns)
    check("corruption", corruption, CORRUPTION)
    check("n_trials", n_trials, COUNT)
    p, n = xi.shape
    k = round(corruption * n)
    flips = np.argsort(rng.random((p, n_trials, n)), axis=-1)[..., :k]
    out = np.repeat(xi[:, None, :], n_trials, axis=1)
    np.put_along_axis(out, flips, -np.take_along_axis(out, flips, axis=-1), axis=-1)
    return out


def network(n_pixels: int) -> Topology:
    """All-to-all network: unit 0 the clamped reference, units 1..n_pixels the (visible) pixels."""
    return all_to_all(n_pixels + 1, 1, n_pixels)


def to_phases(states) -> np.ndarray:
    """+-1 pixels (..., N) -> network phases (..., N + 1): reference 0, then 0 (+1) or pi (-1)."""
    s = as_real_array("states", states)
    if s.ndim < 1 or not np.all(np.abs(s) == 1):
        raise InvalidInputError(f"states must be an array (..., N) of +1/-1 pixels, got shape {s.shape}")
    return np.concatenate([np.zeros(s.shape[:-1] + (1,)), np.where(s > 0, 0.0, np.pi)], axis=-1)


def read_out(phi) -> np.ndarray:
    """Network phases (..., N + 1) -> pixels sign cos(phi_k - phi_0), shape (..., N)."""
    phi = np.asarray(phi)
    return np.where(np.cos(phi[..., 1:] - phi[..., :1]) >= 0, 1.0, -1.0)


def initial_phases(corrupted, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Phases of corrupted states (..., N) plus N(0, noise^2) on the pixels: (..., N + 1)."""
    noise = check_positive("noise", noise, allow_zero=True)
    phi = to_phases(corrupted)
    phi[..., 1:] += noise * rng.standard_normal(phi[..., 1:].shape)
    return phi


def accuracy(retrieved, patterns) -> float:
    """Fraction of trials (P, trials, N) retrieving their clean pattern exactly."""
    xi = check_patterns(patterns)
    return float(np.mean(np.all(np.asarray(retrieved) == xi[:, None, :], axis=-1)))


def overlap(retrieved, patterns) -> float:
    """Mean overlap (1/N) sum_k xi_k s_k between retrieved states and their clean patterns, in [-1, 1]."""
    xi = check_patterns(patterns)
    return float(np.mean(np.asarray(retrieved) * xi[:, None, :]))
