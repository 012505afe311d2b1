"""MNIST loader: the shared idx files, corrupt files, the missing-data error, splits and the phase encoding."""
import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from pyosc.data import mnist
from pyosc.data.mnist import (
    deform_images,
    encode_mnist_pixels,
    load_mnist,
    mnist_phase_datasets,
    mnist_split,
    read_idx,
    write_idx,
)
from pyosc.errors import DataNotFoundError, InvalidInputError, PyoscError

DATA_HOME = Path(os.environ.get("PYOSC_DATA_HOME", Path(__file__).resolve().parents[2] / "shared" / "data"))
FILES = [n for pair in mnist.MNIST_FILES.values() for n in pair]
TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def require_mnist():
    missing = [n for n in FILES if mnist._find(DATA_HOME / "mnist", n) is None]
    if missing:
        pytest.skip(f"MNIST files {missing} (plain or .gz) not found in {DATA_HOME / 'mnist'} "
                    "(set PYOSC_DATA_HOME to the shared data folder)")


@pytest.fixture(scope="module")
def shared_train():
    require_mnist()
    return load_mnist("train", DATA_HOME, download=False)


@pytest.fixture(scope="module")
def shared_test():
    require_mnist()
    return load_mnist("test", DATA_HOME, download=False)


@pytest.fixture
def no_network(monkeypatch):
    """Make the fetch_openml fallback fail as without network; returns the list of calls."""
    calls = []

    def fail():
        calls.append(1)
        raise OSError("network is unreachable")

    monkeypatch.setattr(mnist, "_fetch_openml_mnist", fail)
    return calls


def tiny_home(root, n_train=100, n_test=10):
    """A data home with small, valid MNIST files (pixel [0, 0] and the label count the image)."""
    (root / "mnist").mkdir()
    for subset, n in (("train", n_train), ("test", n_test)):
        images = np.zeros((n, 28, 28), np.uint8)
        images[:, 0, 0] = np.arange(n)
        write_idx(root / "mnist" / f"{mnist.MNIST_FILES[subset][0]}.gz", images)
        write_idx(root / "mnist" / mnist.MNIST_FILES[subset][1], (np.arange(n) % 10).astype(np.uint8))
    return root


def raw_idx(name):
    """The decompressed bytes of a shared file."""
    return gzip.decompress((DATA_HOME / "mnist" / f"{name}.gz").read_bytes())


def test_shared_files_shapes_dtypes_and_label_counts(shared_train, shared_test):
    (xtr, ytr), (xte, yte) = shared_train, shared_test
    assert xtr.shape == (60000, 28, 28) and xte.shape == (10000, 28, 28)
    assert xtr.dtype == xte.dtype == np.uint8
    assert ytr.shape == (60000,) and yte.shape == (10000,)
    assert ytr.dtype == yte.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(yte, minlength=10), TEST_LABEL_COUNTS)
    assert np.bincount(ytr).sum() == 60000 and ytr.min() == 0 and ytr.max() == 9
    assert xte.max() == 255 and xte.min() == 0
    assert xtr.flags.writeable  # a copy, not a read-only view of the file's bytes


def test_plain_and_gzipped_files_read_the_same(tmp_path, shared_test):
    for name in mnist.MNIST_FILES["test"]:
        (tmp_path / "mnist").mkdir(exist_ok=True)
        (tmp_path / "mnist" / name).write_bytes(raw_idx(name))
    x, y = load_mnist("test", tmp_path, download=False)
    np.testing.assert_array_equal(x, shared_test[0])
    np.testing.assert_array_equal(y, shared_test[1])
    # a round trip through write_idx gives back the bytes of the original file
    write_idx(tmp_path / "copy.gz", shared_test[1].astype(np.uint8))
    assert gzip.decompress((tmp_path / "copy.gz").read_bytes()) == raw_idx("t10k-labels-idx1-ubyte")


def test_truncated_files_are_rejected_naming_the_file(tmp_path):
    require_mnist()
    name = "t10k-images-idx3-ubyte"
    plain = tmp_path / name
    plain.write_bytes(raw_idx(name)[:100_000])
    with pytest.raises(InvalidInputError, match=f"{plain}.*promises 7840016.*truncated.*re-download"):
        read_idx(plain, mnist.IMAGES_MAGIC, (28, 28))
    gz = tmp_path / f"{name}.gz"
    gz.write_bytes((DATA_HOME / "mnist" / f"{name}.gz").read_bytes()[:50_000])
    with pytest.raises(InvalidInputError, match=f"{gz}.*truncated or corrupt.*re-download"):
        read_idx(gz, mnist.IMAGES_MAGIC, (28, 28))
    # through load_mnist: the truncated gzip file is found in the data home and named in the error
    (tmp_path / "mnist").mkdir()
    shutil.move(gz, tmp_path / "mnist" / gz.name)
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte").write_bytes(raw_idx("t10k-labels-idx1-ubyte"))
    with pytest.raises(InvalidInputError, match=f"{tmp_path / 'mnist' / gz.name}"):
        load_mnist("test", tmp_path, download=False)
    extra = tmp_path / "long"
    extra.write_bytes(raw_idx("t10k-labels-idx1-ubyte") + b"\0")
    with pytest.raises(InvalidInputError, match="1 bytes too long"):
        read_idx(extra, mnist.LABELS_MAGIC)


def test_wrong_magic_dims_labels_and_counts_are_rejected(tmp_path):
    d = tmp_path / "mnist"
    d.mkdir()
    labels = np.arange(10, dtype=np.uint8)
    write_idx(d / "t10k-images-idx3-ubyte", labels)  # a label file (magic 2049) named as images
    write_idx(d / "t10k-labels-idx1-ubyte", labels)
    with pytest.raises(InvalidInputError, match="t10k-images-idx3-ubyte has magic number 2049, expected 2051"):
        load_mnist("test", tmp_path, download=False)
    gz_named_plain = tmp_path / "images"
    gz_named_plain.write_bytes(gzip.compress(b"\0\0\x08\x03"))
    with pytest.raises(InvalidInputError, match="looks gzip-compressed"):
        read_idx(gz_named_plain, mnist.IMAGES_MAGIC, (28, 28))
    write_idx(d / "t10k-images-idx3-ubyte", np.zeros((10, 28, 27), np.uint8))
    with pytest.raises(InvalidInputError, match=r"dimensions \(10, 28, 27\), expected \(n, 28, 28\)"):
        load_mnist("test", tmp_path, download=False)
    write_idx(d / "t10k-images-idx3-ubyte", np.zeros((10, 28, 28), np.uint8))
    write_idx(d / "t10k-labels-idx1-ubyte", np.full(10, 10, np.uint8))
    with pytest.raises(InvalidInputError, match="labels up to 10, expected 0..9"):
        load_mnist("test", tmp_path, download=False)
    write_idx(d / "t10k-labels-idx1-ubyte", labels[:9])
    with pytest.raises(InvalidInputError, match="10 images but .* 9 labels"):
        load_mnist("test", tmp_path, download=False)
    with pytest.raises(InvalidInputError, match="subset must be"):
        load_mnist("validation", tmp_path)


def test_missing_files_error_names_both_ways(tmp_path, no_network):
    with pytest.raises(DataNotFoundError) as info:
        load_mnist("train", tmp_path, download=False)
    assert not no_network  # download=False never tries the network
    msg = str(info.value)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, PyoscError)
    for part in [str(tmp_path / "mnist"), "plain or .gz", "--data-home", "PYOSC_DATA_HOME", "data_home=",
                 "fetch_openml('mnist_784')", "network", "download=False", *FILES]:
        assert part in msg, part
    with pytest.raises(DataNotFoundError, match="failed .OSError: network is unreachable.*PYOSC_DATA_HOME"):
        load_mnist("test", tmp_path)
    assert no_network == [1]


def test_download_fallback_splits_openml_and_saves_idx_files(tmp_path, monkeypatch):
    pixels = np.zeros((70000, 784), np.uint8)  # fetch_openml gives float64; uint8 keeps the test fast
    pixels[:, 0] = np.arange(70000) % 256  # marks each row
    target = np.array([str(i % 10) for i in range(70000)], dtype=object)  # OpenML's labels are strings
    monkeypatch.setattr(mnist, "_fetch_openml_mnist", lambda: (pixels, target))
    x, y = load_mnist("test", tmp_path)
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(x[:, 0, 0], np.arange(60000, 70000) % 256)  # the last 10,000 rows
    np.testing.assert_array_equal(y, np.arange(60000, 70000) % 10)
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(f"{n}.gz" for n in FILES)
    monkeypatch.setattr(mnist, "_fetch_openml_mnist", lambda: pytest.fail("the saved files must be read"))
    xtr, ytr = load_mnist("train", tmp_path)
    np.testing.assert_array_equal(xtr[:, 0, 0], np.arange(60000) % 256)
    np.testing.assert_array_equal(ytr, np.arange(60000) % 10)
    # unexpected data from the download is a failed download, reported with both ways
    monkeypatch.setattr(mnist, "_fetch_openml_mnist", lambda: (np.full((5, 784), 0.5), np.zeros(5)))
    with pytest.raises(DataNotFoundError, match="expected 70000 x 784.*PYOSC_DATA_HOME"):
        load_mnist("test", tmp_path / "elsewhere")


def test_validation_split_is_the_last_training_images(shared_train, shared_test):
    (xtr, ytr), (xva, yva), (xte, yte) = mnist_split(10_000, DATA_HOME, download=False)
    assert len(ytr) == 50_000 and len(yva) == 10_000 and len(yte) == 10_000
    np.testing.assert_array_equal(xva, shared_train[0][-10_000:])
    np.testing.assert_array_equal(yva, shared_train[1][-10_000:])
    np.testing.assert_array_equal(xtr, shared_train[0][:50_000])
    np.testing.assert_array_equal(xte, shared_test[0])


def test_split_sizes_and_bad_arguments(tmp_path):
    home = tiny_home(tmp_path)
    (xtr, ytr), (xva, yva), (xte, yte) = mnist_split(30, home, download=False)
    assert xtr.shape == (70, 28, 28) and ytr.shape == (70,) and xte.shape == (10, 28, 28)
    np.testing.assert_array_equal(xtr[:, 0, 0], np.arange(70))
    np.testing.assert_array_equal(xva[:, 0, 0], np.arange(70, 100))
    np.testing.assert_array_equal(yva, np.arange(70, 100) % 10)
    assert len(yte) == 10
    _, (xva0, yva0), _ = mnist_split(0, home, download=False)
    assert xva0.shape == (0, 28, 28) and yva0.shape == (0,)
    for bad, match in [(100, r"0\.\.99"), (-1, ">= 0"), (1.5, "integer"), ("10", "integer")]:
        with pytest.raises(InvalidInputError, match=f"validation must.*{match}"):
            mnist_split(bad, home, download=False)
    tr, va, _ = mnist_phase_datasets(0, home, download=False)
    assert tr.x.shape == (100, 784) and va.x.shape == (0, 784) and va.y.shape == (0, 10)
    for bad in (0, 101, 2.0):
        with pytest.raises(InvalidInputError, match="n_train must"):
            mnist_phase_datasets(0, home, n_train=bad, download=False)


def test_phase_encoding_range_and_datasets(shared_train):
    x = encode_mnist_pixels(np.array([[[0] * 28] * 27 + [[255] * 28]]))
    assert x.shape == (1, 784) and x.dtype == np.float64
    assert x[0, 0] == -np.pi / 2 and x[0, -1] == np.pi / 2
    np.testing.assert_allclose(encode_mnist_pixels(np.full((1, 784), 127.5)), 0.0, atol=1e-15)
    levels = np.arange(256).repeat(4)[:784][None]
    np.testing.assert_array_equal(encode_mnist_pixels(levels.astype(np.uint8)), encode_mnist_pixels(levels))
    for bad, match in [(np.full((1, 784), 256), "pixels must lie"), (np.zeros((1, 783)), "shape"),
                       (np.full((1, 784), np.nan), "NaN")]:
        with pytest.raises(InvalidInputError, match=match):
            encode_mnist_pixels(bad)
    tr, va, te = mnist_phase_datasets(10_000, DATA_HOME, n_train=1000, download=False)
    assert (tr.name, va.name, te.name) == ("mnist-train", "mnist-validation", "mnist-test")
    assert tr.x.shape == (1000, 784) and va.x.shape == (10_000, 784) and te.x.shape == (10_000, 784)
    for ds in (tr, va, te):
        assert ds.x.dtype == ds.y.dtype == np.float64 and ds.labels.dtype == np.int64
        assert ds.x.min() >= -np.pi / 2 and ds.x.max() <= np.pi / 2
        assert ds.y.shape == (len(ds.labels), 10)
        np.testing.assert_array_equal(np.argmax(ds.y, axis=1), ds.labels)
        assert set(np.unique(ds.y)) == {-np.pi / 2, np.pi / 2}
    np.testing.assert_array_equal(tr.x, encode_mnist_pixels(shared_train[0][:1000]))
    np.testing.assert_array_equal(va.labels, shared_train[1][-10_000:])
    np.testing.assert_allclose(tr.x[0].reshape(28, 28), np.pi * (shared_train[0][0] / 255 - 0.5), rtol=0, atol=1e-15)


def test_translated_images_move_and_fill_with_background():
    x = np.full((3, 784), -np.pi / 2)
    x[:, 28 * 5 + 7] = 1.0  # a bright pixel at row 5, column 7
    x[:, 0] = 0.5  # and one in the corner
    moved = deform_images(x, np.zeros(3), np.ones(3), np.array([[2, -3], [0, 0], [-5, 1]]), -np.pi / 2)
    moved = moved.reshape(3, 28, 28)
    assert moved[0, 7, 4] == 1.0  # 2 rows down, 3 columns left
    assert moved[2, 0, 8] == 1.0  # 5 rows up, 1 column right
    np.testing.assert_array_equal(moved[1].ravel(), x[1])
    assert np.sum(moved == 1.0) == 3 and np.sum(moved == 0.5) == 1  # only the unmoved image keeps its corner pixel
    assert np.sum(moved == -np.pi / 2) == 3 * 784 - 4  # the uncovered pixels are background
    with pytest.raises(InvalidInputError, match="shifts"):
        deform_images(x, np.zeros(3), np.ones(3), np.zeros((3, 3)), 0.0)
    from pyosc.experiments import mnist as task

    with pytest.raises(InvalidInputError, match="shift"):
        task.Config(shift=9)


def test_deformed_images_rotate_scale_and_move_about_the_centre(rng):
    x = rng.uniform(-np.pi / 2, np.pi / 2, (3, 784))
    images = x.reshape(3, 28, 28)
    none, quarter = np.zeros(3), np.full(3, np.pi / 2)
    np.testing.assert_array_equal(deform_images(x, none, np.ones(3), np.zeros((3, 2)), 0.0), x)
    turned = deform_images(x, quarter, np.ones(3), np.zeros((3, 2)), 0.0).reshape(3, 28, 28)
    np.testing.assert_allclose(turned, np.rot90(images, 1, axes=(1, 2)), atol=1e-12)  # counter-clockwise
    small = deform_images(x, none, np.full(3, 1 / 3), np.zeros((3, 2)), -np.pi / 2).reshape(3, 28, 28)
    np.testing.assert_allclose(small[:, 9:19, 9:19], images[:, ::3, ::3], atol=1e-12)  # pixel o <- 3 o - 27
    small[:, 9:19, 9:19] = -np.pi / 2
    assert np.all(small == -np.pi / 2)  # background around the shrunk image
    with pytest.raises(InvalidInputError, match="scales positive"):
        deform_images(x, none, np.zeros(3), np.zeros((3, 2)), 0.0)
    from pyosc.experiments import mnist as task

    with pytest.raises(InvalidInputError, match="rotate"):
        task.Config(rotate=90.0)


def test_a_small_mnist_subset_trains_above_chance(tmp_path):
    """xy-mnist on 1,000 training images, [784, 64, 10], 2 epochs: the test accuracy at the best validation epoch
    is above 50 % (chance: 10 %), and the history holds the per-epoch curves; a second run starts from its final
    parameters (``init_from``; or from them with a fabrication spread, ``init_spread``), and a narrower network refuses
    to."""
    from dataclasses import replace

    from pyosc.experiments import mnist as experiment
    from pyosc.results import CHECKSUM, verify_netcdf, write_netcdf

    require_mnist()
    config = experiment.Config(hidden="64", n_train=1000, n_epochs=2, batch_size=20, learning_rate=0.002, beta=1.0,
                               n_eval=500, method="continuation")  # the nudge and relaxation of the MNIST runs
    ds = experiment.run(config)
    assert ds.validation_accuracy.dims == ("epoch",) and ds.sizes["epoch"] == 2
    assert ds.attrs["test_accuracy_at_best_validation"] > 0.5, ds.test_accuracy.values
    assert int(ds.unconverged.sum()) == 0
    assert ds.test_unconverged.dims == ("epoch",)
    assert int(ds.validation_unconverged.sum() + ds.test_unconverged.sum()) == 0
    params = experiment.final_parameters(ds)  # the dense couplings, rebuilt from the stored pairs
    topo = config.network()
    assert ds.sizes["pair"] == 784 * 64 + 64 * 10 and np.all(params["W"] == params["W"].T)
    assert np.all(params["W"][~topo.coupling_mask] == 0) and np.count_nonzero(params["W"]) == 2 * ds.sizes["pair"]
    path = tmp_path / "h64.nc"
    write_netcdf(ds, path)
    fine = experiment.run(replace(config, n_train=100, n_epochs=1, learning_rate=1e-9, init_from=str(path)))
    assert fine.attrs["initial_parameters_data_sha256"] == verify_netcdf(path).attrs[CHECKSUM]
    for name, value in experiment.final_parameters(fine).items():  # one Adam step of 1e-9 from the stored ones
        np.testing.assert_allclose(value, params[name], rtol=0, atol=1e-8, err_msg=name)
    chip, _ = experiment.initial_parameters(replace(config, init_from=str(path), init_spread=0.1))  # in situ start
    coupled = params["W"] != 0
    assert 0.09 < np.std(chip.W[coupled] / params["W"][coupled]) < 0.11 and np.array_equal(chip.psi, params["psi"])
    with pytest.raises(InvalidInputError, match="init_from .* cannot grow layered:784,64,10 into layered:784,16,10"):
        experiment.run(replace(config, hidden="16", init_from=str(path)))
