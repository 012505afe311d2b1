"""``pyosc train scattering-digits``: a layered linear scattering network on UCI optdigits.

Defaults follow Wanjura & Marquardt (arXiv 2308.16181) and their code: layers 128 (64 pixels x R = 2) -
``--hidden`` - 10, kappa = 0.5 on every mode, inputs ``5 (1 - p / 16)``, outputs Im S_ll, softmax
cross-entropy on 8 Im S, plain SGD with lr 0.2 (layer-0 offsets 4x, the code's ``2 theta``), batch 200,
test accuracy every 60 iterations, 58,440 iterations (their best N2 = 80 point).
"""
from __future__ import annotations

import argparse

import numpy as np

from pyosc.datasets_scattering import BACKGROUND, KAPPA, load_optdigits_detunings
from pyosc.results import write_netcdf


def add_tasks(subparsers) -> None:
    p = subparsers.add_parser("scattering-digits", help="layered linear scattering network on UCI optdigits",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=int, default=80, help="hidden-layer size N2; 0 = no hidden layer (default 80)")
    p.add_argument("--replication", type=int, default=2, help="copies of each pixel in layer 1 (default 2)")
    p.add_argument("--kappa", type=float, default=KAPPA, help="decay rate of every mode (default 0.5)")
    p.add_argument("--background", type=float, default=BACKGROUND, help="detuning of a blank pixel (default 5)")
    p.add_argument("--iterations", type=int, default=58440, help="mini-batch iterations (default 58440)")
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    p.add_argument("--lr", type=float, default=0.2, help="learning rate (default 0.2)")
    p.add_argument("--offset-lr-scale", type=float, default=4.0,
                   help="learning-rate factor of the layer-1 offsets (default 4: the code's 2*theta)")
    p.add_argument("--loss", choices=["cross-entropy", "mse"], default="cross-entropy")
    p.add_argument("--beta", type=float, default=8.0, help="logit scale of the cross-entropy (default 8)")
    p.add_argument("--eval-every", type=int, default=60, help="iterations between test evaluations (default 60)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-home", default=None, help="folder with optdigits.tra/.tes (default $PYOSC_DATA_HOME)")
    p.add_argument("--checkpoint", default=None, help="resumable checkpoint (.npz), saved every --checkpoint-seconds")
    p.add_argument("--checkpoint-seconds", type=float, default=120.0)
    p.add_argument("--out", default="scattering-digits.nc", help="NetCDF history (default scattering-digits.nc)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def digits_experiment(hidden: int = 80, replication: int = 2, kappa: float = KAPPA, background: float = BACKGROUND,
                      iterations: int = 58440, batch_size: int = 200, optimizer: str = "sgd", lr: float = 0.2,
                      offset_lr_scale: float = 4.0, loss: str = "cross-entropy", beta: float = 8.0,
                      eval_every: int = 60, seed: int = 0, data_home=None):
    """The paper's layered network [64 R, hidden, 10] from its initialisation, its TrainConfig and the data."""
    from pyosc.training.scattering import TrainConfig, paper_initialisation

    x_train, y_train = load_optdigits_detunings("train", replication, background, data_home)
    x_test, y_test = load_optdigits_detunings("test", replication, background, data_home)
    sizes = [x_train.shape[1]] + ([hidden] if hidden > 0 else []) + [10]
    network = paper_initialisation(sizes, np.random.default_rng(seed), kappa=kappa)
    config = TrainConfig(iterations=iterations, batch_size=batch_size, optimizer=optimizer, lr=lr,
                         lr_scale={"detuning_0": offset_lr_scale}, loss=loss, beta=beta, eval_every=eval_every, seed=seed)
    return network, config, (x_train, y_train, x_test, y_test), sizes


def run(args) -> int:
    from tqdm import tqdm

    from pyosc.training.scattering import train_network

    network, config, (x_train, y_train, x_test, y_test), sizes = digits_experiment(
        args.hidden, args.replication, args.kappa, args.background, args.iterations, args.batch_size, args.optimizer,
        args.lr, args.offset_lr_scale, args.loss, args.beta, args.eval_every, args.seed, args.data_home)
    bar = tqdm(total=args.iterations, disable=args.no_progress, unit="it", mininterval=2.0)

    def progress(step, metrics):
        bar.n = step
        if "test_accuracy" in metrics:
            bar.set_postfix(loss=f"{metrics['loss']:.3f}", test=f"{metrics['test_accuracy']:.4f}",
                            best=f"{metrics['best_test_accuracy']:.4f}", refresh=False)
        bar.update(0)

    _, _, ds = train_network(network, x_train, y_train, x_test, y_test, config, checkpoint=args.checkpoint,
                             checkpoint_seconds=args.checkpoint_seconds, progress=progress)
    bar.close()
    ds.attrs["config"].update(task="scattering-digits", hidden=args.hidden, replication=args.replication,
                              background=args.background, train_set="optdigits.tra", test_set="optdigits.tes")
    write_netcdf(ds, args.out)
    acc = ds["test_accuracy"].values
    n_test = y_test.size
    print(f"scattering-digits: layers {'-'.join(map(str, sizes))}, {args.iterations} iterations "
          f"({args.optimizer}, lr {args.lr:g}, batch {args.batch_size}, {args.loss})")
    print(f"  final test accuracy {acc[-1]:.4f} ({round(acc[-1] * n_test)}/{n_test}); best "
          f"{ds.attrs['best_test_accuracy']:.4f} at iteration {ds.attrs['best_iteration']}")
    print(f"  history written to {args.out}")
    return 0
