"""Basin agreement of a relaxation against the reference flow.
Usage: python compare.py METHOD [key=value ...]   METHOD = base | basin ; cases: cases=xor:0,a2a85:1,..."""
from cases import *
import relax_basin as rb
from pyosc.engines.base import get_engine
args = dict(a.split("=") for a in sys.argv[2:])
method = sys.argv[1]
sel = args.pop("cases", None)
verbose = int(args.pop("verbose", "1"))
todo = [(n, bool(int(t))) for n, t in (c.split(":") for c in sel.split(","))] if sel else CASES
opts = rb.BasinOptions(**{k: type(getattr(rb.BasinOptions(), k))(v if k != "certify" else int(v)) for k, v in args.items()})
eng = get_engine("jax")
tot = [0, 0]
for n, t in todo:
    rf = f"{CACHE}/ref_{n}_{int(t)}.npz"
    if not os.path.exists(rf):
        print(f"{n}:{int(t)} no reference yet"); continue
    c = case(n, t)
    ref = np.load(rf)
    free = np.flatnonzero(~c["topo"].clamped)
    if method == "base":
        f = lambda: eng.relax("xy", c["params"], c["phi0"], c["topo"])
        f(); t0 = time.perf_counter(); eq = f(); dt = time.perf_counter() - t0
        phi, conv, force, it = eq
    else:
        f = lambda: rb.relax("xy", c["params"], c["phi0"], c["topo"], opts)
        f(); t0 = time.perf_counter(); phi, conv, force, it = f(); dt = time.perf_counter() - t0
    d = wrapdiff(phi, ref["ref"], free)
    bad = d > 1e-6
    tot[0] += bad.sum(); tot[1] += bad.size
    print(f"{method} {n} trained={int(t)}: disagree {bad.sum()}/{bad.size}, converged {conv.mean():.4f}, "
          f"iters mean {it.mean():.1f} max {it.max():.0f}, {dt:.2f}s; diff of agreeing max {d[~bad].max() if (~bad).any() else 0:.1e}",
          flush=True)
    if verbose and bad.any():
        P = c["params"]
        for ix in zip(*np.nonzero(bad)):
            pp = xy.XYParams(*(a[ix[0]] for a in P)) if P.W.ndim == 3 else P
            e1, e2 = float(xy.energy(phi[ix], pp)), float(xy.energy(ref["ref"][ix], pp))
            print(f"   state {ix}: maxdiff {d[ix]:.3f} rad, E {e1:.6f} vs flow {e2:.6f} (dE {e1-e2:+.4f})"
                  + (f"\n     phi  {np.round(np.angle(np.exp(1j*phi[ix][free])), 4).tolist()}\n     flow {np.round(np.angle(np.exp(1j*ref['ref'][ix][free])), 4).tolist()}" if verbose > 1 else ""))
print(f"TOTAL {method} {opts if method != 'base' else ''}: {tot[0]}/{tot[1]}")
