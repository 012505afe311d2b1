"""Batches as the compiled programs take them: samples x initial states as one axis of states."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def flat_states(states: np.ndarray, state_ndim: int, *per_sample: np.ndarray) -> tuple[jnp.ndarray, ...]:
    """``([runs,] samples, inits, *state)`` states (``state_ndim`` trailing axes per state) as ``([runs,] samples x
    inits, 1, *state)``, and per-sample rows (inputs, targets) repeated per initial state: a compiled program then
    depends on the number of states, not on how it splits into samples and initial states."""
    lead = states.ndim - state_ndim - 2
    flat = states.reshape(states.shape[:lead] + (-1, 1) + states.shape[lead + 2:])
    return (jnp.asarray(flat), *(jnp.asarray(np.repeat(a, states.shape[lead + 1], 0)) for a in per_sample))
