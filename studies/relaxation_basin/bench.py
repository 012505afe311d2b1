"""EP-iteration timing, baseline engine vs basin prototype, interleaved. Usage: python bench.py REPEATS [opts...]"""
from cases import *
import relax_basin as rb
from pyosc.engines.base import get_engine, Nudge
reps = int(sys.argv[1])
opts = eval("rb.BasinOptions(" + ",".join(sys.argv[2:]) + ")")
eng = get_engine("jax")
def setup(name):
    if name == "xor":
        topo = topology.all_to_all(5, 2, 1); data = datasets.xor()
        params = xy.init_params(topo, np.random.default_rng(0), scheme="xor", n_runs=100)
        return topo, params, data, None, 100
    topo = topology.from_spec("all-to-all:85" if name == "a2a85" else "layered:64,200,10", n_inputs=64, n_outputs=10)
    params = xy.init_params(topo, np.random.default_rng(0), scheme="all-to-all" if name == "a2a85" else "layered")
    train, _ = datasets.digits_paper_split()
    return topo, params, train, 30, None
print(os.popen("uptime").read().strip())
for name in sys.argv[0:0] or ["xor", "a2a85"] + (["layered"] if os.environ.get("LAYERED") else []):
    topo, params, data, per, runs = setup(name)
    rng = np.random.default_rng(5)
    batches = []
    for k in range(reps + 1):
        idx = np.arange(data.x.shape[0]) if per is None else datasets.class_balanced_batch(data.labels, per, rng)
        batches.append((random_phases(rng, data.x[idx], 1, topo.n_units, runs), data.y[idx]))
    T = {"base": [], "basin": []}; its = {"base": [], "basin": []}
    for k, (phi0, y) in enumerate(batches):
        for m in ("base", "basin"):
            t = time.perf_counter()
            if m == "base":
                st = eng.ep_step("xy", params, phi0, topo, Nudge(0.1, y))
                it = (st.free.work.mean(), st.nudged.work.mean()); ok = st.free.converged.all() and st.nudged.converged.all()
            else:
                g, fr, nu = rb.ep_step("xy", params, phi0, topo, y, 0.1, opts)
                it = (fr[3].mean(), nu[3].mean()); ok = fr[1].all() and nu[1].all()
            dt = time.perf_counter() - t
            if k:
                T[m].append(dt); its[m].append(it)
    for m in T:
        print(f"{name} {m}: median {np.median(T[m])*1e3:.1f} ms (min {np.min(T[m])*1e3:.1f}) per EP iteration; "
              f"mean iters free/nudged {np.mean(its[m], axis=0).round(1).tolist()}")
    print(f"{name} ratio basin/base (median): {np.median(T['basin'])/np.median(T['base']):.2f}, (min) {np.min(T['basin'])/np.min(T['base']):.2f}")
print(os.popen("uptime").read().strip())
