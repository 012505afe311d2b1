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

Loading a study checks every key, value and range and builds every point's configuration, so a bad value fails
before any work. Every point is written atomically (temporary file + rename) to ``<output>/points/<point>.nc``,
recording the SHA-256 of its full configuration (task and every setting, defaults included) and of its data. A
point is complete only if its file opens, its data match their checksum and its configuration hash matches the
study's point as it stands now; any other file (truncated, edited, or computed before ``[base]`` changed) is redone
with a :class:`StudyWarning` naming it, and set aside (renamed ``<point>.nc.invalid-<date>``), not deleted.

A point that raises leaves ``<point>.error.json`` with its traceback and the study goes on; so does a point whose
worker process dies. Running a study again skips completed points, so a killed study resumes where it stopped; a
checkpointed task also resumes a killed point from ``<point>.ckpt.npz`` (a checkpoint that cannot be read, or that
was written with other settings, is set aside and the point restarts), and :func:`study_status` reads how far it got.

Several runners may work on one study at once (``pyosc study run`` twice, on one machine or on several sharing the
folder): each point is claimed by a lock file (``.<point>.lock``, with ``.<point>.owner.json`` saying which process
holds it), so every point is computed once; a runner that finds a point claimed goes on with the others and then
waits for it. Temporary files are unique to their writer; those a killed runner left are removed by the next
runner that claims their point. Points run in local processes, which end with their runner however it is killed,
or on a ``dask.distributed`` cluster.
"""
from __future__ import annotations

import dataclasses
import glob
import hashlib
import itertools
import json
import math
import os
import signal
import socket
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomllib
import xarray as xr

from pyosc.errors import InvalidInputError
from pyosc.experiments import Task, get_task
from pyosc.experiments.options import check_value, from_mapping
from pyosc.results import atomic_path, checkpoint_progress, decode_attrs, plain, verify_netcdf, write_netcdf

_TOP_KEYS = {"task", "name", "output", "description", "base", "sweep", "zip"}
MAX_VALUES = 10_000  # values along one axis
MAX_POINTS = 100_000  # points of a study
HASH_ATTR = "point_config_sha256"


class StudyWarning(UserWarning):
    """Something in a study's folder was not as expected and was dealt with (a point redone, a file set aside)."""


@dataclass(frozen=True)
class Axis:
    """One study dimension: ``keys`` vary together (one key, or several zipped) over ``values``."""

    dim: str
    keys: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class Point:
    """One point of the grid: its file name, its coordinates on the axes, its full configuration and that
    configuration's hash (task and every setting)."""

    name: str
    coords: dict[str, Any]
    config: dict[str, Any]
    config_sha256: str = ""


def config_hash(task: str, config: dict) -> str:
    """SHA-256 of a point's full resolved configuration: the task's name and every setting."""
    text = json.dumps({"task": task, "config": plain(config)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Study:
    name: str
    task: Task
    base: dict[str, Any]
    axes: tuple[Axis, ...]
    output: Path
    description: str = ""
    source: dict = field(default_factory=dict)
    file: Path | None = None

    @property
    def points_dir(self) -> Path:
        return self.output / "points"

    def point_path(self, point: Point, suffix: str = ".nc") -> Path:
        return self.points_dir / f"{point.name}{suffix}"

    def points(self) -> list[Point]:
        """The grid in row-major order of the axes, every point's configuration built (and so validated)."""
        config_cls = self.task.load().Config
        out, names = [], {}
        for combo in itertools.product(*(range(len(a.values)) for a in self.axes)):
            config, coords, parts = dict(self.base), {}, []
            for axis, i in zip(self.axes, combo):
                for k, v in zip(axis.keys, axis.values[i]):
                    config[k] = v
                    parts.append(f"{k}-{v}")
                coords[axis.dim] = i if len(axis.keys) > 1 else axis.values[i][0]
            name = "_".join(parts).replace("/", "-").replace(":", "-").replace(",", "-") or "point"
            if name in names:
                raise InvalidInputError(f"the points {names[name]} and {coords} would share the file {name}.nc; "
                                        "make the swept values distinct")
            names[name] = coords
            full = dataclasses.asdict(from_mapping(config_cls, config))
            out.append(Point(name, coords, full, config_hash(self.task.name, full)))
        return out


def _number(where: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInputError(f"{where} must be a finite number, got {value!r}")
    return value


def _expand_values(where: str, spec) -> list:
    if isinstance(spec, list):
        values = spec
    elif isinstance(spec, dict):
        unknown = set(spec) - {"start", "stop", "num", "step"}
        if unknown or "start" not in spec or "stop" not in spec or (("num" in spec) == ("step" in spec)):
            raise InvalidInputError(f"{where}: a range needs start, stop and exactly one of num or step; got {sorted(spec)}")
        start, stop = _number(f"{where}.start", spec["start"]), _number(f"{where}.stop", spec["stop"])
        if "num" in spec:
            num = spec["num"]
            if isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= MAX_VALUES:
                raise InvalidInputError(f"{where}.num must be an integer from 1 to {MAX_VALUES}, got {num!r}")
            values = np.linspace(start, stop, num).tolist()
        else:
            step = _number(f"{where}.step", spec["step"])
            if step == 0:
                raise InvalidInputError(f"{where}.step = 0: a range's step must be non-zero")
            count = (stop - start) / step  # about the number of values
            if not 0 < count <= MAX_VALUES:
                raise InvalidInputError(f"{where}.step = {step!r} gives {'no' if count <= 0 else 'too many'} values "
                                        f"from {start!r} to {stop!r} (1 to {MAX_VALUES} allowed; the step must point "
                                        "from start towards stop)")
            values = np.arange(start, stop, step).tolist()
    else:
        raise InvalidInputError(f"{where} must be a list or a range table, got {type(spec).__name__}")
    if not values:
        raise InvalidInputError(f"{where} is an empty sweep")
    if len(values) > MAX_VALUES:
        raise InvalidInputError(f"{where} has {len(values)} values; at most {MAX_VALUES} are allowed")
    return values


def _column(config_cls, key: str, spec, where: str) -> list:
    """The values of one swept key, each checked and converted to the key's type; two values that convert to one
    (``1`` and ``1.0`` for a float) are refused, since they would be one point."""
    raw = _expand_values(where, spec)
    values = [check_value(config_cls, key, v, where) for v in raw]
    seen = {}
    for r, v in zip(raw, values):
        if repr(v) in seen:
            raise InvalidInputError(f"{where} repeats a value: {seen[repr(v)]!r} and {r!r} are both {v!r}")
        seen[repr(v)] = r
    return values


def _table(raw: dict, key: str, default) -> Any:
    value = raw.get(key, default)
    if not isinstance(value, dict):
        raise InvalidInputError(f"{key} must be a table ([{key}] followed by key = value lines), "
                                f"got {type(value).__name__}")
    return value


def load_study(path: str | os.PathLike) -> Study:
    """Read and validate a study file and every point's configuration; every error names the offending key. No work
    is started."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidInputError(f"study file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"study file {path} cannot be read ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise InvalidInputError(f"study file {path} is not valid TOML: {e}") from None
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise InvalidInputError(f"unknown key(s) {sorted(unknown)} in {path.name}; allowed: {sorted(_TOP_KEYS)}")
    if "task" not in raw:
        raise InvalidInputError(f"{path.name} must name a task (key 'task')")
    for key in ("task", "name", "output", "description"):
        if key in raw and not isinstance(raw[key], str):
            raise InvalidInputError(f"{key} must be a string, got {type(raw[key]).__name__} {raw[key]!r}")
    task = get_task(raw["task"])
    config_cls = task.load().Config
    base = {k: check_value(config_cls, k, v, f"base.{k}") for k, v in _table(raw, "base", {}).items()}
    axes, seen = [], set()
    for k, spec in _table(raw, "sweep", {}).items():
        axes.append(Axis(k, (k,), tuple((v,) for v in _column(config_cls, k, spec, f"sweep.{k}"))))
        seen.add(k)
    zips = raw.get("zip", [])
    if not isinstance(zips, list):
        raise InvalidInputError(f"zip must be an array of tables ([[zip]] sections), got {type(zips).__name__}")
    for j, z in enumerate(zips):
        where = f"zip[{j}]"
        if not isinstance(z, dict) or "dim" not in z or not isinstance(z["dim"], str):
            raise InvalidInputError(f"{where} needs a 'dim' name")
        keys = [k for k in z if k != "dim"]
        if not keys:
            raise InvalidInputError(f"{where} has no keys to vary")
        columns = [_column(config_cls, k, z[k], f"{where}.{k}") for k in keys]
        if len({len(c) for c in columns}) != 1:
            raise InvalidInputError(f"{where}: zipped keys {keys} need lists of equal length")
        axes.append(Axis(z["dim"], tuple(keys), tuple(zip(*columns))))
        repeated = seen & set(keys)
        if repeated:
            raise InvalidInputError(f"key {min(repeated)!r} varies along two dimensions")
        seen.update(keys)
    for k in seen & set(base):
        raise InvalidInputError(f"key {k!r} is both in base and swept")
    dims = [a.dim for a in axes]
    if len(set(dims)) != len(dims):
        raise InvalidInputError(f"dimension names repeat: {dims}")
    size = math.prod(len(a.values) for a in axes)
    if size > MAX_POINTS:
        raise InvalidInputError(f"the grid has {size} points ({' x '.join(str(len(a.values)) for a in axes)}); at "
                                f"most {MAX_POINTS} are allowed")
    name = raw.get("name", path.stem)
    output = path.parent / raw.get("output", f"results/{name}")
    study = Study(name, task, base, tuple(axes), output, raw.get("description", ""), raw, path)
    study.points()  # builds, and so validates, every point's full configuration
    return study


# --- checking point files ---------------------------------------------------------------------------------------

def _verified(path: Path, config_sha256: str) -> tuple[xr.Dataset | None, str | None]:
    """(the point file's data, None) if it is complete, else (None, why not)."""
    try:
        ds = verify_netcdf(path)
    except InvalidInputError as e:
        return None, str(e)
    stored = ds.attrs.get(HASH_ATTR)
    if stored != config_sha256:
        return None, (f"{path} was computed with another configuration (the study file, or a default of the task, "
                      "changed since)" if stored else f"{path} records no configuration hash")
    return ds, None


def _pending(study: Study) -> tuple[list[Point], list[str]]:
    """Points without a complete result file, and why each existing file among them is not complete."""
    out, problems = [], []
    for p in study.points():
        path = study.point_path(p)
        problem = _verified(path, p.config_sha256)[1] if path.exists() else None
        if problem is not None:
            problems.append(f"{problem}; the point will be redone (the file is set aside, not deleted)")
        if problem is not None or not path.exists():
            out.append(p)
    return out, problems


def pending_points(study: Study) -> list[Point]:
    """Points without a complete result file (see the module docstring); a :class:`StudyWarning` names each
    incomplete file found. Nothing is changed."""
    todo, problems = _pending(study)
    for problem in problems:
        warnings.warn(problem, StudyWarning, stacklevel=2)
    return todo


# --- one point, in a worker -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    """One point to compute; ``started`` is when its runner started (an error recorded since then by another
    runner is taken as this point's result, not retried)."""

    task: str
    config: dict
    coords: dict
    path: str
    config_sha256: str
    started: float


@dataclass(frozen=True)
class Outcome:
    """What became of a job: ``state`` "done", "failed", "busy" (another runner holds the point; ``error`` says which
    process), "elsewhere" (another runner completed it) or "interrupted"; ``notes`` are warnings for the user."""

    state: str
    seconds: float = 0.0
    error: str | None = None
    notes: tuple[str, ...] = ()


def _hidden(path: Path, suffix: str) -> Path:
    return path.with_name(f".{path.stem}{suffix}")


def _owner(path: Path, since: bool = True) -> str:
    """Which process holds the point ("pid P on HOST since TIME"), from its owner file."""
    try:
        o = json.loads(_hidden(path, ".owner.json").read_text())
        return f"pid {o['pid']} on {o['host']}" + (f" since {o['since']}" if since else "")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _record_error(path: Path, config: dict, error: str, trace: str) -> None:
    error_file = path.with_suffix(".error.json")
    tmp = atomic_path(error_file)
    Path(tmp).write_text(json.dumps({"point": path.stem, "config": plain(config), "error": error, "traceback": trace},
                                    indent=1))
    os.replace(tmp, error_file)


def _recorded_error(error_file: Path) -> str:
    try:
        return json.loads(error_file.read_text())["error"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"its error record {error_file} cannot be read ({type(e).__name__}: {e})"


def _checkpoint_seconds(checkpoint: Path) -> float:
    """Training time recorded in a checkpoint (0 if there is none or it cannot be read)."""
    try:
        return checkpoint_progress(checkpoint)[1] if checkpoint.exists() else 0.0
    except Exception:  # noqa: BLE001 (an unreadable checkpoint is set aside when the run refuses it)
        return 0.0


def _compute(job: Job, path: Path, notes: list[str]) -> Outcome:
    from pyosc.training.loop import CheckpointError, CorruptCheckpointError, TrainingInterrupted, recording, set_aside

    checkpoint = path.with_suffix(".ckpt.npz")
    t = time.perf_counter()
    try:
        experiment = get_task(job.task).load()
        config = from_mapping(experiment.Config, job.config)
        before = _checkpoint_seconds(checkpoint)
        with recording(task=experiment.__name__, config=job.config):
            try:
                ds = experiment.run(config, checkpoint=checkpoint)
            except CheckpointError as e:
                why = "corrupt" if isinstance(e, CorruptCheckpointError) else "stale"
                aside = set_aside(e.path, why)
                notes.append(f"checkpoint {e.path} could not be resumed ({'unreadable' if why == 'corrupt' else 'other settings'}); "
                             f"set aside as {aside.name}, the point restarted")
                before, t = 0.0, time.perf_counter()
                ds = experiment.run(config, checkpoint=checkpoint)
        seconds = time.perf_counter() - t
        ds.attrs.update({"point": path.stem, "point_coords": job.coords, "point_seconds": before + seconds,
                         HASH_ATTR: job.config_sha256, "point_runner": f"pid {os.getpid()} on {socket.gethostname()}"})
        write_netcdf(ds, path)
        path.with_suffix(".error.json").unlink(missing_ok=True)
        checkpoint.unlink(missing_ok=True)
        return Outcome("done", seconds, notes=tuple(notes))
    except TrainingInterrupted as e:
        return Outcome("interrupted", time.perf_counter() - t, str(e), tuple(notes))
    except Exception as e:  # noqa: BLE001 (recorded, the study goes on)
        error = f"{type(e).__name__}: {e}"
        _record_error(path, job.config, error, traceback.format_exc())
        return Outcome("failed", time.perf_counter() - t, error, tuple(notes))


def _execute(job: Job, wait: bool = False) -> Outcome:
    """Claim the point (waiting for another runner's claim if ``wait``), then compute it unless it is complete by
    now; write its NetCDF file or its error record."""
    from filelock import FileLock, Timeout

    from pyosc.training.loop import set_aside

    path = Path(job.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(_hidden(path, ".lock"))
    try:
        lock.acquire(timeout=-1 if wait else 0)
    except Timeout:
        return Outcome("busy", error=_owner(path, since=False))
    owner = _hidden(path, ".owner.json")
    try:
        owner.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
        for suffix in (".nc", ".ckpt.npz", ".error.json"):  # left by a killed writer: nobody else holds the point
            for stale in path.parent.glob(f".{glob.escape(path.stem)}{suffix}.*.tmp"):
                stale.unlink(missing_ok=True)
        if path.exists() and _verified(path, job.config_sha256)[1] is None:
            return Outcome("elsewhere")
        error_file = path.with_suffix(".error.json")
        if error_file.exists() and error_file.stat().st_mtime >= job.started:
            return Outcome("failed", error=f"{_recorded_error(error_file)} (in another runner)")
        notes = [f"{path.name} set aside as {set_aside(path, 'invalid').name}"] if path.exists() else []
        return _compute(job, path, notes)
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


def run_point(study: Study, point: Point) -> Outcome:
    """Compute one point in this process, claiming it as a runner would (waiting for another runner's claim); for
    debugging a point and for tests."""
    job = Job(study.task.name, point.config, point.coords, str(study.point_path(point)), point.config_sha256,
              time.time())
    return _execute(job, wait=True)


def _lost(job: Job, error: str) -> Outcome:
    """The outcome of a job whose worker died: recorded like an error of the point."""
    _record_error(Path(job.path), job.config, error, "")
    return Outcome("failed", error=error)


# --- running ----------------------------------------------------------------------------------------------------

@dataclass
class RunSummary:
    total: int
    skipped: int
    done: int
    failed: dict[str, str]
    wall_s: float
    task_s: float
    elsewhere: int = 0
    redone: list[str] = field(default_factory=list)
    others: set[str] = field(default_factory=set)  # the other runners' processes met

    def __str__(self) -> str:
        other = (f"{self.elsewhere} done by another runner ({'; '.join(sorted(self.others))}), " if self.elsewhere
                 else "")
        return (f"{self.total} points: {self.skipped} already complete, {self.done} done, {other}{len(self.failed)} "
                f"failed; {self.wall_s:.1f} s wall, {self.task_s:.1f} s inside the task runs")


def run_study(study: Study, executor: str = "local", workers: int = 1, scheduler: str | None = None,
              progress: bool = True, *, connect_timeout: float = 30.0) -> RunSummary:
    """Run every pending point; ``executor`` ``"local"`` (processes) or ``"dask"`` (a LocalCluster, or ``scheduler``,
    reached within ``connect_timeout`` s). Another runner's points are left to it, then waited for."""
    from tqdm.auto import tqdm

    if executor not in ("local", "dask"):
        raise InvalidInputError(f"unknown executor {executor!r}; use 'local' or 'dask'")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInputError(f"workers must be an integer >= 1, got {workers!r}")
    if not (isinstance(connect_timeout, (int, float)) and 0 < connect_timeout < math.inf):
        raise InvalidInputError(f"connect_timeout must be a positive number of seconds, got {connect_timeout!r}")
    start, started = time.perf_counter(), time.time()
    points = study.points()
    todo, problems = _pending(study)
    for problem in problems:
        warnings.warn(problem, StudyWarning, stacklevel=2)
    summary = RunSummary(len(points), len(points) - len(todo), 0, {}, 0.0, 0.0, redone=problems)
    study.points_dir.mkdir(parents=True, exist_ok=True)
    queue = [(Job(study.task.name, p.config, p.coords, str(study.point_path(p)), p.config_sha256, started), False)
             for p in todo]
    bar = tqdm(total=len(queue), disable=not progress, desc=f"study {study.name}", unit="point")
    for (job, _), outcome in _dispatch(queue, executor, workers, scheduler, connect_timeout):
        for note in outcome.notes:
            warnings.warn(note, StudyWarning, stacklevel=2)
        if outcome.state == "busy":  # another runner computes it: come back to it once the rest is done
            summary.others.add(outcome.error)
            queue.append((job, True))
            continue
        summary.task_s += outcome.seconds
        if outcome.state == "done":
            summary.done += 1
        elif outcome.state == "elsewhere":
            summary.elsewhere += 1
        else:
            summary.failed[Path(job.path).stem] = outcome.error or outcome.state
        bar.update()
        bar.set_postfix(failed=len(summary.failed))
    bar.close()
    summary.wall_s = time.perf_counter() - start
    return summary


def _dispatch(queue: list, executor: str, workers: int, scheduler: str | None, connect_timeout: float):
    """Yield ((job, wait), outcome) as points finish; entries appended to ``queue`` meanwhile are run too."""
    if not queue:
        return
    if executor == "local":
        yield from _local(queue, workers)
    else:
        yield from _dask(queue, workers, scheduler, connect_timeout)


def _exit_with_parent(parent: int, poll_s: float = 0.5) -> None:
    """In a local worker: end this process once the study runner is gone (killed, even by SIGKILL), so that an
    orphaned worker neither keeps the CPU nor races a restarted study for its point's checkpoint."""
    import threading

    def watch():
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _serve(conn, parent: int) -> None:
    """A local worker: run the jobs that arrive on ``conn`` until None arrives. Ctrl-C reaches it only inside a
    training run, which then saves its checkpoint."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent(parent)
    while True:
        try:
            item = conn.recv()
        except EOFError:
            return
        if item is None:
            return
        try:
            outcome = _execute(*item)
        except Exception as e:  # noqa: BLE001 (e.g. a full disk: the point fails, the worker goes on)
            outcome = _lost(item[0], f"{type(e).__name__}: {e}")
        conn.send(outcome)


class _Worker:
    """A local worker process and the pipe to it."""

    def __init__(self, context):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, os.getpid()), daemon=True,
                                       name="pyosc-study-worker")
        self.process.start()
        child.close()

    def death(self) -> str:
        self.process.join(5)
        code = self.process.exitcode
        how = (f"killed by {signal.Signals(-code).name}" if code is not None and code < 0
               else f"exit status {code}")
        return f"the worker process (pid {self.process.pid}) died ({how}) while computing this point"

    def stop(self, grace: float) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(grace)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()
        self.conn.close()


def _local(queue: list, workers: int):
    """Run the queue on ``workers`` local processes (spawned); a worker that dies fails its point and is replaced."""
    import multiprocessing
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("spawn")
    idle, running = [], {}
    try:
        while queue or running:
            while queue and len(running) < workers:
                while idle and not idle[-1].process.is_alive():
                    idle.pop().stop(0)
                worker = idle.pop() if idle else _Worker(context)
                running[worker] = queue.pop(0)
                worker.conn.send(running[worker])
            ready = set(wait([w.conn for w in running] + [w.process.sentinel for w in running]))
            for worker in [w for w in running if w.conn in ready or w.process.sentinel in ready]:
                item = running.pop(worker)
                try:
                    if not worker.conn.poll():
                        raise EOFError
                    outcome = worker.conn.recv()
                    idle.append(worker)
                except (EOFError, OSError):
                    outcome = _lost(item[0], worker.death())
                    worker.conn.close()
                yield item, outcome
    finally:
        for worker in idle:
            worker.stop(10)
        for worker in running:  # interrupted (Ctrl-C reaches the workers too): a training run saves its checkpoint
            worker.stop(60)


def _dask(queue: list, workers: int, scheduler: str | None, connect_timeout: float):
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InvalidInputError("the dask executor needs dask.distributed: pip install 'dask[distributed]'") from None
    cluster = None
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout=connect_timeout)
            except (OSError, TimeoutError, ValueError, TypeError) as e:
                raise InvalidInputError(f"cannot reach the dask scheduler at {scheduler!r} within {connect_timeout:g} s "
                                        f"({type(e).__name__}: {e}); start it ('dask scheduler') or check "
                                        "--scheduler") from None
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None)
            client = Client(cluster)
        with client:
            futures, finished = {}, as_completed()

            def submit():
                while queue:
                    item = queue.pop(0)
                    future = client.submit(_execute, *item, pure=False)
                    futures[future] = item
                    finished.add(future)

            submit()
            for future in finished:
                item = futures.pop(future)
                try:
                    outcome = future.result()
                except Exception as e:  # noqa: BLE001 (e.g. KilledWorker: the point fails, the study goes on)
                    outcome = _lost(item[0], f"the dask task failed: {type(e).__name__}: {e}")
                yield item, outcome
                submit()
    finally:
        if cluster is not None:
            cluster.close()


# --- status -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PointStatus:
    """Where one point stands: ``state`` is "done", "running" (claimed by a live runner), "invalid" (a file that
    ``study run`` will redo; ``error`` says why), "failed", "started" (a checkpoint exists) or "pending".

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
        if self.state in ("failed", "invalid", "running"):
            return f"{self.name}: {self.state}: {self.error}"
        if self.state == "pending":
            return f"{self.name}: pending"
        if self.error is not None:
            return f"{self.name}: started; {self.error}"
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


def _claimed(path: Path) -> bool:
    """Whether a live process holds the point's lock (only looked at while an owner file says so)."""
    from filelock import FileLock, Timeout

    if not _hidden(path, ".owner.json").exists():
        return False
    lock = FileLock(_hidden(path, ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def study_status(study: Study) -> list[PointStatus]:
    """The state of every point, from the files in ``<output>/points`` (reads and verifies them; changes nothing)."""
    out = []
    for p in study.points():
        result, error, checkpoint = (study.point_path(p, s) for s in (".nc", ".error.json", ".ckpt.npz"))
        if _claimed(result):
            out.append(PointStatus(p.name, "running", error=f"computed by {_owner(result)}"))
        elif result.exists():
            ds, problem = _verified(result, p.config_sha256)
            if problem is None:
                out.append(PointStatus(p.name, "done", seconds=float(ds.attrs.get("point_seconds", np.nan))))
            else:
                out.append(PointStatus(p.name, "invalid", error=f"{problem}; 'pyosc study run' redoes it"))
        elif error.exists():
            out.append(PointStatus(p.name, "failed", error=_recorded_error(error)))
        elif checkpoint.exists():
            age = time.time() - checkpoint.stat().st_mtime
            try:
                steps, seconds = checkpoint_progress(checkpoint)
            except Exception as e:  # noqa: BLE001
                out.append(PointStatus(p.name, "started", saved_s_ago=age, error=(
                    f"its checkpoint {checkpoint} cannot be read ({type(e).__name__}); 'pyosc study run' sets it "
                    "aside and restarts the point")))
                continue
            out.append(PointStatus(p.name, "started", seconds, steps, age))
        else:
            out.append(PointStatus(p.name, "pending"))
    return out


# --- collecting -------------------------------------------------------------------------------------------------

def _key_attrs(config_cls, key: str, value) -> dict:
    """CF attributes of a swept key's coordinate: its help text, and units ("1": settings are in the model's units)
    unless it is text."""
    f = {f.name: f for f in dataclasses.fields(config_cls)}[key]
    attrs = {"long_name": f.metadata.get("help") or key.replace("_", " ")}
    if not isinstance(value, str):
        attrs["units"] = f.metadata.get("units", "1")
    return attrs


def _text_filled(var: xr.DataArray) -> xr.DataArray:
    """A text variable with the gaps of an outer join (NaN) as empty strings."""
    return var.copy(data=np.vectorize(lambda s: s if isinstance(s, str) else "", otypes=[object])(var.values))


def collect(study: Study, lazy: bool = True) -> xr.Dataset:
    """All points in one Dataset with the sweep axes as dimensions (dask-backed if ``lazy``).

    Zipped axes become one dimension indexed 0..n-1 with each zipped key as a coordinate along it.
    Points of different sizes are aligned by an outer join on their coordinates (a dimension without one is
    indexed 0..n-1), NaN (numbers) or "" (text) where a point has no such entry. Missing, failed or incomplete points
    (see the module docstring; a :class:`StudyWarning` names each incomplete file) are NaN and listed in
    ``attrs["missing_points"]``. Each point's provenance stays in the variables ``point`` (its file name) and
    ``point_attrs`` (its file's attributes as JSON: configuration, versions, hashes).
    """
    points = study.points()
    found, missing = {}, []
    for p in points:
        f = study.point_path(p)
        if not f.exists():
            missing.append(p.name)
            continue
        ds, problem = _verified(f, p.config_sha256)
        if problem is not None:
            warnings.warn(f"{problem}; left out ('pyosc study run' redoes it)", StudyWarning, stacklevel=2)
            missing.append(p.name)
            continue
        if lazy:
            ds = xr.open_dataset(f, engine="netcdf4", chunks={})
        attrs = decode_attrs(ds.attrs)
        positions = {d: np.arange(n) for d, n in ds.sizes.items() if d not in ds.indexes}  # to align on
        found[p.name] = ds.assign_coords(positions).assign(
            wall_time_s=attrs.get("point_seconds", np.nan), point_attrs=json.dumps(plain(attrs), sort_keys=True))
    if not found:
        raise InvalidInputError(f"study {study.name!r} has no completed points in {study.points_dir}; run "
                                "'pyosc study run' first")
    template = next(iter(found.values()))
    blank = template.copy()
    for name, var in template.data_vars.items():
        if var.dtype.kind in "biuf":
            blank[name] = var.astype(float) * np.nan
        elif var.dtype.kind in "OUS":
            blank[name] = xr.full_like(var, "", dtype=object)

    def labelled(p: Point) -> xr.Dataset:
        ds = found.get(p.name, blank).assign(point=p.name)
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
    for name, var in combined.variables.items():
        if var.dtype.kind in "OU" and name not in combined.indexes:
            combined[name] = _text_filled(combined[name])
    for name, var in template.variables.items():
        if name in combined.variables:
            combined[name].attrs = dict(var.attrs)
    combined.wall_time_s.attrs.update({"long_name": "time inside the task run of each point", "units": "s"})
    combined.point.attrs.update({"long_name": "file name of the point in the study's points folder"})
    combined.point_attrs.attrs.update({"long_name": "attributes of the point's file (JSON): its configuration, "
                                                    "software versions and hashes; empty where the point is missing"})
    config_cls = study.task.load().Config
    for axis in study.axes:
        for i, key in enumerate(axis.keys):
            combined[key].attrs = _key_attrs(config_cls, key, axis.values[0][i])
        if len(axis.keys) > 1:
            combined[axis.dim].attrs = {"long_name": f"setting of {', '.join(axis.keys)} (index)", "units": "1"}
    combined.attrs = {"title": f"parameter study {study.name} ({study.task.name})", "study": study.name,
                      "task": study.task.name, "description": study.description,
                      "config": {"base": study.base, "axes": {a.dim: {"keys": list(a.keys), "values": [list(v) for v in a.values]}
                                                               for a in study.axes}},
                      "missing_points": missing, "n_points": len(found)}
    return combined


def collect_to_file(study: Study) -> Path:
    """Collect and write ``<output>/<name>.nc`` (points are read one by one into memory: opening the
    same NetCDF files lazily twice in one process has crashed netCDF4/HDF5 here)."""
    return write_netcdf(collect(study, lazy=False), study.output / f"{study.name}.nc")
