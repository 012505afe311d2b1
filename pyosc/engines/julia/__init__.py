"""The Julia engine (issue 17): the package PyoscEngine (``julia/PyoscEngine``: OrdinaryDiffEq.jl, SciMLSensitivity.jl)
behind the engine boundary of :mod:`pyosc.engines.base`, reached through juliacall.

* :mod:`~pyosc.engines.julia.engine`: :class:`~pyosc.engines.julia.engine.JuliaEngine` (the hooks, the option mapping);
* :mod:`~pyosc.engines.julia.bridge`: starting Julia, the table of Julia calls, errors, the availability probe; the
  only module that imports juliacall, and only when the engine is asked for;
* :mod:`~pyosc.engines.julia.arrays`: the NumPy <-> Julia array layouts (NumPy alone).

``get_engine("julia")`` (or ``$PYOSC_ENGINE=julia``, ``--engine julia``) needs ``pip install 'pyosc[julia]'`` and
``pyosc install-julia``; :func:`pyosc.engines.list_engines` says why it is unavailable otherwise.
"""
