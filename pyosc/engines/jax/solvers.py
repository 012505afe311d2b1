"""diffrax's solver classes by pyosc's integrator names (:data:`pyosc.engines.base.INTEGRATORS`)."""
import diffrax

SOLVERS = {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5, "dopri8": diffrax.Dopri8,
           "kvaerno3": diffrax.Kvaerno3, "kvaerno4": diffrax.Kvaerno4, "kvaerno5": diffrax.Kvaerno5}
IMPLICIT = ("kvaerno3", "kvaerno4", "kvaerno5")
