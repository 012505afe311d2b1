"""``pyosc train TASK [options]``: one task's options come from its ``Config`` (names, types, defaults, help).

Every task shares ``--out``, ``--overwrite``, ``--checkpoint``, ``--checkpoint-seconds``, ``--restart``,
``--engine``, ``--data-home`` and ``--quiet``. ``--out`` is checked before training, and an existing file is replaced
only with ``--overwrite``. Training saves a checkpoint (by default ``<out>.ckpt.npz``) every two minutes and on
Ctrl-C; rerunning the same command resumes from it (a checkpoint of other settings is refused, naming them;
``--restart`` sets it aside and starts fresh), and it is removed once the history is written.
"""
from __future__ import annotations

import argparse
import os
import sys

from pyosc.experiments import TASKS, get_task


def add_command(commands) -> None:
    listing = "\n".join(f"  {t.name:<18} {t.description}" + (f" (alias: {', '.join(t.aliases)})" if t.aliases else "")
                        for t in TASKS.values())
    train = commands.add_parser("train", help="train a network on a task and write its history to NetCDF",
                                description=f"tasks:\n{listing}\n\n'pyosc train TASK --help' lists a task's options.",
                                formatter_class=argparse.RawDescriptionHelpFormatter, add_help=False)
    train.add_argument("-h", "--help", action="store_true", help="show this help message and exit")
    train.add_argument("task", nargs="?", metavar="TASK", help="the task (see above)")
    train.add_argument("options", nargs=argparse.REMAINDER, help="the task's options")
    train.set_defaults(func=lambda args: _train(args, train))


def task_parser(name: str) -> tuple[argparse.ArgumentParser, type]:
    """The parser of ``pyosc train name`` and the task's config class."""
    from pyosc.experiments.options import fields

    task = get_task(name)
    experiment = task.load()
    parser = argparse.ArgumentParser(prog=f"pyosc train {task.name}", description=experiment.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_argument_group("task options (study-file keys: the same names with underscores)")
    for key, (kind, default, text, choices) in fields(experiment.Config).items():
        flag = "--" + key.replace("_", "-")
        if kind is bool:
            group.add_argument(flag, action="store_true", default=default, help=f"{text} (default: off)")
        elif kind is tuple:
            group.add_argument(flag, type=int, nargs="*", default=default, help=f"{text} (default: {list(default)})")
        else:
            group.add_argument(flag, type=kind, default=default, choices=choices, help=f"{text} (default: %(default)s)")
    run = parser.add_argument_group("run options")
    run.add_argument("--out", default=f"{task.name}.nc", help="NetCDF file for the history (default: %(default)s)")
    run.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    run.add_argument("--checkpoint", default=None, help="training-state file, saved every --checkpoint-seconds and on "
                                                        "Ctrl-C; rerunning resumes from it (default: OUT.ckpt.npz)")
    run.add_argument("--checkpoint-seconds", type=float, default=120.0, help="seconds between checkpoints "
                                                                              "(default: %(default)s)")
    run.add_argument("--restart", action="store_true", help="start fresh: an existing checkpoint is set aside "
                                                            "(renamed to CHECKPOINT.old-DATE), not resumed")
    run.add_argument("--engine", default=None, help="numerical engine (default: $PYOSC_ENGINE or jax; "
                                                    "'pyosc info' lists them)")
    run.add_argument("--data-home", default=None, help="folder with the data files (default: $PYOSC_DATA_HOME or "
                                                       "~/pyosc_data)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser, experiment


def _train(args, train_parser) -> int:
    if args.help or args.task is None:
        train_parser.print_help()
        return 0 if args.help else 2
    parser, experiment = task_parser(args.task)
    opts = vars(parser.parse_args(args.options))
    return run_task(experiment, opts)


def run_task(experiment, opts: dict) -> int:
    """Train, write the history, print the summary; on Ctrl-C say where the checkpoint is and return 130."""
    from dataclasses import asdict

    from pyosc.experiments.options import fields, from_mapping
    from pyosc.results import check_writable, write_netcdf
    from pyosc.training.loop import TrainingInterrupted, recording, set_aside

    config = from_mapping(experiment.Config, {k: opts[k] for k in fields(experiment.Config)})
    out = check_writable(opts["out"], overwrite=opts["overwrite"])
    checkpoint = check_writable(opts["checkpoint"] or f"{out}.ckpt.npz", what="checkpoint", flag="--checkpoint")
    if opts["restart"] and checkpoint.exists():
        print(f"pyosc: set the old checkpoint aside as {set_aside(checkpoint, 'old')}", file=sys.stderr)
    if opts["data_home"] is not None:
        os.environ["PYOSC_DATA_HOME"] = opts["data_home"]
    kwargs = {} if opts["engine"] is None else {"engine": opts["engine"]}
    try:
        with recording(task=experiment.__name__, config=asdict(config)):
            ds = experiment.run(config, checkpoint=checkpoint, checkpoint_seconds=opts["checkpoint_seconds"],
                                progress=not opts["quiet"], **kwargs)
    except TrainingInterrupted as e:
        print(f"\npyosc: {e}", file=sys.stderr)
        return 130
    write_netcdf(ds, out)
    checkpoint.unlink(missing_ok=True)
    print(experiment.summary(ds))
    print(f"history written to {out}")
    return 0
