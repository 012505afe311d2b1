"""MNIST (LeCun, Cortes & Burges): loader for the four original idx files, splits and phase encoding.

Files. The four files as distributed, each plain or gzipped (``name`` or ``name.gz``; the plain one
is read when both exist), in the folder ``mnist/`` of the data home: the ``data_home`` argument,
else ``$PYOSC_DATA_HOME``, else ``~/pyosc_data`` (see :func:`pyosc.data.datasets.get_data_home`)::

    <data home>/mnist/train-images-idx3-ubyte[.gz]   60,000 images 28x28, grey levels 0..255
    <data home>/mnist/train-labels-idx1-ubyte[.gz]   60,000 labels 0..9
    <data home>/mnist/t10k-images-idx3-ubyte[.gz]    10,000 images
    <data home>/mnist/t10k-labels-idx1-ubyte[.gz]    10,000 labels

The idx format is parsed here with NumPy and checked: the magic number (2051 for images, 2049 for
labels: unsigned bytes, 3 or 1 dimensions), the dimensions (28x28 images), that the file holds exactly
the bytes its header promises (a truncated or padded file is an error, not a silent short read), labels
in 0..9, and as many labels as images.

Fallback. When a subset's files are absent and ``download=True``, the data are fetched with
``sklearn.datasets.fetch_openml("mnist_784", version=1)`` (the same 70,000 images in the original
order: the first 60,000 are the training file, the last 10,000 the test file) and, where the folder is
writable, saved as the missing idx files (``.gz``) so that later calls read them locally. When that
fails too, :class:`pyosc.errors.DataNotFoundError` says both ways to get the data.

Splits. :func:`mnist_split` takes the validation set (for model selection) as the LAST ``validation``
images of the training file, so the remaining training images are the first ``60000 - validation``,
and the test file is kept untouched for the final figure.

Phase encoding (XY / phase-oscillator networks). The convention of the 8x8 digits
(:func:`pyosc.data.datasets.encode_pixels`, the scaled linear map of arXiv 2402.08579) carried over
to grey levels 0..255: pixel ``p`` -> phase ``pi (p / 255 - 1/2)`` in ``[-pi/2, pi/2]``, so background
(0) is the "False" phase ``-pi/2`` and full ink (255) the "True" phase ``+pi/2``; the image is flattened
row by row to 784 inputs. Class targets are :func:`pyosc.data.datasets.encode_classes` (``+pi/2`` on the
true class, ``-pi/2`` on the others).

The module imports NumPy only (scikit-learn lazily, for the fallback); it must not import JAX.
"""
from __future__ import annotations

import gzip
import operator
import os
import warnings
import zlib
from pathlib import Path

import numpy as np

from pyosc.data.datasets import PhaseDataset, encode_classes, get_data_home
from pyosc.errors import DataNotFoundError, InvalidInputError, as_real_array

__all__ = ["IMAGE_SHAPE", "MNIST_FILES", "PIXEL_MAX", "encode_mnist_pixels", "load_mnist", "mnist_dir",
           "mnist_phase_datasets", "mnist_split", "read_idx", "write_idx"]

MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (n, rows, cols)
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (n,)
IMAGE_SHAPE = (28, 28)
PIXEL_MAX = 255.0
N_CLASSES = 10
OPENML_NAME = "mnist_784"
OPENML_SPLIT = 60_000  # fetch_openml("mnist_784"): the first 60,000 rows are the training file
_REDOWNLOAD = ("re-download the original file (plain or .gz), or delete it so that load_mnist falls back to "
               f"sklearn.datasets.fetch_openml({OPENML_NAME!r})")


def mnist_dir(data_home: str | os.PathLike | None = None) -> Path:
    """The folder searched for the MNIST files: ``<data home>/mnist``."""
    return get_data_home(data_home) / "mnist"


# --- the idx format -----------------------------------------------------------------------------

def read_idx(path: str | os.PathLike, magic: int, item_shape: tuple[int, ...] = ()) -> np.ndarray:
    """Read an idx file of unsigned bytes (gzipped when the name ends in ``.gz``) as a uint8 array.

    Checks that the big-endian int32 magic number equals ``magic`` (``0x0800 + number of dimensions``),
    that the dimensions after the first equal ``item_shape``, and that the file holds exactly the
    ``header + prod(dims)`` bytes its header promises. Raises :class:`InvalidInputError` naming the file.
    """
    path = Path(path)
    ndim = magic & 0xFF
    if magic >> 8 != 0x08 or ndim < 1:
        raise InvalidInputError(f"magic must be 0x0800 + number of dimensions (unsigned-byte idx), got {magic}")
    if len(item_shape) != ndim - 1:
        raise InvalidInputError(f"item_shape must have {ndim - 1} entries for magic {magic}, got {item_shape}")
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise InvalidInputError(f"{path} is not a complete gzip file ({exc}): it is truncated or corrupt; "
                                    f"{_REDOWNLOAD}") from None
    header = 4 + 4 * ndim
    if len(data) < 4:
        raise InvalidInputError(f"{path} is truncated: {len(data)} bytes, too short for an idx header; {_REDOWNLOAD}")
    got = int.from_bytes(data[:4], "big")
    if got != magic:
        hint = " (it looks gzip-compressed: give it the .gz suffix)" if data[:2] == b"\x1f\x8b" else ""
        raise InvalidInputError(f"{path} has magic number {got}, expected {magic} (an idx file of unsigned bytes "
                                f"with {ndim} dimension(s)){hint}: it is not this MNIST file or it is corrupt; "
                                f"{_REDOWNLOAD}")
    if len(data) < header:
        raise InvalidInputError(f"{path} is truncated: {len(data)} bytes, shorter than its {header}-byte header; "
                                f"{_REDOWNLOAD}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    if dims[0] < 0 or dims[1:] != tuple(item_shape):
        raise InvalidInputError(f"{path} has dimensions {dims}, expected (n, {', '.join(map(str, item_shape))}) "
                                f"with n >= 0: it is corrupt or not this MNIST file; {_REDOWNLOAD}")
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else f"{len(data) - expected} bytes too long (corrupt)"
        raise InvalidInputError(f"{path} holds {len(data)} bytes but its header (dimensions {dims}) promises "
                                f"{expected}: the file is {what}; {_REDOWNLOAD}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write a uint8 array as an idx file (gzipped when the name ends in ``.gz``), atomically."""
    path = Path(path)
    arr = np.ascontiguousarray(array)
    if arr.dtype != np.uint8 or arr.ndim < 1:
        raise InvalidInputError(f"array must be a uint8 array with at least one dimension, got {arr.dtype} "
                                f"with shape {arr.shape}")
    raw = (0x0800 + arr.ndim).to_bytes(4, "big") + np.asarray(arr.shape, dtype=">i4").tobytes() + arr.tobytes()
    if path.name.endswith(".gz"):
        raw = gzip.compress(raw, compresslevel=6)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(raw)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _find(directory: Path, name: str) -> Path | None:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path, IMAGES_MAGIC, IMAGE_SHAPE)
    labels = read_idx(labels_path, LABELS_MAGIC).astype(np.int64)
    if labels.size and labels.max() >= N_CLASSES:
        raise InvalidInputError(f"{labels_path} holds labels up to {labels.max()}, expected 0..{N_CLASSES - 1}: "
                                f"it is corrupt or not an MNIST label file; {_REDOWNLOAD}")
    if len(images) != len(labels):
        raise InvalidInputError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} "
                                f"labels: the two files do not belong together; {_REDOWNLOAD}")
    return images, labels


# --- the fetch_openml fallback ----------------------------------------------------------------

def _fetch_openml_mnist() -> tuple[np.ndarray, np.ndarray]:
    """``fetch_openml("mnist_784")`` as (70000, 784) pixels and (70000,) labels; patched out in tests."""
    from sklearn.datasets import fetch_openml

    # liac-arff needs no pandas; cache=False as the result is saved as idx files in the data home
    bunch = fetch_openml(OPENML_NAME, version=1, as_frame=False, parser="liac-arff", cache=False)
    return bunch.data, bunch.target


def _download(directory: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fetch MNIST from OpenML, check it, save the missing idx files (best effort); return both subsets."""
    pixels, target = _fetch_openml_mnist()
    pixels, target = np.asarray(pixels), np.asarray(target)
    n_total = OPENML_SPLIT + 10_000
    if pixels.shape != (n_total, IMAGE_SHAPE[0] * IMAGE_SHAPE[1]) or target.shape != (n_total,):
        raise ValueError(f"expected {n_total} x 784 pixels and {n_total} labels, got {pixels.shape} and "
                         f"{target.shape}")
    if pixels.dtype != np.uint8 and not (np.all(pixels >= 0) and np.all(pixels <= PIXEL_MAX)
                                         and np.all(pixels == np.round(pixels))):
        raise ValueError("pixels are not integers in 0..255")
    labels = target.astype(np.int64)
    if labels.min() < 0 or labels.max() >= N_CLASSES:
        raise ValueError(f"labels outside 0..{N_CLASSES - 1}")
    images = pixels.astype(np.uint8).reshape(n_total, *IMAGE_SHAPE)
    out = {"train": (images[:OPENML_SPLIT], labels[:OPENML_SPLIT]),
           "test": (images[OPENML_SPLIT:], labels[OPENML_SPLIT:])}
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for subset, (img_name, lab_name) in MNIST_FILES.items():
            for name, arr in ((img_name, out[subset][0]), (lab_name, out[subset][1].astype(np.uint8))):
                if _find(directory, name) is None:
                    write_idx(directory / f"{name}.gz", arr)
    except OSError as exc:
        warnings.warn(f"MNIST was downloaded but could not be saved in {directory} ({exc}); it will be "
                      "downloaded again next time", stacklevel=3)
    return out


def _not_found(directory: Path, missing: list[str], reason: str) -> DataNotFoundError:
    files = ", ".join(n for pair in MNIST_FILES.values() for n in pair)
    return DataNotFoundError(
        f"MNIST files {missing} not found in {directory}, and {reason}. Get the data one of two ways: "
        f"(1) put the four original idx files ({files}; plain or .gz) in {directory}, or choose another data "
        "home, whose mnist/ folder is searched, with --data-home, the PYOSC_DATA_HOME environment variable or "
        f"data_home=; or (2) allow network access so that sklearn.datasets.fetch_openml({OPENML_NAME!r}) can "
        "download them (load_mnist(..., download=True)).")


# --- public API ---------------------------------------------------------------------------------

def load_mnist(subset: str = "train", data_home: str | os.PathLike | None = None, *,
               download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """MNIST ``subset`` ``"train"`` (60,000 images) or ``"test"`` (10,000), in the files' order.

    Returns ``(images, labels)``: ``images`` uint8 (n, 28, 28), grey levels 0..255 (0 = background),
    ``labels`` int64 (n,) in 0..9. Reads ``<data home>/mnist/`` (see the module docstring); when the
    subset's files are absent and ``download`` is true, falls back to ``fetch_openml("mnist_784")``.

    Raises :class:`InvalidInputError` for a bad ``subset`` or a truncated / corrupt file (naming it),
    and :class:`DataNotFoundError` (a ``FileNotFoundError``) when the files are absent and the download
    is disabled or fails.
    """
    if subset not in MNIST_FILES:
        raise InvalidInputError(f"subset must be 'train' or 'test', got {subset!r}")
    directory = mnist_dir(data_home)
    names = MNIST_FILES[subset]
    paths = [_find(directory, n) for n in names]
    if all(p is not None for p in paths):
        return _read_pair(*paths)
    missing = [n for n, p in zip(names, paths) if p is None]
    if not download:
        raise _not_found(directory, missing, "the download fallback is disabled (download=False)")
    try:
        data = _download(directory)
    except Exception as exc:  # any failure (no network, no sklearn, bad data) means: not found
        raise _not_found(directory, missing, f"fetch_openml({OPENML_NAME!r}) failed ({type(exc).__name__}: "
                                             f"{exc})") from exc
    return data[subset]


def mnist_split(validation: int = 10_000, data_home: str | os.PathLike | None = None, *, download: bool = True
                ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((train_images, train_labels), (val_images, val_labels), (test_images, test_labels))``.

    The validation set is the LAST ``validation`` images of the training file (for model selection),
    the training set the first ``60000 - validation``; the test set is the whole test file. Arrays as
    in :func:`load_mnist` (train and validation are views of one array). ``validation=0`` gives an
    empty validation set.
    """
    try:
        validation = operator.index(validation)
    except TypeError:
        raise InvalidInputError(f"validation must be an integer, got {validation!r}") from None
    if validation < 0:
        raise InvalidInputError(f"validation must be >= 0, got {validation}")
    train = load_mnist("train", data_home, download=download)
    n = len(train[1])
    if not 0 <= validation < n:
        raise InvalidInputError(f"validation must lie in 0..{n - 1} (the training file holds {n} images), "
                                f"got {validation}")
    cut = n - validation
    test = load_mnist("test", data_home, download=download)
    return (train[0][:cut], train[1][:cut]), (train[0][cut:], train[1][cut:]), test


def encode_mnist_pixels(pixels) -> np.ndarray:
    """Grey levels 0..255 -> phases ``pi (p / 255 - 1/2)`` in ``[-pi/2, pi/2]``, float64 (n, 784).

    ``pixels``: (n, 28, 28) images or (n, 784) rows; images are flattened row by row. 0 maps exactly
    to ``-pi/2`` and 255 to ``+pi/2``.
    """
    n_pixels = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
    raw = np.asarray(pixels)
    if raw.dtype == np.uint8 and raw.ndim in (2, 3):  # the loader's images: one table look-up, no checks needed
        p = raw
    else:
        p = as_real_array("pixels", raw, ndim=(2, 3))
    if p.shape[1:] not in (IMAGE_SHAPE, (n_pixels,)):
        raise InvalidInputError(f"pixels must have shape (n, 28, 28) or (n, 784), got {p.shape}")
    p = p.reshape(len(p), n_pixels)
    if p.dtype == np.uint8:
        return _PHASE_OF_LEVEL[p]
    if p.size and (p.min() < 0 or p.max() > PIXEL_MAX):
        raise InvalidInputError(f"pixels must lie in [0, {PIXEL_MAX:g}], got range [{p.min()}, {p.max()}]")
    x = p / PIXEL_MAX  # new array: never writes into the caller's (possibly float64) input
    x -= 0.5
    x *= np.pi
    return x


_PHASE_OF_LEVEL = np.pi * (np.arange(256) / PIXEL_MAX - 0.5)  # the same arithmetic as the general path


def deform_images(rows: np.ndarray, angles: np.ndarray, scales: np.ndarray, shifts: np.ndarray,
                  fill: float) -> np.ndarray:
    """Images ``rows`` (n, 784), each rotated by ``angles[i]`` (radians, counter-clockwise as displayed) and scaled by
    ``scales[i]`` about the image centre, then moved by ``shifts[i]`` = (down, right) pixels; bilinear interpolation
    (exact for integer shifts alone), ``fill`` outside the original image (for phase-encoded images: -pi/2, the
    background). Phases interpolate like the grey levels they encode (the encoding is linear)."""
    from scipy import ndimage  # 0.3 s to import: only when images are deformed

    n = rows.shape[0]
    angles, scales, shifts = (np.asarray(a, dtype=float) for a in (angles, scales, shifts))
    if angles.shape != (n,) or scales.shape != (n,) or shifts.shape != (n, 2):
        raise InvalidInputError(f"angles and scales must have shape ({n},) and shifts ({n}, 2), got "
                                f"{angles.shape}, {scales.shape}, {shifts.shape}")
    if not (np.all(np.isfinite(angles)) and np.all(np.isfinite(shifts)) and np.all(scales > 0)):
        raise InvalidInputError("angles and shifts must be finite and scales positive")
    centre = (np.array(IMAGE_SHAPE) - 1) / 2
    out = np.empty_like(rows)
    for i, image in enumerate(rows.reshape(n, *IMAGE_SHAPE)):
        c, s = np.cos(angles[i]), np.sin(angles[i])
        inverse = np.array([[c, s], [-s, c]]) / scales[i]  # output (row, col) -> input (row, col)
        offset = centre - inverse @ (centre + shifts[i])
        out[i] = ndimage.affine_transform(image, inverse, offset, order=1, mode="constant", cval=fill).ravel()
    return out


def mnist_phase_datasets(validation: int = 10_000, data_home: str | os.PathLike | None = None,
                         n_train: int | None = None, *, download: bool = True
                         ) -> tuple[PhaseDataset, PhaseDataset, PhaseDataset]:
    """MNIST as ``(train, validation, test)`` :class:`PhaseDataset` s for the XY networks.

    Split as in :func:`mnist_split`; ``n_train`` keeps only the first ``n_train`` training images
    (default: all ``60000 - validation``; the training file is not grouped by class, so a prefix is
    close to balanced). ``x``: (n, 784) float64 phases from :func:`encode_mnist_pixels`; ``y``: (n, 10)
    float64 targets from :func:`encode_classes`; ``labels``: (n,) int64. Names ``"mnist-train"``,
    ``"mnist-validation"``, ``"mnist-test"``.
    """
    (xtr, ltr), (xva, lva), (xte, lte) = mnist_split(validation, data_home, download=download)
    if n_train is not None:
        try:
            n_train = operator.index(n_train)
        except TypeError:
            raise InvalidInputError(f"n_train must be an integer or None, got {n_train!r}") from None
        if not 1 <= n_train <= len(ltr):
            raise InvalidInputError(f"n_train must lie in 1..{len(ltr)} (training images after the validation "
                                    f"split), got {n_train}")
        xtr, ltr = xtr[:n_train], ltr[:n_train]

    def make(images, labels, name):
        return PhaseDataset(encode_mnist_pixels(images), encode_classes(labels, N_CLASSES), labels.copy(), name)

    return make(xtr, ltr, "mnist-train"), make(xva, lva, "mnist-validation"), make(xte, lte, "mnist-test")
