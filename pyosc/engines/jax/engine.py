"""The JAX engine: :class:`JaxEngine`, the default engine (JAX + diffrax, float64, compiled, CPU or GPU)."""
from __future__ import annotations

from pyosc.engines.base import Engine
from pyosc.engines.jax import dynamics, relax
from pyosc.engines.jax.solvers import SOLVERS
from pyosc.models import optomech


class JaxEngine(Engine):
    """Every registered model: energy models relaxed by :mod:`~pyosc.engines.jax.relax` (compiled per network
    structure and options), dynamical models integrated by :mod:`~pyosc.engines.jax.dynamics`."""

    name = "jax"
    models = frozenset(relax.MODELS) | frozenset(optomech.DYNAMICS)
    integrators = tuple(SOLVERS)

    def _relax(self, model, params, phi0, topology, targets, beta, options):
        return relax.relax(model, params, phi0, topology, targets, beta, options)

    def _trajectory(self, model, params, phi0, topology, times, targets, beta, options):
        return relax.trajectory(model, params, phi0, topology, times, targets, beta, options)

    def _ep_step(self, model, params, phi0, topology, targets, beta, options):
        return relax.ep_step(model, params, phi0, topology, targets, beta, options)

    def _ep_step_program(self, model, topology, options, stacked):
        return relax.ep_step_program(model, topology, options, stacked)

    def _integrate(self, model, params, y0, times, inputs, options):
        return dynamics.integrate(model, params, y0, times, inputs, options)

    def _final_state_loss_and_grad(self, model, params, y0, t1, loss, inputs, options):
        return dynamics.final_state_loss_and_grad(model, params, y0, t1, loss, inputs, options)

    def _steady_state_loss_and_grad(self, model, params, y0, loss, inputs, options):
        return dynamics.steady_state_loss_and_grad(model, params, y0, loss, inputs, options)
