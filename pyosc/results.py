"""Training histories as ``xarray.Dataset``: CF-1.8 NetCDF writing (atomic, checksummed) and reading; checkpoints.

Every file :func:`write_netcdf` writes declares ``Conventions = "CF-1.8"`` and a ``title``, stores text as
character arrays, gives index coordinates ``long_name`` and ``units = "1"``, and encodes attributes as NetCDF
numbers, strings and 1-D numeric arrays only: dicts and lists (``attrs["config"]``) become JSON strings, which
:func:`read_netcdf` decodes, and booleans become 0/1. It also records ``data_sha256``, a checksum of every variable's
values, which :func:`verify_netcdf` recomputes. Files are written (zlib-compressed) to a temporary name in the same
folder and renamed, so a killed writer never leaves a half-written file under the final name; they get the
permissions of any new file (0666 less the umask).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from pyosc.errors import InvalidInputError

CONVENTIONS = "CF-1.8"
CHECKSUM = "data_sha256"  # the global attribute holding data_checksum()


def provenance() -> dict[str, str]:
    """Versions of pyosc and its numerical stack, for ``Dataset.attrs``."""
    import jax
    import scipy

    import pyosc

    return {"pyosc_version": pyosc.__version__, "jax_version": jax.__version__, "numpy_version": np.__version__,
            "scipy_version": scipy.__version__, "xarray_version": xr.__version__,
            "python_version": platform.python_version()}


def plain(value):
    """``value`` as JSON types: NumPy arrays and scalars as lists and numbers, tuples and sets as lists, paths and
    other objects as strings, dataclasses as dicts."""
    def default(v):
        if isinstance(v, (np.ndarray, np.generic)):
            return v.tolist()
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return dataclasses.asdict(v)
        if isinstance(v, (set, frozenset)):
            return sorted(v, key=str)
        return str(v)

    return json.loads(json.dumps(value, default=default))


def _netcdf_attr(value):
    """An attribute value NetCDF stores as it is: a number, a string or a 1-D numeric array (JSON otherwise)."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (str, int, float, np.integer, np.floating)):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "iuf" and value.size:
        return value
    value = plain(value)
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                 for v in value):
        return np.asarray(value)
    return value if isinstance(value, (str, int, float)) and not isinstance(value, bool) else json.dumps(value)


def _canonical(values: np.ndarray) -> bytes:
    """The bytes a checksum is taken of: text joined, numbers as int64 / float64 / complex128 (NaN canonical)."""
    kind = values.dtype.kind
    if kind in "OUS":
        return "\x1f".join(v.decode() if isinstance(v, bytes) else str(v) for v in values.ravel()).encode()
    if kind in "biu":
        return np.ascontiguousarray(values, dtype=np.int64).tobytes()
    if kind == "c":
        values = np.ascontiguousarray(values, dtype=np.complex128)
        return _canonical(values.real) + _canonical(values.imag)
    if kind == "f":
        values = np.ascontiguousarray(values, dtype=np.float64)
        return np.where(np.isnan(values), np.nan, values).tobytes()
    return np.ascontiguousarray(values).view(np.int64).tobytes()  # datetimes, timedeltas


def data_checksum(ds: xr.Dataset) -> str:
    """SHA-256 of every variable's name, shape and values (attributes left out), the same before writing and after
    reading back."""
    digest = hashlib.sha256()
    for name in sorted(map(str, ds.variables)):
        values = np.asarray(ds[name].values)
        digest.update(f"{name}{values.shape}".encode())
        digest.update(_canonical(values))
    return digest.hexdigest()


def _cf(ds: xr.Dataset) -> tuple[xr.Dataset, dict]:
    """A copy of ``ds`` with CF-1.8 attributes and its NetCDF encoding."""
    out = ds.copy()
    out.attrs = {k: _netcdf_attr(v) for k, v in ds.attrs.items()}
    out.attrs.update(Conventions=CONVENTIONS, title=out.attrs.get("title") or f"pyosc {out.attrs.get('task', 'results')}")
    encoding = {}
    for name, var in out.variables.items():
        attrs = {k: _netcdf_attr(v) for k, v in var.attrs.items()}
        if (name in out.dims and "long_name" not in attrs and var.dtype.kind in "iu"
                and np.array_equal(var.values, np.arange(var.size))):  # an index coordinate 0..n-1
            attrs.update(long_name=f"index along {name}", units="1")
        var.attrs = attrs
        if var.dtype.kind in "OUS":
            encoding[name] = {"dtype": "S1"}  # CF text: character arrays, not variable-length strings
        else:
            numeric = {"zlib": True, "complevel": 4} if var.dtype.kind in "biuf" else {}
            no_fill = {"_FillValue": None} if name in out.coords else {}  # coordinates have no missing values
            if numeric or no_fill:
                encoding[name] = {**numeric, **no_fill}
    out.attrs[CHECKSUM] = data_checksum(out)
    return out, encoding


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_path(path: Path, suffix: str = ".tmp") -> str:
    """A new empty temporary file beside ``path``, unique to this call, named ``.<name>.<random><suffix>``, with the
    permissions of any new file (0666 less the umask); rename it onto ``path`` once written."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    return tmp


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to ``path`` atomically as CF-1.8 NetCDF with its data checksum (see the module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out, encoding = _cf(ds)
    tmp = atomic_path(path)
    try:
        out.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def check_writable(path: str | os.PathLike, *, overwrite: bool = True, what: str = "output",
                   flag: str = "--out") -> Path:
    """Fail early (before a long run) if ``path`` cannot be written: its folder cannot be created or written, ``path``
    is a folder, or (unless ``overwrite``) it exists. Messages call the file ``what``, set by the option ``flag``."""
    path = Path(path)
    if path.is_dir():
        raise InvalidInputError(f"{what} {path} is a folder; give a file name with {flag}")
    if not overwrite and path.exists():
        raise InvalidInputError(f"{what} {path} exists; pass --overwrite to replace it, or choose another {flag}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.unlink(atomic_path(path, ".probe"))
    except OSError as e:
        raise InvalidInputError(f"{what} {path} cannot be written ({e.strerror or e}); choose another {flag}") from None
    return path


def decode_attrs(attrs: Mapping) -> dict:
    """NetCDF attributes as written by :func:`write_netcdf`, with the JSON-encoded dicts and lists decoded."""
    out = dict(attrs)
    for key, value in out.items():
        if isinstance(value, str) and value.startswith(("{", "[")):
            try:
                out[key] = json.loads(value)
            except json.JSONDecodeError:
                pass
    return out


def read_netcdf(path: str | os.PathLike) -> xr.Dataset:
    """Read a file written by :func:`write_netcdf` into memory, decoding the JSON-encoded attributes (dicts and
    lists such as ``attrs["config"]``)."""
    with xr.open_dataset(path, engine="netcdf4") as f:
        ds = f.load()
    ds.attrs = decode_attrs(ds.attrs)
    return ds


def verify_netcdf(path: str | os.PathLike) -> xr.Dataset:
    """:func:`read_netcdf`, raising :class:`InvalidInputError` (naming the file and the fault) if the file cannot be
    read or its data no longer match the checksum recorded when it was written."""
    try:
        ds = read_netcdf(path)
    except Exception as e:  # noqa: BLE001 (netCDF4/HDF5 raise OSError, RuntimeError, ValueError, KeyError...)
        raise InvalidInputError(f"{path} cannot be read ({type(e).__name__}: {e})") from None
    if CHECKSUM not in ds.attrs:
        raise InvalidInputError(f"{path} has no data checksum ({CHECKSUM}): it was not written by this pyosc")
    if data_checksum(ds) != ds.attrs[CHECKSUM]:
        raise InvalidInputError(f"{path} fails its data checksum: its contents changed after it was written")
    return ds


def write_checkpoint(path: str | os.PathLike, meta: dict, arrays: dict[str, np.ndarray], *,
                     progress: tuple[int, int], elapsed: float) -> None:
    """Atomically write a training checkpoint (``.npz``): JSON-able ``meta`` and named arrays
    (``"group/name"`` keys group related arrays; see :func:`checkpoint_group`). ``progress`` = (steps done,
    steps in all) and ``elapsed`` (s of training so far) are stored in ``meta`` for :func:`checkpoint_progress`.
    The temporary file is unique to this call, so two writers never clash."""
    path = Path(path)
    meta = {**meta, "progress": [int(progress[0]), int(progress[1])], "elapsed": float(elapsed)}
    tmp = atomic_path(path)
    try:
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(plain(meta))), **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
