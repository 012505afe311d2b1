"""The embedded JAX engine: :mod:`engine` (:class:`~pyosc.engines.jax.engine.JaxEngine`), :mod:`relax` (equilibria
and EP steps), :mod:`dynamics` (integration and gradients) and :mod:`solvers` (integrator names -> diffrax)."""
