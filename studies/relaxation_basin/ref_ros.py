"""Reference via the tight Rosenbrock (ode23s) flow integrator, two tolerances; plus diffrax Tsit5 (rtol=atol=1e-11,
then certified polish) on a random subset of states. Usage: python ref_ros.py NAME TRAINED NSUB"""
from cases import *
import relax_basin as rb
from pyosc.engines.base import get_engine
eng = get_engine("jax")
n, t, nsub = sys.argv[1], bool(int(sys.argv[2])), int(sys.argv[3])
c = case(n, t)
free = np.flatnonzero(~c["topo"].clamped)
out = {}
for tag, o in (("ref", rb.BasinOptions(err_tol=1e-6, cap=0.05, max_iter=5000)),
               ("ref2", rb.BasinOptions(err_tol=1e-7, cap=0.02, max_iter=20000))):
    t0 = time.perf_counter()
    phi, conv, force, it = rb.relax("xy", c["params"], c["phi0"], c["topo"], o)
    out[tag], out[tag + "_conv"], out[tag + "_t"] = phi, conv, it
    print(f"{n} trained={t} {tag} {o.err_tol} cap {o.cap}: {time.perf_counter()-t0:.1f}s, iters mean {it.mean():.0f} max {it.max():.0f}, converged {conv.mean():.4f}", flush=True)
d = wrapdiff(out["ref"], out["ref2"], free)
print(f"  ref vs ref2: max diff {d.max():.2e}, > 1e-6: {(d > 1e-6).sum()} / {d.size}")
np.savez(f"{CACHE}/ref_{n}_{int(t)}.npz", **out)
if nsub:
    flat0 = c["phi0"].reshape(-1, c["topo"].n_units)
    pick = np.random.default_rng(0).choice(flat0.shape[0], nsub, replace=False)
    t0 = time.perf_counter()
    eq = eng.relax("xy", c["params"], flat0[pick][:, None, :], c["topo"], options=RelaxOptions(method="ode", tol=1e-6, rtol=1e-11, atol=1e-11))
    phi, conv, force, it = rb.relax("xy", c["params"], eq.phi, c["topo"], rb.BasinOptions(err_tol=1e-8, cap=0.02, max_iter=2000))
    d = wrapdiff(phi[:, 0], out["ref"].reshape(-1, c["topo"].n_units)[pick], free)
    print(f"  diffrax Tsit5 1e-11 on {nsub} random states ({time.perf_counter()-t0:.0f}s): vs ref max diff {d.max():.2e}, > 1e-6: {(d > 1e-6).sum()}")
    np.savez(f"{CACHE}/refsub_{n}_{int(t)}.npz", pick=pick, phi=phi[:, 0])
