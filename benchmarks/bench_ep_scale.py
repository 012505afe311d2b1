"""Speed of equilibrium propagation at scale (issue 18): the MNIST epoch and the XOR training loop.

* MNIST: the EP iteration on a layered [784, H, 10] network, batch 200, compiled as one program (free and nudged
  relaxations, gradient, Adam update; :class:`pyosc.training.ep.EPTrainer`), timed warm over ``--batches`` batches
  of training images and extrapolated to one epoch of 60,000 images. ``--epoch`` times a whole epoch instead.
* XOR: 5 units, 100 runs x 1000 iterations (:func:`pyosc.training.ep.train_ep`), warm (the second call, its
  programs compiled), with one host call per iteration (``scan=0``) and with the whole loop in one ``lax.scan``
  (``scan=1000``). The paper's own code takes 403 s on this machine kind (``bench_xy.py``).

Run: ``python benchmarks/bench_ep_scale.py [--methods continuation newton] [--hidden 500] [--batches 25]``.
Prints seconds, rates and the machine's load average (timings on a loaded machine are only indicative). XLA runs a
program on every CPU the process may use; XOR's tiny steps run faster on one (``taskset -c 0 python ...``: the
threads' synchronisation costs more than they share), MNIST's on all.
"""
from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np
from _timing import best_time

from pyosc import topology
from pyosc.data import datasets
from pyosc.data.mnist import mnist_phase_datasets
from pyosc.engines import get_engine
from pyosc.engines.base import RelaxOptions
from pyosc.models import xy
from pyosc.training.ep import EPConfig, EPTrainer, random_phases, train_ep

EPOCH_IMAGES = 60_000


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def bench_mnist(hidden: int, method: str, batches: int, batch_size: int = 200) -> None:
    train, _, _ = mnist_phase_datasets(validation=0)
    topo = topology.from_spec(f"layered:784,{hidden},10", n_inputs=784, n_outputs=10)
    params = xy.init_params(topo, np.random.default_rng(0), scheme="layered")
    unit = (~topo.clamped).astype(float)

    def sample(rng):
        idx = rng.choice(train.x.shape[0], batch_size, replace=False)
        return random_phases(rng, train.x[idx], 1, topo.n_units, None), train.y[idx], None

    trainer = EPTrainer("bench", get_engine("jax"), "xy", topo, params, beta=0.1, relax=RelaxOptions(method=method),
                        optimizer="adam", learning_rate=0.002, n_iterations=batches + 1, evaluations=[], seed=0,
                        trainable={"W": topo.trainable_coupling_mask.astype(float), "h": unit, "psi": unit},
                        sample=sample, record=lambda step, batch: {"work": np.atleast_1d(step.free.work.mean())})
    t = time.perf_counter()
    trainer.step(0)
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    for it in range(1, batches + 1):
        trainer.step(it)
    trainer.parameters_finite()  # waits for the last update
    elapsed = time.perf_counter() - t
    per_image = elapsed / (batches * batch_size)
    print(f"MNIST [784,{hidden},10] {method:12s} batch {batch_size}: first iteration (compiling) {compile_s:.1f} s; "
          f"{batches} batches in {elapsed:.1f} s = {1e3 * per_image:.2f} ms per image; free-phase iterations "
          f"{trainer.records['work'].mean():.1f}; one epoch of {EPOCH_IMAGES} images: {per_image * EPOCH_IMAGES:.0f} s "
          f"({_load()})", flush=True)


def profile_mnist(hidden: int, method: str, batch_size: int = 200) -> None:
    """Where an EP iteration's time goes: the compiled parts, each timed alone (best of 5, warm)."""
    import jax.numpy as jnp

    from pyosc.engines.jax import relax as R
    from pyosc.engines.jax.trig import sincos

    train, _, _ = mnist_phase_datasets(validation=0, n_train=batch_size)
    topo = topology.from_spec(f"layered:784,{hidden},10", n_inputs=784, n_outputs=10)
    p = xy.XYParams(*(jnp.asarray(a) for a in xy.init_params(topo, np.random.default_rng(0), scheme="layered")))
    plan, options = R._plan(topo), RelaxOptions(method=method)
    phi0 = jnp.asarray(random_phases(np.random.default_rng(1), train.x, 1, topo.n_units, None))
    targets = jnp.asarray(train.y)
    order = np.asarray(plan.order)
    W, ops, per_state = R._xy_ops(p, phi0[:, 0], targets, 0.0, plan)
    loc = jax.jit(lambda phi: ops.local(phi, per_state))(phi0[:, 0, order])

    def timed(name, fn, *args):
        fn = jax.jit(fn)
        jax.block_until_ready(fn(*args))
        best = best_time(lambda: jax.block_until_ready(fn(*args)), 5)
        print(f"  {name:44s} {1e3 * best:8.2f} ms", flush=True)

    print(f"profile: MNIST [784,{hidden},10], {method}, batch {batch_size} ({_load()})")
    timed("EP step (free + nudged + gradient)", lambda q, x: R._ep_step("xy", plan, options, q, x, targets, 0.1), p,
          phi0)
    timed("free relaxation", lambda q, x: R._relax_batch("xy", q, x, targets, 0.0, plan, options, 1.0), p, phi0)
    timed("EP gradient of one state set (dE/dtheta)", lambda x: xy.energy_param_grad(x, p, order), phi0)
    timed("clamped drive (input -> hidden, once per relaxation)", lambda x: R._xy_ops(p, x, targets, 0.0, plan)[2][0],
          phi0[:, 0])
    timed("local fields, F, gradient (per Newton iteration)", lambda phi: ops.local(phi, per_state), phi0[:, 0, order])
    timed("damped Newton step with Schur complement (per it.)",
          lambda lc: R._damped_newton_step(lc, W, jnp.ones(batch_size), plan, ops), loc)
    timed("sincos of the free phases (pyosc.engines.jax.trig)", sincos, phi0[:, 0, order])
    timed("jnp.sin + jnp.cos of the free phases (XLA)", lambda x: (jnp.sin(x), jnp.cos(x)), phi0[:, 0, order])


def bench_xor(method: str, scan: int) -> None:
    topo = topology.all_to_all(5, 2, 1)
    params = xy.init_params(topo, np.random.default_rng(0), scheme="xor", n_runs=100)
    config = EPConfig(n_iterations=1000, learning_rate=0.1, scan=scan, relax=RelaxOptions(method=method))
    t = time.perf_counter()
    train_ep(topo, datasets.xor(), params, config, progress=False)
    first = time.perf_counter() - t
    t = time.perf_counter()
    ds = train_ep(topo, datasets.xor(), params, config, progress=False)
    warm = time.perf_counter() - t
    solved = float((ds.distance.isel(iteration=-1) < 0.05).mean())
    print(f"XOR 100 runs x 1000 its {method:12s} scan={scan:4d}: warm {warm:.2f} s (first call {first:.1f} s); "
          f"{100 * solved:.0f} % of runs below distance 0.05; paper's code 403 s ({_load()})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=["continuation", "newton"])
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--batches", type=int, default=25, help="MNIST batches timed (after the compiling one)")
    parser.add_argument("--epoch", action="store_true", help="time a whole MNIST epoch (300 batches)")
    parser.add_argument("--skip", choices=("mnist", "xor"), default=None)
    parser.add_argument("--profile", action="store_true", help="also time the parts of one MNIST EP iteration")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {len(os.sched_getaffinity(0))} of {os.cpu_count()} "
          f"CPUs")
    for method in args.methods:
        if args.skip != "xor":
            for scan in (0, 1000):
                bench_xor(method, scan)
        if args.skip != "mnist":
            bench_mnist(args.hidden, method, EPOCH_IMAGES // 200 if args.epoch else args.batches)
            if args.profile:
                profile_mnist(args.hidden, method)


if __name__ == "__main__":
    main()
