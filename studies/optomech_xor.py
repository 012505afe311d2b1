"""XOR on 5 optomechanical cells: 4 clean vs 20 noisy training samples, restarts, robustness, phase maps.

Stage ``train``: trains ``--runs`` independent networks on each data set (restarts enabled) and writes
studies/results/optomech/xor_{4,20}.nc. Stage ``analyze``: success fraction vs input-noise sigma
(noisy inputs and random initial states) for both, the margin at sigma = 0.3, output-phase maps over
the input plane, a figure (robustness.png, phase_maps.png) and summary.json.

Usage: python studies/optomech_xor.py train --runs 20 --iterations 300
       python studies/optomech_xor.py analyze
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pyosc.data import datasets
from pyosc.experiments import optomech_xor as ad
from pyosc.models import optomech as om
from pyosc.results import read_netcdf, write_netcdf

OUT = Path(__file__).resolve().parent / "results" / "optomech"
SIGMAS = (0.0, 0.1, 0.2, 0.3, 0.5)


def train(args) -> None:
    cfg = {"n_iterations": args.iterations, "seed": args.seed, "learning_rate": args.lr, "f_max": args.f_max,
           "k_max": args.k_max, "t1": args.t1, "sign": args.sign, "patience": args.patience, "loss": args.loss,
           "gradient": args.gradient, "max_restarts": args.max_restarts, "rtol": 1e-6, "max_steps": args.max_steps,
           "n_runs": args.runs, "cell": args.cell}
    inits = {4: args.inits_4, 20: args.inits_20}
    sets = {4: datasets.xor(), 20: ad.noisy_xor(5, args.train_noise, np.random.default_rng([args.seed, 2]))}
    for n in args.sets:
        ds = ad.train_adjoint(sets[n], ad.Config(**cfg, n_inits=inits[n]), progress=False)
        write_netcdf(ds, OUT / f"xor_{n}{args.tag}.nc")
        print(f"{n} samples: {ds.attrs['wall_time_s']:.0f} s; 100 % accuracy: {np.mean(ds.solved.values):.0%} of runs, "
              f"without restarts {np.mean(ds.solved_first_attempt.values):.0%}; restarts {int(ds.n_restarts.sum())}",
              flush=True)


def analyze(args) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = {}
    curves, solved_runs = {}, {}
    maps = {}
    for n in (4, 20):
        ds = read_netcdf(OUT / f"xor_{n}{args.tag}.nc")
        solved = ds.solved.values
        solved_runs[n] = solved
        curves[n] = np.array([ad.robustness(ds, s, n_trials=args.trials, seed=7) for s in SIGMAS])  # (sigma, run)
        best = int(np.argmax(curves[n][SIGMAS.index(0.3)] + 10 * solved))
        maps[n] = ad.phase_map(ds.isel(run=[best]), n_grid=args.grid, n_inits=args.map_inits)
        summary[f"{n}_samples"] = {
            "runs": int(ds.sizes["run"]), "solved_fraction_with_restarts": float(np.mean(solved)),
            "solved_fraction_without_restarts": float(np.mean(ds.solved_first_attempt.values)),
            "restarts_total": int(ds.n_restarts.sum()),
            "success_vs_sigma_all_runs": {str(s): float(c.mean()) for s, c in zip(SIGMAS, curves[n])},
            "success_vs_sigma_solved_runs": {str(s): float(c[solved].mean()) if solved.any() else None
                                             for s, c in zip(SIGMAS, curves[n])},
            "train_wall_time_s": float(ds.attrs["wall_time_s"]),
        }
    i3 = SIGMAS.index(0.3)
    summary["margin_at_sigma_0.3_all_runs"] = float(curves[20][i3].mean() - curves[4][i3].mean())
    sem = {n: float(c[i3].std(ddof=1) / np.sqrt(c.shape[1])) for n, c in curves.items()}
    summary["margin_at_sigma_0.3_standard_error"] = float(np.hypot(sem[4], sem[20]))  # over runs, both sets
    if solved_runs[4].any() and solved_runs[20].any():
        summary["margin_at_sigma_0.3_solved_runs"] = float(curves[20][i3][solved_runs[20]].mean()
                                                           - curves[4][i3][solved_runs[4]].mean())
    (OUT / f"summary{args.tag}.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for (n, c), color in zip(curves.items(), ("C0", "C1")):
        ax.errorbar(SIGMAS, c.mean(1), yerr=c.std(1) / np.sqrt(c.shape[1]), marker="o", capsize=3, color=color,
                    label=f"{n} samples, all runs")
        ok = solved_runs[n]
        if ok.any():
            ax.plot(SIGMAS, c[:, ok].mean(1), "--s", color=color, label=f"{n} samples, {ok.sum()} solved runs")
    ax.set_xlabel("input phase noise sigma (rad)")
    ax.set_ylabel("success fraction")
    ax.set_title("XOR, 5 optomechanical cells")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / f"robustness{args.tag}.png", dpi=150)

    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, (n, m) in zip(axes, maps.items()):
        mean_sin = np.sin(m.values[0]).mean(-1)
        im = ax.imshow(mean_sin.T, origin="lower", extent=[-np.pi, np.pi, -np.pi, np.pi], cmap="RdBu_r",
                       vmin=-1, vmax=1)
        ax.plot([-np.pi / 2, -np.pi / 2, np.pi / 2, np.pi / 2], [-np.pi / 2, np.pi / 2, -np.pi / 2, np.pi / 2], "k+")
        ax.set_xlabel("input phase x0 (rad)")
        ax.set_ylabel("input phase x1 (rad)")
        ax.set_title(f"trained on {n} samples")
    fig.colorbar(im, ax=axes, shrink=0.8, label="<sin phi_out> over random initial states")
    fig.savefig(OUT / f"phase_maps{args.tag}.png", dpi=150)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stage", choices=["train", "analyze"])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--sets", type=int, nargs="+", default=[4, 20])
    p.add_argument("--cell", choices=sorted(om.CELLS), default="locking")
    p.add_argument("--gradient", choices=ad.GRADIENTS, default="steady-state")
    p.add_argument("--iterations", type=int, default=1000)
    p.add_argument("--lr", type=float, default=0.03)
    p.add_argument("--k-max", type=float, default=5e-3)
    p.add_argument("--f-max", type=float, default=2e-2)
    p.add_argument("--t1", type=float, default=2e4, help="readout time of the integrated dynamics (1/Omega_m)")
    p.add_argument("--max-steps", type=int, default=16384, help="step budget of one integration to t1")
    p.add_argument("--sign", default="both")
    p.add_argument("--patience", type=int, default=100)
    p.add_argument("--max-restarts", type=int, default=20)
    p.add_argument("--loss", default="log")
    p.add_argument("--inits-4", type=int, default=5, help="random initial states per sample, 4-sample set")
    p.add_argument("--inits-20", type=int, default=5, help="random initial states per sample, 20-sample set")
    p.add_argument("--train-noise", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tag", default="")
    p.add_argument("--trials", type=int, default=25, help="noisy trials per XOR pattern and run")
    p.add_argument("--grid", type=int, default=31)
    p.add_argument("--map-inits", type=int, default=4)
    args = p.parse_args()
    train(args) if args.stage == "train" else analyze(args)


if __name__ == "__main__":
    main()
