"""Parameter studies: a TOML study file -> a grid of points -> one NetCDF file per point -> one combined Dataset.

Study file (TOML)::

    task = "xy-xor"                    # a name from pyosc.experiments.TASKS
    name = "xor_size_sweep"            # optional: defaults to the file name
    output = "results/xor_size_sweep"  # optional: relative to the study file; default results/<name>
    description = "..."                # optional

    [base]                             # task configuration shared by every point
    runs = 100

    [sweep]                            # one dimension per key (the grid is their product)
    units = [3, 4, 5, 8]               # a list
    learning_rate = {start = 0.05, stop = 0.2, num = 4}   # a range: num points (linspace) or step (arange)

    [[zip]]                            # several keys that vary together along one dimension
    dim = "setting"
    units = [5, 10]
    n_inits = [1, 3]

Every point is written atomically (temporary file + rename) to ``<output>/points/<point>.nc``; a
point that raises leaves ``<point>.error.json`` with its traceback and the study goes on. Running a
study again skips completed points, so a killed study resumes where it stopped; a checkpointed task
(the XY and scattering tasks) also resumes a killed point from ``<point>.ckpt.npz``, and :func:`study_status`
reads how far it got. Points run in local processes, which end with their runner however it is killed, or
on a ``dask.distributed`` cluster.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomllib
import xarray as xr

from pyosc.errors import InvalidInputError
from pyosc.experiments import Task, get_task
from pyosc.experiments.options import check_value, from_mapping
from pyosc.results import checkpoint_progress, read_netcdf, write_netcdf

_TOP_KEYS = {"task", "name", "output", "description", "base", "sweep", "zip"}


@dataclass(frozen=True)
class Axis:
    """One study dimension: ``keys`` vary together (one key, or several zipped) over ``values``."""

    dim: str
    keys: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class Point:
    name: str
    coords: dict[str, Any]
    config: dict[str, Any]


@dataclass(frozen=True)
class Study:
    name: str
    task: Task
    base: dict[str, Any]
    axes: tuple[Axis, ...]
    output: Path
    description: str = ""
    source: dict = field(default_factory=dict)

    @property
    def points_dir(self) -> Path:
        return self.output / "points"

    def points(self) -> list[Point]:
        """The grid in row-major order of the axes."""
        out = []
        for combo in itertools.product(*(range(len(a.values)) for a in self.axes)):
            config, coords, parts = dict(self.base), {}, []
            for axis, i in zip(self.axes, combo):
                for k, v in zip(axis.keys, axis.values[i]):
                    config[k] = v
                    parts.append(f"{k}-{v}")
                coords[axis.dim] = i if len(axis.keys) > 1 else axis.values[i][0]
            name = "_".join(parts).replace("/", "-").replace(":", "-").replace(",", "-") or "point"
            out.append(Point(name, coords, dataclasses.asdict(from_mapping(self.task.load().Config, config))))
        return out


def _expand_values(where: str, spec) -> list:
    if isinstance(spec, list):
        values = spec
    elif isinstance(spec, dict):
        unknown = set(spec) - {"start", "stop", "num", "step"}
        if unknown or "start" not in spec or "stop" not in spec or (("num" in spec) == ("step" in spec)):
            raise InvalidInputError(f"{where}: a range needs start, stop and exactly one of num or step; got {sorted(spec)}")
        if "num" in spec:
            values = np.linspace(spec["start"], spec["stop"], int(spec["num"])).tolist()
        else:
            values = np.arange(spec["start"], spec["stop"], spec["step"]).tolist()
    else:
        raise InvalidInputError(f"{where} must be a list or a range table, got {type(spec).__name__}")
    if not values:
        raise InvalidInputError(f"{where} is an empty sweep")
    if len(set(map(repr, values))) != len(values):
        raise InvalidInputError(f"{where} repeats values: {values}")
    return values


def load_study(path: str | os.PathLike) -> Study:
    """Read and validate a study file; every error names the offending key. No work is started."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidInputError(f"study file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise InvalidInputError(f"study file {path} is not valid TOML: {e}") from None
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise InvalidInputError(f"unknown key(s) {sorted(unknown)} in {path.name}; allowed: {sorted(_TOP_KEYS)}")
    if "task" not in raw:
        raise InvalidInputError(f"{path.name} must name a task (key 'task')")
    task = get_task(raw["task"])
    base = raw.get("base", {})
    if not isinstance(base, dict):
        raise InvalidInputError("base must be a table")
    base = {k: check_value(task.load().Config, k, v, f"base.{k}") for k, v in base.items()}
    axes, seen = [], set()
    for k, spec in raw.get("sweep", {}).items():
        values = [check_value(task.load().Config, k, v, f"sweep.{k}") for v in _expand_values(f"sweep.{k}", spec)]
        axes.append(Axis(k, (k,), tuple((v,) for v in values)))
        seen.add(k)
    for j, z in enumerate(raw.get("zip", [])):
        where = f"zip[{j}]"
        if not isinstance(z, dict) or "dim" not in z or not isinstance(z["dim"], str):
            raise InvalidInputError(f"{where} needs a 'dim' name")
        keys = [k for k in z if k != "dim"]
        if not keys:
            raise InvalidInputError(f"{where} has no keys to vary")
        columns = [[check_value(task.load().Config, k, v, f"{where}.{k}") for v in _expand_values(f"{where}.{k}", z[k])] for k in keys]
        if len({len(c) for c in columns}) != 1:
            raise InvalidInputError(f"{where}: zipped keys {keys} need lists of equal length")
        axes.append(Axis(z["dim"], tuple(keys), tuple(zip(*columns))))
        seen.update(keys)
    for k in seen & set(base):
        raise InvalidInputError(f"key {k!r} is both in base and swept")
    dims = [a.dim for a in axes]
    if len(set(dims)) != len(dims):
        raise InvalidInputError(f"dimension names repeat: {dims}")
    name = raw.get("name", path.stem)
    output = path.parent / raw.get("output", f"results/{name}")
    study = Study(name, task, base, tuple(axes), output, raw.get("description", ""), raw)
    study.points()  # validates every point's full configuration
    return study


# --- running ----------------------------------------------------------------------------------

def _execute(task_name: str, config: dict, coords: dict, path: str) -> tuple[float, str | None]:
    """Run one point (in a worker); write its NetCDF file or its error record. Returns (seconds of this run, error);
    the file's ``point_seconds`` also counts the time before a resumed checkpoint."""
    path = Path(path)
    error_file = path.with_suffix(".error.json")
    task = get_task(task_name)
    checkpoint = path.with_suffix(".ckpt.npz")
    t = time.perf_counter()
    try:
        before = checkpoint_progress(checkpoint)[1] if checkpoint.exists() else 0.0  # a resumed point's earlier time
        experiment = task.load()
        ds = experiment.run(from_mapping(experiment.Config, config), checkpoint=checkpoint)
        seconds = time.perf_counter() - t
        ds.attrs.update({"point": path.stem, "point_coords": coords, "point_seconds": before + seconds})
        write_netcdf(ds, path)
        error_file.unlink(missing_ok=True)
        checkpoint.unlink(missing_ok=True)
        return seconds, None
    except Exception as e:  # noqa: BLE001 (recorded, the study goes on)
        seconds = time.perf_counter() - t
        record = {"point": path.stem, "config": config, "error": f"{type(e).__name__}: {e}",
                  "traceback": traceback.format_exc()}
        tmp = error_file.with_name(f".{error_file.name}.tmp")
        tmp.write_text(json.dumps(record, indent=1, default=str))
        os.replace(tmp, error_file)
        return seconds, record["error"]


@dataclass
class RunSummary:
    total: int
    skipped: int
    done: int
    failed: dict[str, str]
    wall_s: float
    task_s: float

    def __str__(self) -> str:
        return (f"{self.total} points: {self.skipped} already complete, {self.done} done, {len(self.failed)} failed; "
                f"{self.wall_s:.1f} s wall, {self.task_s:.1f} s inside the task runs")


def pending_points(study: Study) -> list[Point]:
    """Points without a readable result file. Stale temporary files of a killed run are removed."""
    study.points_dir.mkdir(parents=True, exist_ok=True)
    for stale in study.points_dir.glob(".*.tmp"):
        stale.unlink()
    return [p for p in study.points() if not (study.points_dir / f"{p.name}.nc").exists()]


@dataclass(frozen=True)
class PointStatus:
    """Where one point stands: ``state`` is "done", "failed", "started" (a checkpoint exists) or "pending".

    ``seconds`` is the task time (done: in all; started: so far), ``steps`` = (done, in all) for a started
    point whose checkpoint records them, ``saved_s_ago`` the age of its checkpoint (s), ``error`` a failure."""

    name: str
    state: str
    seconds: float | None = None
    steps: tuple[int, int] | None = None
    saved_s_ago: float | None = None
    error: str | None = None

    def __str__(self) -> str:
        if self.state == "done":
            return f"{self.name}: done in {_duration(self.seconds)}"
        if self.state == "failed":
            return f"{self.name}: failed: {self.error}"
        if self.state == "pending":
            return f"{self.name}: pending"
        if self.steps is None:
            return f"{self.name}: started, {_duration(self.seconds)} so far; checkpoint saved {_duration(self.saved_s_ago)} ago"
        done, total = self.steps
        left = self.seconds * (total - done) / done if done else float("nan")
        return (f"{self.name}: {done} of {total} steps ({done / total:.0%}) in {_duration(self.seconds)}, about "
                f"{_duration(left)} left at that pace; checkpoint saved {_duration(self.saved_s_ago)} ago")


def _duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "?"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def study_status(study: Study) -> list[PointStatus]:
    """The state of every point, from the files in ``<output>/points`` (reads metadata only; changes nothing)."""
    out = []
    for p in study.points():
        base = study.points_dir / p.name
        result, error, checkpoint = (base.with_suffix(s) for s in (".nc", ".error.json", ".ckpt.npz"))
        if result.exists():
            with xr.open_dataset(result, engine="netcdf4") as ds:
                out.append(PointStatus(p.name, "done", seconds=float(ds.attrs.get("point_seconds", np.nan))))
        elif error.exists():
            out.append(PointStatus(p.name, "failed", error=json.loads(error.read_text())["error"]))
        elif checkpoint.exists():
            steps, seconds = checkpoint_progress(checkpoint)
            out.append(PointStatus(p.name, "started", seconds, steps, time.time() - checkpoint.stat().st_mtime))
        else:
            out.append(PointStatus(p.name, "pending"))
    return out


def run_study(study: Study, executor: str = "local", workers: int = 1, scheduler: str | None = None,
              progress: bool = True) -> RunSummary:
    """Run every pending point; ``executor`` ``"local"`` (processes) or ``"dask"`` (a LocalCluster, or ``scheduler``)."""
    from tqdm.auto import tqdm

    if executor not in ("local", "dask"):
        raise InvalidInputError(f"unknown executor {executor!r}; use 'local' or 'dask'")
    if workers < 1:
        raise InvalidInputError(f"workers must be >= 1, got {workers}")
    start = time.perf_counter()
    points = study.points()
    todo = pending_points(study)
    summary = RunSummary(len(points), len(points) - len(todo), 0, {}, 0.0, 0.0)
    jobs = [(study.task.name, p.config, p.coords, str(study.points_dir / f"{p.name}.nc")) for p in todo]
    bar = tqdm(total=len(jobs), disable=not progress, desc=f"study {study.name}", unit="point")
    for (name, _, _, path), (seconds, error) in _dispatch(jobs, executor, workers, scheduler):
        summary.task_s += seconds
        if error is None:
            summary.done += 1
        else:
            summary.failed[Path(path).stem] = error
        bar.update()
        bar.set_postfix(failed=len(summary.failed))
    bar.close()
    summary.wall_s = time.perf_counter() - start
    return summary


def _exit_with_parent(parent: int, poll_s: float = 0.5) -> None:
    """In a local worker: end this process once the study runner is gone (killed, even by SIGKILL), so that an
    orphaned worker neither keeps the CPU nor races a restarted study for its point's checkpoint."""
    import threading

    def watch():
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _dispatch(jobs, executor, workers, scheduler):
    """Yield (job, result) as points finish."""
    if not jobs:
        return
    if executor == "local":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_exit_with_parent, initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(_execute, *job): job for job in jobs}
            for f in as_completed(futures):
                yield futures[f], f.result()
        return
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InvalidInputError("the dask executor needs dask.distributed: pip install 'dask[distributed]'") from None
    cluster = None if scheduler else LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                  host="127.0.0.1", dashboard_address=None)
    try:
        with Client(scheduler or cluster) as client:
            futures = {client.submit(_execute, *job, pure=False): job for job in jobs}
            for f in as_completed(futures):
                yield futures[f], f.result()
    finally:
        if cluster is not None:
            cluster.close()


# --- collecting -------------------------------------------------------------------------------

def collect(study: Study, lazy: bool = True) -> xr.Dataset:
    """All points in one Dataset with the sweep axes as dimensions (dask-backed if ``lazy``).

    Zipped axes become one dimension indexed 0..n-1 with each zipped key as a coordinate along it.
    Points of different sizes are aligned by an outer join on their coordinates (a dimension without one is
    indexed 0..n-1), NaN where a point has no such entry;
    missing or failed points are NaN and listed in ``attrs["missing_points"]``.
    """
    points = study.points()
    found, missing = {}, []
    for p in points:
        f = study.points_dir / f"{p.name}.nc"
        if f.exists():
            ds = xr.open_dataset(f, engine="netcdf4", chunks={}) if lazy else read_netcdf(f)
            positions = {d: np.arange(n) for d, n in ds.sizes.items() if d not in ds.indexes}  # to align on
            found[p.name] = ds.assign_coords(positions).assign(wall_time_s=ds.attrs.get("point_seconds", np.nan))
        else:
            missing.append(p.name)
    if not found:
        raise InvalidInputError(f"study {study.name!r} has no completed points in {study.points_dir}")
    template = next(iter(found.values()))
    blank = template.copy()
    for name, var in template.data_vars.items():
        if var.dtype.kind in "biuf":
            blank[name] = var.astype(float) * np.nan

    def labelled(p: Point) -> xr.Dataset:
        ds = found.get(p.name, blank)
        ds = ds.copy()
        ds.attrs = {}
        for axis in study.axes:
            ds = ds.expand_dims({axis.dim: [p.coords[axis.dim]]})
            if len(axis.keys) > 1:
                i = p.coords[axis.dim]
                ds = ds.assign_coords({k: (axis.dim, [axis.values[i][j]]) for j, k in enumerate(axis.keys)})
        return ds

    shape = [len(a.values) for a in study.axes]
    nested = np.empty(shape or [1], dtype=object).ravel()
    for i, p in enumerate(points):
        nested[i] = labelled(p)
    if study.axes:
        combined = xr.combine_nested(nested.reshape(shape).tolist(), concat_dim=[a.dim for a in study.axes],
                                     join="outer", combine_attrs="drop", data_vars="all", coords="different",
                                     compat="no_conflicts")
    else:
        combined = nested[0]
    for name, var in template.data_vars.items():
        combined[name].attrs = dict(var.attrs)
    combined.wall_time_s.attrs.update({"long_name": "time inside the task run of each point", "units": "s"})
    combined.attrs = {"study": study.name, "task": study.task.name, "description": study.description,
                      "config": {"base": study.base, "axes": {a.dim: {"keys": list(a.keys), "values": [list(v) for v in a.values]}
                                                               for a in study.axes}},
                      "missing_points": missing, "n_points": len(found)}
    return combined


def collect_to_file(study: Study) -> Path:
    """Collect and write ``<output>/<name>.nc`` (points are read one by one into memory: opening the
    same NetCDF files lazily twice in one process has crashed netCDF4/HDF5 here)."""
    return write_netcdf(collect(study, lazy=False), study.output / f"{study.name}.nc")
