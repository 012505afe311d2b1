"""pyosc: simulate and train physical neural networks of oscillators and waves.

Importing pyosc loads nothing heavy: models, engines and training load when they are imported. float64 is
switched on for JAX by :mod:`pyosc.models` (equilibrium-propagation gradients are differences of nearby
equilibria and need double precision).
"""
from __future__ import annotations

from pyosc.errors import (
    ConvergenceError,
    EngineUnavailableError,
    InvalidInputError,
    PyoscError,
)

__version__ = "0.1.0"
__all__ = ["ConvergenceError", "EngineUnavailableError", "InvalidInputError", "PyoscError", "__version__"]
