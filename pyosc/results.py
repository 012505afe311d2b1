"""Training histories as ``xarray.Dataset``: NetCDF writing (atomic) and reading.

NetCDF attributes hold only numbers, strings and 1-D arrays, so :func:`write_netcdf` stores the full
run configuration (``attrs["config"]``, a dict) as a JSON string and :func:`read_netcdf` restores it.
Files are written (zlib-compressed) to a temporary name in the same folder and renamed, so a killed
writer never leaves a half-written file under the final name.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

from pyosc.errors import InvalidInputError


def provenance() -> dict[str, str]:
    """Versions of pyosc and its numerical stack, for ``Dataset.attrs``."""
    import jax
    import scipy

    import pyosc

    return {"pyosc_version": pyosc.__version__, "jax_version": jax.__version__, "numpy_version": np.__version__,
            "scipy_version": scipy.__version__, "xarray_version": xr.__version__,
            "python_version": platform.python_version()}


def _netcdf_attr(value):
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if value is None:
        return "none"
    if isinstance(value, (dict, list, tuple)) and not (
            isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value)):
        return json.dumps(value, default=str)
    return value


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to ``path`` atomically; dict/None/bool attributes are encoded for NetCDF."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = ds.copy()
    out.attrs = {k: _netcdf_attr(v) for k, v in ds.attrs.items()}
    if "config" in ds.attrs:
        out.attrs["config"] = json.dumps(ds.attrs["config"], default=str)
    for name in out.variables:
        out[name].attrs = {k: _netcdf_attr(v) for k, v in out[name].attrs.items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        encoding = {name: {"zlib": True, "complevel": 4} for name, var in out.data_vars.items() if var.dtype.kind in "biuf"}
        out.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early (before a long run) if ``path`` cannot be written: its folder cannot be created or written, or
    ``path`` is a folder."""
    path = Path(path)
    if path.is_dir():
        raise InvalidInputError(f"output {path} is a folder; give a file name (e.g. {path / 'history.nc'})")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise InvalidInputError(f"output {path} cannot be written ({e.strerror or e}); choose another --out") from None
    return path


def read_netcdf(path: str | os.PathLike) -> xr.Dataset:
    """Read a file written by :func:`write_netcdf` into memory, decoding the JSON-encoded attributes (dicts and
    lists such as ``attrs["config"]``)."""
    with xr.open_dataset(path, engine="netcdf4") as f:
        ds = f.load()
    for key, value in ds.attrs.items():
        if isinstance(value, str) and value[:1] in "{[":
            try:
                ds.attrs[key] = json.loads(value)
            except json.JSONDecodeError:
                pass
    return ds


def write_checkpoint(path: str | os.PathLike, meta: dict, arrays: dict[str, np.ndarray], *,
                     progress: tuple[int, int], elapsed: float) -> None:
    """Atomically write a training checkpoint (``.npz``): JSON-able ``meta`` and named arrays
    (``"group/name"`` keys group related arrays; see :func:`checkpoint_group`). ``progress`` = (steps done,
    steps in all) and ``elapsed`` (s of training so far) are stored in ``meta`` for :func:`checkpoint_progress`."""
    path = Path(path)
    meta = {**meta, "progress": [int(progress[0]), int(progress[1])], "elapsed": float(elapsed)}
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, meta=np.array(json.dumps(meta, default=str)), **arrays)
    os.replace(tmp, path)


def checkpoint_progress(path: str | os.PathLike) -> tuple[tuple[int, int] | None, float]:
    """((steps done, steps in all), seconds of training so far) of a checkpoint, reading only its metadata;
    the steps are None in a checkpoint written before they were recorded."""
    with np.load(path) as f:
        meta = json.loads(str(f["meta"]))
    return (tuple(meta["progress"]) if "progress" in meta else None), float(meta["elapsed"])


def read_checkpoint(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` of a file written by :func:`write_checkpoint`, arrays in memory."""
    with np.load(path) as f:
        return json.loads(str(f["meta"])), {k: f[k] for k in f.files if k != "meta"}


def checkpoint_group(arrays: dict[str, np.ndarray], group: str) -> dict[str, np.ndarray]:
    """The arrays stored under ``"group/name"``, keyed by name."""
    prefix = group + "/"
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
