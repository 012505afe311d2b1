"""``pyosc study run|status|collect|plot FILE``: parameter studies from TOML files."""
from __future__ import annotations

import sys
import warnings
from collections import Counter
from contextlib import contextmanager


def add_command(commands) -> None:
    study = commands.add_parser("study", help="run, collect and plot parameter studies (TOML study files)")
    sub = study.add_subparsers(dest="study_command", required=True)
    run = sub.add_parser("run", help="run every pending point of a study (resumes a killed study)")
    run.add_argument("file")
    run.add_argument("--executor", choices=["local", "dask"], default="local")
    run.add_argument("--workers", type=int, default=1, help="worker processes (default %(default)s)")
    run.add_argument("--scheduler", default=None, help="address of a running dask scheduler (tcp://host:port)")
    run.add_argument("--scheduler-timeout", type=float, default=30.0,
                     help="seconds to wait for --scheduler to answer (default %(default)s)")
    run.add_argument("--quiet", action="store_true")
    run.set_defaults(func=_run)
    status = sub.add_parser("status", help="where each point stands: done, failed, started (steps, time left) or pending")
    status.add_argument("file")
    status.set_defaults(func=_status)
    col = sub.add_parser("collect", help="combine the points into one NetCDF file with the sweep axes as dims")
    col.add_argument("file")
    col.set_defaults(func=_collect)
    plot = sub.add_parser("plot", help="the study's standard figures (PNG) from its collected file")
    plot.add_argument("file")
    plot.set_defaults(func=_plot)


@contextmanager
def _plain_warnings():
    """Study warnings (a point redone, a file set aside) printed as one 'pyosc: warning:' line each."""
    from pyosc.studies import StudyWarning

    with warnings.catch_warnings():
        original = warnings.showwarning

        def show(message, category, *args, **kwargs):
            if issubclass(category, StudyWarning):
                print(f"pyosc: warning: {message}", file=sys.stderr)
            else:
                original(message, category, *args, **kwargs)

        warnings.simplefilter("always", StudyWarning)
        warnings.showwarning = show
        yield


def _run(args) -> int:
    from pyosc.studies import load_study, run_study

    study = load_study(args.file)
    with _plain_warnings():
        summary = run_study(study, args.executor, args.workers, args.scheduler, progress=not args.quiet,
                            connect_timeout=args.scheduler_timeout)
    print(f"study {study.name}: {summary}")
    for name, error in summary.failed.items():
        print(f"  failed: {name}: {error}")
    return 1 if summary.failed else 0


def _status(args) -> int:
    from pyosc.studies import load_study, study_status

    study = load_study(args.file)
    points = study_status(study)
    for point in points:
        print(point)
    counts = Counter(p.state for p in points)
    states = [s for s in ("done", "running", "started", "failed", "invalid", "pending")
              if counts[s] or s in ("done", "started", "failed", "pending")]
    print(f"study {study.name}: {len(points)} points: " + ", ".join(f"{counts[s]} {s}" for s in states))
    return 0


def _collect(args) -> int:
    from pyosc.studies import collect_to_file, load_study

    study = load_study(args.file)
    with _plain_warnings():
        path = collect_to_file(study)
    print(f"collected into {path}")
    return 0


def _plot(args) -> int:
    from pyosc.plots import plot_study
    from pyosc.studies import load_study

    for path in plot_study(load_study(args.file)):
        print(f"wrote {path}")
    return 0
