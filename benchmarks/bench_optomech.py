"""Cost of adjoint gradients through the optomechanical dynamics (5 nodes x 20 samples x 10 initial states).

Prints, per checkpointing policy of the reverse pass: one forward solve (loss only), one gradient (loss + adjoint), their ratio,
the cost of a central finite-difference gradient over the trainable parameters (2 P forward solves)
and the speed-up of the adjoint over it, and the compiled peak temporary memory of forward and
gradient (XLA memory analysis). Times are the median of ``--repeats`` calls after compilation.
Last line: the steady-state alternative (pseudo-transient continuation to the stable fixed point, then the
implicit-function gradient), its cost relative to the forward solve to t1, and its peak memory.

Usage: python benchmarks/bench_optomech.py [--model optomech-averaged] [--t1 5000] [--repeats 5]
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from pyosc.engines.base import IntegrateOptions, SteadyStateOptions
from pyosc.engines.jax import dynamics as jd
from pyosc.experiments import optomech_xor as ad
from pyosc.experiments.optomech_xor import noisy_xor
from pyosc.models import registry


def median_time(fn, args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def temp_bytes(fn, args) -> int:
    return int(fn.lower(*args).compile().memory_analysis().temp_size_in_bytes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=ad.MODELS, default="optomech-averaged")
    parser.add_argument("--t1", type=float, default=5e3)
    parser.add_argument("--rtol", type=float, default=1e-6)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--inits", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-steps", type=int, default=256, help="step budget per trajectory")
    args = parser.parse_args()

    cfg = ad.Config(model=args.model, t1=args.t1)
    net = ad.make_network(cfg)
    rng = np.random.default_rng(0)
    raw = ad.init_raw(rng, cfg.n_units, 1)
    p_all = {k: jnp.asarray(np.asarray(v)[0]) for k, v in ad.model_params(raw, net).items()}
    tables = registry.get_model(args.model).tables
    p = {k: v for k, v in p_all.items() if k not in tables}
    fixed = {k: p_all[k] for k in tables}
    data = noisy_xor(args.samples // 4, 0.3, rng)
    y0 = jnp.asarray(ad.initial_states(rng, net, 1, args.samples, args.inits)[0])
    x, targets = jnp.asarray(data.x), jnp.asarray(data.y)
    n_trainable = 10 + 2 * (cfg.n_units - 2)  # couplings (pairs), bias amplitudes and phases of free units
    print(f"{args.model}: {cfg.n_units} nodes x {args.samples} samples x {args.inits} initial states, t1 = {args.t1:g}, "
          f"rtol = atol = {args.rtol:g}; {n_trainable} trainable parameters; {jax.devices()[0].platform}")
    variants = {"default checkpoints": {}, f"all {args.max_steps} steps stored": {"saved_states": args.max_steps}}
    for name, kw in variants.items():
        opts = IntegrateOptions(rtol=args.rtol, atol=args.rtol, max_steps=args.max_steps, **kw)
        loss = jd.loss_fn(args.model, opts, (cfg.n_units - 1,), "distance")
        fwd = jax.jit(lambda q, f, loss=loss: loss(q, f, y0, x, targets, args.t1)[0])
        grad = jax.jit(jax.value_and_grad(lambda q, f, loss=loss: loss(q, f, y0, x, targets, args.t1)[0]))
        t_fwd = median_time(fwd, (p, fixed), args.repeats)
        t_grad = median_time(grad, (p, fixed), args.repeats)
        m_fwd, m_grad = temp_bytes(fwd, (p, fixed)), temp_bytes(grad, (p, fixed))
        t_fd = 2 * n_trainable * t_fwd
        print(f"[{name}] forward {t_fwd * 1e3:.1f} ms, gradient {t_grad * 1e3:.1f} ms, ratio {t_grad / t_fwd:.2f}; "
              f"finite differences {t_fd:.2f} s -> adjoint speed-up {t_fd / t_grad:.1f}x; "
              f"peak temporary memory forward {m_fwd / 2**20:.1f} MiB, gradient {m_grad / 2**20:.1f} MiB")
    steady = jax.jit(jd.steady_loss_fn(args.model, SteadyStateOptions(), (cfg.n_units - 1,), "distance"))
    steady_forward = jax.jit(jd.steady_states_fn(args.model, SteadyStateOptions()))

    t_ss = median_time(steady, (p, fixed, y0, x, targets), args.repeats)
    t_ss_fwd = median_time(steady_forward, (p, fixed, y0, x), args.repeats)
    ok = np.asarray(steady(p, fixed, y0, x, targets)[2])
    print(f"[steady state + implicit (steady-state adjoint) gradient] {t_ss * 1e3:.1f} ms = {t_ss / t_ss_fwd:.2f} x "
          f"its forward solve (steady states alone, {t_ss_fwd * 1e3:.1f} ms) = {t_ss / t_fwd:.2f} x the integration "
          f"to t1; {ok.mean():.0%} of states reached a stable fixed point; peak temporary memory "
          f"{temp_bytes(steady, (p, fixed, y0, x, targets)) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
