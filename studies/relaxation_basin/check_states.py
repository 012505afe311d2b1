"""diffrax Tsit5 (rtol=atol=1e-11, to force 1e-6, then certified polish) on chosen states; compare with ref and a method."""
from cases import *
import relax_basin as rb
from pyosc.engines.base import get_engine
eng = get_engine("jax")
n, t = sys.argv[1], bool(int(sys.argv[2])); states = eval(sys.argv[3])
c = case(n, t); ref = np.load(f"{CACHE}/ref_{n}_{int(t)}.npz")["ref"]
free = np.flatnonzero(~c["topo"].clamped)
sub = np.stack([c["phi0"][s] for s in states])[:, None, :]
t0 = time.perf_counter()
eq = eng.relax("xy", c["params"], sub, c["topo"], options=RelaxOptions(method="ode", tol=1e-6, rtol=1e-11, atol=1e-11))
phi, conv, force, it = rb.relax("xy", c["params"], eq.phi, c["topo"], rb.BasinOptions(err_tol=1e-8, cap=0.02, max_iter=2000))
for k, s in enumerate(states):
    print(s, "diffrax vs ref:", f"{wrapdiff(phi[k, 0], ref[s], free):.2e}", f"({time.perf_counter()-t0:.0f}s)")
for v in sys.argv[4:]:
    o = eval("rb.BasinOptions(" + v + ")")
    ph, cv, fo, itv = rb.relax("xy", c["params"], sub, c["topo"], o)
    print(v, "vs ref:", np.round(wrapdiff(ph[:, 0], ref[tuple(np.array(states).T)], free), 3).tolist(), "iters", itv[:, 0].tolist())
