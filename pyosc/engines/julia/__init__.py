"""Slot of the Julia engine (DifferentialEquations.jl through juliacall), which lands with issue 17.

Until then :func:`pyosc.engines.list_engines` reports ``"julia"`` unavailable and :func:`pyosc.engines.get_engine`
raises :class:`~pyosc.errors.EngineUnavailableError` with the install hint. Nothing here imports juliacall.
"""
