"""Pure physics, one module per platform: equations, parameters, energies and their derivatives.

Every model module that computes with JAX imports :mod:`pyosc.models.float64`, which switches JAX to double
precision; :mod:`pyosc.models.registry` (the models' names and parameter layouts) imports no JAX.
"""
