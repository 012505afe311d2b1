"""EP gradient on one digits batch (a2a85, initial params, batch 300): default vs flow (diffrax), before and after."""
from cases import *
import relax_basin as rb
from pyosc.engines.base import get_engine, Nudge
eng = get_engine("jax")
opts = eval("rb.BasinOptions(" + ",".join(sys.argv[1:]) + ")")
for name in ("a2a85", "layered") if os.environ.get("LAYERED") else ("a2a85",):
    topo = topology.from_spec("all-to-all:85" if name == "a2a85" else "layered:64,200,10", n_inputs=64, n_outputs=10)
    params = xy.init_params(topo, np.random.default_rng(0), scheme="all-to-all" if name == "a2a85" else "layered")
    train, _ = datasets.digits_paper_split()
    rng = np.random.default_rng(11)
    idx = datasets.class_balanced_batch(train.labels, 30, rng)
    phi0 = random_phases(rng, train.x[idx], 1, topo.n_units, None)
    nud = Nudge(0.1, train.y[idx])
    free = np.flatnonzero(~topo.clamped)
    t = time.perf_counter()
    flow = eng.ep_step("xy", params, phi0, topo, nud, RelaxOptions(method="ode", tol=1e-9, rtol=1e-11, atol=1e-11))
    tf = time.perf_counter() - t
    base = eng.ep_step("xy", params, phi0, topo, nud)
    g, fr, nu = rb.ep_step("xy", params, phi0, topo, train.y[idx], 0.1, opts)
    mask = topo.trainable_coupling_mask
    def vec(G):
        return np.concatenate([np.asarray(G.W)[np.triu(mask)], np.asarray(G.h)[free], np.asarray(G.psi)[free]])
    ref = vec(flow.gradient)
    for tag, G, F, Nn in (("before (newton)", base.gradient, base.free.phi, base.nudged.phi), ("after (basin)", g, fr[0], nu[0])):
        rel = np.linalg.norm(vec(G) - ref) / np.linalg.norm(ref)
        df = wrapdiff(F, flow.free.phi, free) > 1e-6
        dn = wrapdiff(Nn, flow.nudged.phi, free) > 1e-6
        print(f"{name} {tag}: |g - g_flow| / |g_flow| = {rel:.2e}; free states off the flow's basin {df.sum()}/300, "
              f"nudged states off {dn.sum()}/300 (flow reference {tf:.0f}s)")
