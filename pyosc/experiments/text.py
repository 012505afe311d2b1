"""How the experiments' summaries write numbers: one format for percentages, counts with their grammar."""
from __future__ import annotations

import math


def percent(fraction: float) -> str:
    """A fraction (an accuracy, a share of runs) in percent with one decimal: ``0.972 -> "97.2 %"``; ``"n/a"`` for
    NaN (nothing was measured)."""
    return "n/a" if math.isnan(fraction) else f"{100 * fraction:.1f} %"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun in the right number: ``count(1, "iteration") -> "1 iteration"``, ``"2 iterations"``."""
    n = int(n)
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
