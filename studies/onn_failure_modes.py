"""Study: failure modes of phase-reduced oscillatory networks (issue 6), one small study and plot each.

1. coupling too strong for the phase reduction: two Van der Pol oscillators (a sqrt(L/C) = 1), phase
   difference of the full circuit vs the reduced phase model, error vs G relative to the cycle's
   contraction rate |Floquet exponent|;
2. frequency dispersion: random detunings omega_k ~ N(0, sigma^2) on an EP-trained memory (letters TEK):
   locking (a converged equilibrium) and exact retrieval vs sigma;
3. even harmonics in H (Kuramoto-Sakaguchi lag alpha, H = sin(x + alpha)): EP's energy-based gradient
   against the exact implicit gradient (cosine similarity) on a 7-unit network with continuous states,
   and retrieval of the EP-trained memory relaxed with the lagged H (ODE relaxation, no energy);
4. too large beta: EP vs exact gradient error and the fraction of nudged states that leave the free
   basin, vs beta; and memory retrieval after EP training at each beta.

    /work/venv/bin/python studies/onn_failure_modes.py

Writes studies/results/onn/failure_modes.json, failure_modes.nc and failure_modes.png.
"""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from pyosc import topology as T
from pyosc.data import patterns as memory
from pyosc.engines import get_engine
from pyosc.engines.base import Nudge, RelaxOptions
from pyosc.models import onn, vdp, xy
from pyosc.models import phase_reduction as pr
from pyosc.results import provenance, write_netcdf
from pyosc.training.ep import implicit_gradient, random_phases
from pyosc.training.memory import (
    MemoryEPConfig,
    evaluate_memory,
    train_memory_ep,
)

OUT = Path(__file__).resolve().parent / "results" / "onn"
ENGINE = get_engine()
ODE = RelaxOptions(method="ode", tol=1e-8, rtol=1e-10, atol=1e-10, t_max=5000.0)
ODE_MEMORY = RelaxOptions(method="ode", tol=1e-5, rtol=1e-7, atol=1e-7, t_max=300.0)  # unlocked states stop at t_max


def strong_coupling():
    cyc = pr.periodic_orbit(vdp.VdPCircuit(a=1.0, b=1.0 / 3))
    red = pr.reduce_coupling(cyc, 9)
    phi0 = np.array([0.0, 1.5])
    Gs = np.array([0.005, 0.02, 0.05, 0.1, 0.2, 0.4])
    errors = []
    for G in Gs:
        t_end = max(2.0 / (2 * G * red.H.sin[0]), 8 * cyc.period)  # two relaxation times, at least 8 periods
        times = np.linspace(0.0, t_end, 81)
        run = pr.simulate_circuit(cyc.circuit, np.array([[0, G], [G, 0]]), cyc.state_at(phi0), times)
        c = pr.circuit_phases(run, cyc, phi0)
        m = ENGINE.trajectory("onn", onn.make_params(G * np.array([[0.0, 1], [1, 0]]), red.H, omega=red.load * G),
                              phi0[None, None], T.all_to_all(2, 0, 1), times,
                              options=RelaxOptions(rtol=1e-10, atol=1e-10))[0, 0]
        ok = np.all(np.isfinite(c), axis=-1)
        errors.append(float(np.max(np.abs((c[ok, 1] - c[ok, 0]) - (m[ok, 1] - m[ok, 0]))) / phi0[1]))
        print(f"strong coupling: G = {G:g} (G/|lambda| = {G / -cyc.floquet_exponent:.3f}): max |error of "
              f"dphi| / dphi(0) = {errors[-1]:.4f}", flush=True)
    return Gs, Gs / -cyc.floquet_exponent, np.array(errors)


def trained_memory():
    xi = memory.letters("TEK")
    ds = train_memory_ep(xi, onn.coupling_function([1.0]), MemoryEPConfig(n_iterations=60), progress=False)
    return xi, onn.make_params(ds.W.values, onn.coupling_function([1.0]), shil=np.r_[0.0, np.full(25, 0.3)])


def dispersion(xi, params):
    sigmas = np.array([0.0, 0.05, 0.1, 0.2, 0.4, 0.8])
    acc, locked = [], []
    for s in sigmas:
        rng = np.random.default_rng(3)
        omega = np.r_[0.0, s * rng.standard_normal(25)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q = params._replace(omega=omega)
        corrupted = memory.corrupt(xi, 0.12, 40, rng)
        eq = ENGINE.relax("onn", q, memory.initial_phases(corrupted, 0.1, rng), memory.network(25))
        out = memory.read_out(eq.phi)
        ok = np.all(out == xi[:, None, :], axis=-1) & eq.converged
        acc.append(float(ok.mean()))
        locked.append(float(eq.converged.mean()))
        print(f"dispersion sigma = {s:g}: locked {locked[-1]:.3f}, exact retrieval {acc[-1]:.3f}", flush=True)
    return sigmas, np.array(acc), np.array(locked)


def continuous_case(rng):
    """7 units (2 clamped inputs, 2 outputs) with continuous equilibria; targets are set per case
    0.3 .. 1.5 rad away from the free outputs (EP's bias grows with the log cost's curvature)."""
    topo = T.all_to_all(7, 2, 2)
    p = xy.init_params(topo, rng, scheme="xor")
    x = rng.uniform(-np.pi / 2, np.pi / 2, (16, 2))
    offset = rng.choice([-1, 1], (16, 2)) * rng.uniform(0.3, 1.5, (16, 2))
    return topo, p, offset, random_phases(rng, x, 1, 7, None)


def _similarity(a: dict, b: dict, topo) -> tuple[float, float]:
    m, f = topo.trainable_coupling_mask, ~topo.clamped
    va = np.concatenate([a["W"][m], a["h"][f], a["psi"][f]])
    vb = np.concatenate([b["W"][m], b["h"][f], b["psi"][f]])
    return float(va @ vb / np.linalg.norm(va) / np.linalg.norm(vb)), float(np.linalg.norm(va - vb) / np.linalg.norm(vb))


def even_harmonics(xi, params):
    alphas = np.array([0.0, 0.1, 0.2, 0.4, 0.8])
    topo, p, offset, phi0 = continuous_case(np.random.default_rng(5))
    cosine, retrieval = [], []
    for a in alphas:
        H = onn.coupling_function([np.cos(a)], cos=[0.0, np.sin(a)])
        q = onn.make_params(p.W, H, h=np.abs(p.h) + 0.3, psi=p.psi)
        y = ENGINE.relax("onn", q, phi0, topo, options=ODE).phi[:, 0, topo.output_units] + offset
        step = ENGINE.ep_step("onn", q, phi0, topo, Nudge(1e-3, y), ODE)
        good = step.free.converged.all(axis=-1) & step.nudged.converged.all(axis=-1)
        exact = implicit_gradient("onn", q, topo, step.free.phi[good], y[good])
        sub = step.gradient
        if not good.all():  # recompute the EP estimate on the states that locked in both phases
            sub = ENGINE.ep_step("onn", q, phi0[good], topo, Nudge(1e-3, y[good]), ODE).gradient
        cosine.append(_similarity(sub, exact, topo)[0])
        mem = params._replace(sin=params.sin * np.cos(a), cos=np.array([0.0, np.sin(a)]))
        acc, _, unconverged = evaluate_memory(mem, xi, 0.12, 10, np.random.default_rng(2), options=ODE_MEMORY)
        retrieval.append(acc)
        print(f"even harmonics alpha = {a:g}: cos(EP, exact gradient) = {cosine[-1]:.4f} on {good.sum()} states; "
              f"memory retrieval {acc:.3f} ({unconverged} unconverged)", flush=True)
    return alphas, np.array(cosine), np.array(retrieval)


def large_beta():
    betas = np.array([1e-3, 1e-2, 0.1, 0.3, 1.0, 3.0])
    topo, p, offset, phi0 = continuous_case(np.random.default_rng(6))
    q = onn.make_params(p.W, onn.coupling_function([1.0, 0.0, -0.25]), h=p.h, psi=p.psi)
    y = ENGINE.relax("onn", q, phi0, topo).phi[:, 0, topo.output_units] + offset
    err, jumped = [], []
    for b in betas:
        step = ENGINE.ep_step("onn", q, phi0, topo, Nudge(b, y))
        exact = implicit_gradient("onn", q, topo, step.free.phi, y)
        err.append(_similarity(step.gradient, exact, topo)[1])
        jumped.append(float(np.mean(np.max(np.abs(step.nudged.phi - step.free.phi), axis=-1) > 1.0)))
        print(f"beta = {b:g}: relative error of the EP gradient {err[-1]:.4f}, nudged states that left the free "
              f"basin {jumped[-1]:.3f}", flush=True)
    xi = memory.letters("TEKL")
    mem_betas = np.array([0.01, 0.1, 1.0, 3.0])
    mem_acc = []
    for b in mem_betas:
        ds = train_memory_ep(xi, onn.coupling_function([1.0]), MemoryEPConfig(beta=b, n_iterations=60), progress=False)
        W = onn.make_params(ds.W.values, onn.coupling_function([1.0]), shil=np.r_[0.0, np.full(25, 0.3)])
        mem_acc.append(evaluate_memory(W, xi, 0.12, 30, np.random.default_rng(4))[0])
        print(f"memory TEKL, EP at beta = {b:g}: exact retrieval {mem_acc[-1]:.3f}", flush=True)
    return betas, np.array(err), np.array(jumped), mem_betas, np.array(mem_acc)


def main() -> None:
    t0 = time.perf_counter()
    Gs, G_rel, G_err = strong_coupling()
    xi, params = trained_memory()
    sig, sig_acc, sig_locked = dispersion(xi, params)
    alphas, cosine, alpha_acc = even_harmonics(xi, params)
    betas, beta_err, beta_jump, mem_betas, mem_acc = large_beta()
    OUT.mkdir(parents=True, exist_ok=True)
    ds = xr.Dataset(
        {"coupling_error": ("G", G_err, {"long_name": "max |dphi circuit - dphi model| / dphi(0)", "units": "1"}),
         "G_over_floquet": ("G", G_rel, {"long_name": "G / |Floquet exponent| (C = 1)", "units": "1"}),
         "dispersion_retrieval": ("sigma", sig_acc, {"units": "1"}),
         "dispersion_locked": ("sigma", sig_locked, {"units": "1"}),
         "lag_gradient_cosine": ("alpha", cosine, {"long_name": "cos(EP gradient, exact gradient)", "units": "1"}),
         "lag_retrieval": ("alpha", alpha_acc, {"units": "1"}),
         "beta_gradient_error": ("beta", beta_err, {"units": "1"}),
         "beta_left_basin": ("beta", beta_jump, {"units": "1"}),
         "beta_memory_retrieval": ("memory_beta", mem_acc, {"units": "1"})},
        coords={"G": Gs, "sigma": sig, "alpha": alphas, "beta": betas, "memory_beta": mem_betas},
        attrs={"title": "ONN failure modes", "wall_time_s": time.perf_counter() - t0, **provenance()})
    write_netcdf(ds, OUT / "failure_modes.nc")
    (OUT / "failure_modes.json").write_text(json.dumps({k: dict(zip(map(str, ds[k].coords[ds[k].dims[0]].values.tolist()),
                                                                    ds[k].values.tolist())) for k in ds.data_vars}, indent=1))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 4, figsize=(17, 3.6))
    ax[0].loglog(G_rel, G_err, "o-")
    ax[0].axhline(0.02, ls=":", c="k")
    ax[0].set(xlabel="G / |Floquet exponent|", ylabel="phase-difference error / dphi(0)",
              title="1. coupling too strong (VdP, eps = 1)")
    ax[1].plot(sig, sig_locked, "o-", label="locked (equilibrium)")
    ax[1].plot(sig, sig_acc, "s-", label="exact retrieval")
    ax[1].set(xlabel="detuning std sigma (rad / time)", title="2. frequency dispersion (EP memory TEK)")
    ax[1].legend()
    ax[2].plot(alphas, cosine, "o-", label="cos(EP, exact gradient)")
    ax[2].plot(alphas, alpha_acc, "s-", label="memory retrieval")
    ax[2].set(xlabel="lag alpha (H = sin(x + alpha))", title="3. even part of H")
    ax[2].legend()
    ax[3].loglog(betas, beta_err, "o-", label="EP gradient rel. error")
    ax[3].loglog(betas, np.maximum(beta_jump, 1e-3), "s-", label="nudged left the basin")
    ax[3].semilogx(mem_betas, np.maximum(mem_acc, 1e-3), "^-", label="memory retrieval after EP")
    ax[3].set(xlabel="beta", title="4. large beta")
    ax[3].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "failure_modes.png", dpi=110)
    print(f"done in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
