"""Learning curve of an xy-mnist run: accuracy per epoch (training batches, validation, test) and a summary line.

Reads the finished history (``.nc``) or, while the run goes on, its checkpoint (``.ckpt.npz``: the epochs done). A run
started from an earlier one (``init_from``, in the same folder) is drawn after it, epochs counted on, with the model
chosen on the validation accuracy over all of them.
Usage: python studies/plot_xy_mnist.py studies/results/xy_mnist/mnist_h500.nc[.ckpt.npz] [out.png]
"""
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from pyosc.results import checkpoint_group, read_checkpoint, read_netcdf

PUBLISHED = {"phase-only Kuramoto network, EP (Rageau & Grollier 2025)": 97.77,
             "oscillator Ising machine, EP (Gower 2025)": 97.2}


def curves(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Accuracies per epoch done, and the run's configuration."""
    if path.suffix == ".nc":
        ds = read_netcdf(path)
        return {k: ds[k].values for k in ("train_accuracy", "validation_accuracy", "test_accuracy")}, ds.attrs["config"]
    meta, arrays = read_checkpoint(path)
    config = meta["config"]
    done = meta["next_iteration"]
    n_batches = (60_000 - config["validation"] if not config["n_train"] else config["n_train"]) // config["batch_size"]
    epochs = (done - 1) // n_batches  # evaluated epochs: after epoch e comes the evaluation before step e n_batches
    if epochs < 1:  # nothing evaluated yet
        return {k: np.empty(0) for k in ("train_accuracy", "validation_accuracy", "test_accuracy")}, config
    scores, records = checkpoint_group(arrays, "score"), checkpoint_group(arrays, "record")
    train = records["train_accuracy"].reshape(-1)[: epochs * n_batches].reshape(epochs, n_batches).mean(axis=1)
    return {"train_accuracy": train, **{k: scores[k].reshape(-1)[:epochs] for k in
                                        ("validation_accuracy", "test_accuracy")}}, config


def chain(path: Path) -> tuple[dict[str, np.ndarray], dict, list[tuple[int, str]]]:
    """Accuracies per epoch of the run and of the runs it started from (oldest first), its configuration, and each
    restart: the number of epochs before it and the hidden layers from then on where they grew (else "")."""
    acc, config = curves(path)
    if not config.get("init_from"):
        return acc, config, []
    before, before_config, restarts = chain(path.parent / Path(config["init_from"]).name)
    n = len(before["test_accuracy"])
    grown = config["hidden"] if config["hidden"] != before_config["hidden"] else ""
    return {k: np.concatenate([before[k], acc[k]]) for k in acc}, config, restarts + [(n, grown)]


path = Path(sys.argv[1])
acc, config, restarts = chain(path)
if not acc["test_accuracy"].size:
    sys.exit(f"{path}: no epoch evaluated yet")
out = Path(sys.argv[2]) if len(sys.argv) > 2 else path.parent / f"{path.name.split('.')[0]}_accuracy.png"
epochs = np.arange(1, len(acc["test_accuracy"]) + 1)
best = int(np.argmax(acc["validation_accuracy"]))
fig, ax = plt.subplots(figsize=(6, 4))
for i, (n, grown) in enumerate(restarts):
    ax.axvline(n + 0.5, color="grey", lw=0.8, ls="-." if not grown else "-",
               label=f"restart, grown to [784,{grown},10]" if grown else
               "restart from the final parameters" if not i else None)
for key, label in (("train_accuracy", "training batches (free phase, before the update; as augmented)"),
                   ("validation_accuracy", "validation (last 10,000 training images)"),
                   ("test_accuracy", "test (10,000 images)")):
    ax.plot(epochs, 100 * acc[key], marker="o", ms=3, label=label)
for (name, value), ls in zip(PUBLISHED.items(), (":", "--")):
    ax.axhline(value, color="grey", ls=ls, lw=1, label=f"{name}: {value} %")
ax.axhline(98.0, color="k", lw=0.8, label="98 %")
low = min(100 * min(float(a.min()) for a in acc.values()), 96.0)
ax.xaxis.get_major_locator().set_params(integer=True)
ax.set(xlabel="epoch", ylabel="accuracy (%)", ylim=(max(np.floor(low) - 1, 50), 100))
ax.set_title(f"XY network [784,{config['hidden']},10] on MNIST, EP (beta {config['beta']}, {config['method']})",
             fontsize=10)
ax.legend(fontsize=7, loc="lower right")
fig.tight_layout()
fig.savefig(out, dpi=120)
print(f"{len(epochs)} epochs: test accuracy at the best validation epoch ({best + 1}): "
      f"{100 * acc['test_accuracy'][best]:.2f} %; best test accuracy {100 * acc['test_accuracy'].max():.2f} %; "
      f"validation {100 * acc['validation_accuracy'][best]:.2f} %. Plot: {out}")
