"""Reference end points: tight diffrax integration of the flow at two tolerances. Usage: python ref.py NAME TRAINED"""
from cases import *
from pyosc.engines.base import get_engine
eng = get_engine("jax")
n, t = sys.argv[1], bool(int(sys.argv[2]))
c = case(n, t)
free = np.flatnonzero(~c["topo"].clamped)
out = {}
for tag, opt in (("ref", REF), ("ref2", REF2)):
    t0 = time.perf_counter()
    eq = eng.relax("xy", c["params"], c["phi0"], c["topo"], options=opt)
    out[tag] = eq.phi
    out[tag + "_conv"] = eq.converged
    out[tag + "_t"] = eq.work
    print(f"{n} trained={t} {tag}: {time.perf_counter()-t0:.1f}s, converged {eq.converged.mean():.4f}, "
          f"t_end max {eq.work.max():.0f} median {np.median(eq.work):.0f}", flush=True)
d = wrapdiff(out["ref"], out["ref2"], free)
print(f"  ref vs ref2: max diff {d.max():.2e}, > 1e-6: {(d > 1e-6).sum()} / {d.size}, >1e-8: {(d>1e-8).sum()}")
np.savez(f"{CACHE}/ref_{n}_{int(t)}.npz", **out)
