"""The training loop every trainer shares.

A :class:`Trainer` knows one algorithm: how to take a step, how to evaluate, and how to write its whole state
into (and read it back from) JSON metadata plus named arrays. :func:`run` owns everything else:

* the schedule: iterations ``0 .. n_iterations - 1``; evaluations before the update of the iterations in
  ``trainer.evaluations`` (an iteration number ``k`` means "after k updates"; ``n_iterations`` means the end);
* progress: a callback ``progress(done, total, metrics)``, called with ``done`` = the first iteration and no
  metrics before the first step (a progress bar then says "compiling": the first step traces and compiles the
  JAX programs) and after every :meth:`Trainer.advance` (one iteration, or a compiled chunk of them);
* the NaN guard: parameters that become NaN or infinite stop the run with an error naming the iteration;
* checkpoints: with a ``checkpoint`` path the state is saved there every ``checkpoint_seconds`` and when the run
  is interrupted; a run started with an existing checkpoint resumes from it (the result equals an uninterrupted
  run) if the checkpoint was written with the same configuration, and is refused otherwise
  (:class:`CheckpointMismatchError`, naming the keys that differ; an unreadable file raises
  :class:`CorruptCheckpointError`). Inside :func:`recording`, the configuration also holds the task's full
  settings (the CLI and studies record the experiment's ``Config``, which decides more than the trainer sees, e.g.
  the data); :func:`set_aside` renames a checkpoint that must not be resumed, keeping it;
* Ctrl-C: the first SIGINT lets the current iteration finish, saves the checkpoint and raises
  :class:`TrainingInterrupted` (the CLI prints where the checkpoint is and exits with status 130); a second
  SIGINT stops at once.

Seed streams: a trainer draws its training randomness from ``default_rng(seed)`` and its evaluations from
``default_rng([seed, 1])`` (:func:`seed_streams`), so evaluations never change the training trajectory.
"""
from __future__ import annotations

import contextvars
import json
import os
import signal
import threading
import time
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from pyosc.errors import InvalidInputError, PyoscError
from pyosc.results import read_checkpoint, write_checkpoint

Progress = Callable[[int, int, Mapping[str, float]], None]


class TrainingInterrupted(PyoscError):
    """Training stopped on request (SIGINT) after ``iteration`` iterations; the state is in ``checkpoint``."""

    def __init__(self, iteration: int, total: int, checkpoint: Path | None):
        self.iteration, self.total, self.checkpoint = iteration, total, checkpoint
        where = (f"checkpoint saved to {checkpoint}; rerun the same command to resume" if checkpoint
                 else "no checkpoint was requested, so nothing was saved")
        super().__init__(f"interrupted after {iteration} of {total} iterations; {where}")


class CheckpointError(InvalidInputError):
    """A checkpoint that must not be resumed; ``path`` is the file. The message says what to do."""

    def __init__(self, path: Path, message: str):
        self.path = path
        super().__init__(message)


class CorruptCheckpointError(CheckpointError):
    """The checkpoint cannot be read: truncated, corrupt, or not a checkpoint."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint was written by another trainer or with other settings."""


def set_aside(path: str | os.PathLike, why: str) -> Path:
    """Rename ``path`` to ``<path>.<why>-<date-time>`` (never overwriting) so that it is kept but no longer used;
    returns the new path."""
    path = Path(path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside, n = path.with_name(f"{path.name}.{why}-{stamp}"), 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.{why}-{stamp}-{n}")
    os.replace(path, aside)
    return aside


_RECORDED: contextvars.ContextVar[dict | None] = contextvars.ContextVar("pyosc_recorded", default=None)


@contextmanager
def recording(**settings) -> Iterator[None]:
    """Runs started inside also record ``settings`` (e.g. ``task=..., config=...``: a task's full configuration) in
    their checkpoints under ``"context"`` and refuse a checkpoint recorded with other ones. A checkpoint written
    without them (through the Python API) is compared on the trainer's settings only."""
    token = _RECORDED.set(as_json(settings))
    try:
        yield
    finally:
        _RECORDED.reset(token)


class Trainer(ABC):
    """One training algorithm, driven by :func:`run`. Subclasses set ``name`` (shown by progress bars),
    ``n_iterations`` and ``evaluations`` (see :func:`evaluation_iterations`)."""

    name: str
    n_iterations: int
    evaluations: list[int]

    @abstractmethod
    def step(self, iteration: int) -> dict[str, float]:
        """One update; returns scalar metrics for the progress display."""

    def advance(self, first: int, stop: int) -> tuple[int, dict[str, float]]:
        """Train from iteration ``first`` on, at most up to ``stop`` (exclusive); returns the next iteration and the
        metrics of the last one. One :meth:`step` here; trainers that compile many iterations into one program
        (:class:`pyosc.training.ep.EPTrainer` with ``scan``) take more."""
        return first + 1, self.step(first)

    def evaluate(self, index: int, iteration: int) -> dict[str, float]:
        """The ``index``-th evaluation, before the update of ``iteration``; returns scalar metrics."""
        return {}

    @abstractmethod
    def parameters_finite(self) -> bool:
        """False once a parameter is NaN or infinite."""

    @abstractmethod
    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Everything needed to go on: JSON-able metadata and named arrays."""

    @abstractmethod
    def restore(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        """Inverse of :meth:`state`."""


def evaluation_iterations(n_iterations: int, every: int, *, at_start: bool = True) -> list[int]:
    """Every ``every`` iterations from 0 (or from ``every`` when not ``at_start``), always ending with
    ``n_iterations``; none when ``every`` is 0."""
    if not every:
        return []
    its = list(range(0 if at_start else every, n_iterations + 1, every))
    if not its or its[-1] != n_iterations:
        its.append(n_iterations)
    return its


def history_coords(n_runs: int | None, n_iterations: int, evaluations: list[int]) -> dict:
    """The coordinates every training history shares: ``run``, ``iteration`` and ``evaluation`` (the number of
    updates before each evaluation)."""
    coords = {"iteration": ("iteration", np.arange(n_iterations),
                            {"long_name": "training iteration (0-based)", "units": "1"}),
              "evaluation": ("evaluation", np.asarray(evaluations, dtype=np.int64),
                             {"long_name": "iteration before whose update the evaluation was made", "units": "1"})}
    if n_runs is not None:
        coords["run"] = ("run", np.arange(n_runs), {"long_name": "independent training run", "units": "1"})
    return coords


def seed_streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The training and evaluation random generators of ``seed``."""
    return np.random.default_rng(seed), np.random.default_rng([seed, 1])


def check_count(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int if it is an integer >= ``minimum`` (bools and non-integral floats are refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidInputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def as_json(value):
    """``value`` as plain JSON types (tuples become lists, NumPy scalars numbers)."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def _differences(stored: Mapping, current: Mapping, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(stored) | set(current)):
        a, b = stored.get(key, "<unset>"), current.get(key, "<unset>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key} ({a!r} there, {b!r} here)")
    return out


_FRESH = "move it away to start fresh (pyosc train: --restart sets it aside and starts fresh)"


def _load(path: Path, trainer: Trainer, config: dict) -> tuple[int, float]:
    try:
        meta, arrays = read_checkpoint(path)
        if not isinstance(meta, dict):
            raise TypeError("its metadata is not a JSON object")
    except (OSError, ValueError, TypeError, KeyError, EOFError, zipfile.BadZipFile) as e:  # truncated, corrupt or foreign
        raise CorruptCheckpointError(path, f"checkpoint {path} cannot be read ({type(e).__name__}: {e}): it is "
                                           f"corrupt or not a checkpoint; {_FRESH}") from None
    if meta.get("trainer") != trainer.name or "config" not in meta:
        raise CheckpointMismatchError(path, f"checkpoint {path} was written by another trainer "
                                            f"({meta.get('trainer')!r}, here {trainer.name!r}); {_FRESH}")
    diff = _differences(meta["config"], config)
    stored, current = meta.get("context"), _RECORDED.get()
    if stored is not None and current is not None:  # the task's settings, less those the trainer's already named
        named = {d.split(" ", 1)[0].rsplit(".", 1)[-1] for d in diff}
        diff += [d for d in _differences(stored, current) if d.split(" ", 1)[0].rsplit(".", 1)[-1] not in named]
    if diff:
        raise CheckpointMismatchError(path, f"checkpoint {path} was written with other settings: {'; '.join(diff)}. "
                                            f"Use the same settings to resume, or {_FRESH}")
    try:
        trainer.restore(meta["trainer_state"], arrays)
        return int(meta["next_iteration"]), float(meta["elapsed"])
    except InvalidInputError as e:  # the trainer's own check, e.g. of the parameters' shapes
        raise CheckpointMismatchError(path, f"checkpoint {path} does not fit this run ({e}); {_FRESH}") from None
    except (KeyError, ValueError, TypeError) as e:
        raise CorruptCheckpointError(path, f"checkpoint {path} is incomplete ({type(e).__name__}: {e}); "
                                           f"{_FRESH}") from None


def _save(path: Path, trainer: Trainer, config: dict, next_iteration: int, elapsed: float) -> None:
    meta, arrays = trainer.state()
    record = {"trainer": trainer.name, "config": config, "next_iteration": next_iteration, "trainer_state": meta}
    if _RECORDED.get() is not None:
        record["context"] = _RECORDED.get()
    write_checkpoint(path, record, arrays, progress=(next_iteration, trainer.n_iterations), elapsed=elapsed)


@contextmanager
def _deferred_sigint() -> Iterator[list[bool]]:
    """While active, the first SIGINT only sets the flag it yields; a second raises KeyboardInterrupt at once.
    Outside the main thread (where signals cannot be handled) the flag never rises."""
    flag = [False]
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag[0]:
            raise KeyboardInterrupt
        flag[0] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def run(trainer: Trainer, config: Mapping, *, checkpoint: str | os.PathLike | None = None,
        checkpoint_seconds: float = 120.0, progress: Progress | None = None) -> float:
    """Train to the end (see the module docstring); returns the training time in seconds (wall clock, including
    the time before a resume). ``config`` is the full configuration, recorded in and compared with checkpoints."""
    config = as_json(dict(config))
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.is_dir():
        raise InvalidInputError(f"checkpoint {path} is a directory; give a file path (e.g. run.ckpt.npz)")
    first, elapsed0 = _load(path, trainer, config) if path is not None and path.exists() else (0, 0.0)
    n = trainer.n_iterations
    start, last_save = time.perf_counter() - elapsed0, time.perf_counter()
    with _deferred_sigint() as stop:
        if progress is not None:
            progress(first, n, {})
        it = first
        while it < n:
            metrics = {}
            if it in trainer.evaluations:
                metrics.update(trainer.evaluate(trainer.evaluations.index(it), it))
            following = min([e for e in trainer.evaluations if e > it] + [n])
            done, step_metrics = trainer.advance(it, following)
            metrics.update(step_metrics)
            if not trainer.parameters_finite():
                raise InvalidInputError(f"parameters became NaN or infinite at iteration {done - 1} or before; "
                                        "lower the learning rate")
            if progress is not None:
                progress(done, n, metrics)
            if stop[0]:
                if path is not None:
                    _save(path, trainer, config, done, time.perf_counter() - start)
                raise TrainingInterrupted(done, n, path)
            if path is not None and time.perf_counter() - last_save >= checkpoint_seconds and done < n:
                _save(path, trainer, config, done, time.perf_counter() - start)
                last_save = time.perf_counter()
            it = done
        if trainer.evaluations and trainer.evaluations[-1] == n:
            trainer.evaluate(len(trainer.evaluations) - 1, n)
    return time.perf_counter() - start


class ProgressBar:
    """A tqdm progress bar as a :data:`Progress` callback. It says "compiling" until the first iteration of this
    process has finished, then is replaced by a bar whose clock starts there, so that the rate and ETA leave the
    compilation (and, after a resume, the iterations done before) out."""

    def __init__(self, description: str, show: Callable[[Mapping[str, float]], dict[str, str]] | None = None):
        self.description, self.show, self.bar = description, show, None

    def __call__(self, done: int, total: int, metrics: Mapping[str, float]) -> None:
        from tqdm.auto import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, initial=done, desc=f"{self.description} (compiling)", unit="it")
            self.first = done
            return
        if self.bar.n == self.first:  # the first iteration (and its compilation) is done
            self.bar.leave = False
            self.bar.close()
            self.bar = tqdm(total=total, initial=done, desc=self.description, unit="it")
        self.bar.update(done - self.bar.n)
        if metrics and self.show is not None:
            self.bar.set_postfix(self.show(metrics), refresh=False)
        if done == total:
            self.bar.close()


def as_progress(progress: bool | Progress | None, description: str, show=None) -> Progress | None:
    """``True``: a :class:`ProgressBar`; ``False``/``None``: no progress; a callable is used as it is."""
    if progress is True:
        return ProgressBar(description, show)
    return progress or None
