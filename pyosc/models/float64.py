"""JAX in double precision: every model module that computes with JAX imports this module first.

Equilibrium-propagation gradients are differences of nearby equilibria and need float64. The switch sits here
rather than in :mod:`pyosc.models` itself, so that the JAX-free parts (:mod:`pyosc.models.registry`) import
without JAX.
"""
import jax

jax.config.update("jax_enable_x64", True)
