"""pyosc: simulate and train physical neural networks of oscillators and waves.

float64 is switched on for JAX at import, since equilibrium-propagation gradients are differences
of nearby equilibria and need double precision.
"""
from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

from pyosc.errors import (
    ConvergenceError,
    EngineUnavailableError,
    InvalidInputError,
    PyoscError,
)

__version__ = "0.1.0"
__all__ = ["ConvergenceError", "EngineUnavailableError", "InvalidInputError", "PyoscError", "__version__"]
