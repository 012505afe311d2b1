"""Test cases for basin agreement: networks, parameters (initial / partly trained), initial states.

Uses the frozen copy of pyosc at HEAD in /work/scratch16/base (the repo is being restructured)."""
import os, sys, time
sys.path.insert(0, "/work/scratch16/base")
sys.path.insert(0, "/work/scratch16")
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
from pyosc import datasets, topology
from pyosc.models import xy
from pyosc.training.ep import EPConfig, random_phases, train_ep
from pyosc.engines.base import RelaxOptions

CACHE = "/work/scratch16/cache"
REF = RelaxOptions(method="ode", tol=1e-9, rtol=1e-11, atol=1e-11)
REF2 = RelaxOptions(method="ode", tol=1e-10, rtol=1e-12, atol=1e-12)


def _params_from_ds(ds, runs):
    W, h, psi = ds.W.values, ds.h.values, ds.psi.values
    return xy.XYParams(W, h, psi) if runs else xy.XYParams(W[0], h[0], psi[0])


def case(name, trained):
    """-> dict(topo, params, x, y, phi0) ; phi0 (runs?, S, M, N), >= 1000 states."""
    f = f"{CACHE}/{name}_{'trained' if trained else 'init'}.npz"
    if name == "xor":
        topo = topology.all_to_all(5, 2, 1)
        data = datasets.xor()
        x, y, runs, M = data.x, data.y, 100, 3
        scheme, per_class, iters, lr = "xor", None, 300, 0.1
    else:
        spec = "all-to-all:85" if name == "a2a85" else "layered:64,200,10"
        topo = topology.from_spec(spec, n_inputs=64, n_outputs=10)
        train, _ = datasets.digits_paper_split()
        idx = datasets.class_balanced_batch(train.labels, 30, np.random.default_rng(123))
        data = train
        x, y, runs, M = train.x[idx], train.y[idx], None, 4
        scheme = "all-to-all" if name == "a2a85" else "layered"
        per_class, iters, lr = 30, 40, 0.05
    if os.path.exists(f):
        z = np.load(f)
        params = xy.XYParams(z["W"], z["h"], z["psi"])
    else:
        params = xy.init_params(topo, np.random.default_rng(0), scheme=scheme, n_runs=runs)
        if trained:
            t = time.perf_counter()
            ds = train_ep(topo, data, params, EPConfig(n_iterations=iters, learning_rate=lr,
                                                        batch_per_class=per_class, seed=1), progress=False)
            params = _params_from_ds(ds, runs)
            print(f"# trained {name} {iters} its in {time.perf_counter()-t:.1f}s; distance "
                  f"{ds.distance.values[..., :3].mean():.3f} -> {ds.distance.values[..., -3:].mean():.3f}")
        np.savez(f, W=params.W, h=params.h, psi=params.psi)
    phi0 = random_phases(np.random.default_rng(7 + trained), x, M, topo.n_units, runs)
    return dict(name=name, trained=trained, topo=topo, params=params, x=x, y=y, phi0=phi0)


CASES = [(n, t) for n in ("xor", "a2a85", "layered") for t in (False, True)]


def wrapdiff(a, b, free):
    d = np.angle(np.exp(1j * (a[..., free] - b[..., free])))
    return np.max(np.abs(d), axis=-1)
