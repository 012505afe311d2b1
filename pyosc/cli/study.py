"""``pyosc study run|status|collect|plot FILE``: parameter studies from TOML files."""
from __future__ import annotations

from collections import Counter


def add_command(commands) -> None:
    study = commands.add_parser("study", help="run, collect and plot parameter studies (TOML study files)")
    sub = study.add_subparsers(dest="study_command", required=True)
    run = sub.add_parser("run", help="run every pending point of a study (resumes a killed study)")
    run.add_argument("file")
    run.add_argument("--executor", choices=["local", "dask"], default="local")
    run.add_argument("--workers", type=int, default=1, help="worker processes (default %(default)s)")
    run.add_argument("--scheduler", default=None, help="address of a running dask scheduler (tcp://host:port)")
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


def _run(args) -> int:
    from pyosc.studies import load_study, run_study

    study = load_study(args.file)
    summary = run_study(study, args.executor, args.workers, args.scheduler, progress=not args.quiet)
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
    print(f"study {study.name}: {len(points)} points: " + ", ".join(f"{counts[s]} {s}" for s in ("done", "started", "failed", "pending")))
    return 0


def _collect(args) -> int:
    from pyosc.studies import collect_to_file, load_study

    path = collect_to_file(load_study(args.file))
    print(f"collected into {path}")
    return 0


def _plot(args) -> int:
    from pyosc.plots import plot_study
    from pyosc.studies import load_study

    for path in plot_study(load_study(args.file)):
        print(f"wrote {path}")
    return 0
