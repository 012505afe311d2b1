"""Associative memory: patterns, corruption, Hebbian couplings, EP training against Hebbian, CLI and NetCDF."""
import numpy as np
import pytest

from pyosc.cli import main
from pyosc.data import patterns as memory
from pyosc.errors import InvalidInputError
from pyosc.models import onn
from pyosc.results import read_netcdf, write_netcdf
from pyosc.training.hebbian import hebbian_couplings
from pyosc.training.memory import MemoryEPConfig, evaluate_memory, retrieve, train_memory_ep


def test_patterns_corruption_and_encoding(rng):
    xi = memory.letters("AEIOU")
    assert xi.shape == (5, 25) and set(np.unique(xi)) == {-1.0, 1.0}
    assert len({tuple(r) for r in memory.letters()}) == 26  # all letters distinct
    c = memory.corrupt(xi, 0.2, 7, rng)
    assert c.shape == (5, 7, 25)
    np.testing.assert_array_equal(np.sum(c != xi[:, None, :], axis=-1), 5)  # exactly 20 % of 25 pixels
    phi = memory.to_phases(c)
    assert phi.shape == (5, 7, 26) and np.all(phi[..., 0] == 0)
    np.testing.assert_array_equal(memory.read_out(phi + 1.0), c)  # read relative to the reference
    assert memory.accuracy(c, xi) == 0.0 and memory.accuracy(np.repeat(xi[:, None], 3, 1), xi) == 1.0
    assert memory.overlap(c, xi) == pytest.approx(1 - 2 * 0.2)


def test_hebbian_couplings():
    xi = memory.letters("TEK")
    W = hebbian_couplings(xi)
    np.testing.assert_array_equal(W, W.T)
    assert np.all(np.diag(W) == 0)
    assert W[0, 1] == pytest.approx(np.sum(xi[:, 0] * xi[:, 1]) / 25)


def test_ep_memory_beats_hebbian_small(tmp_path):
    """Three letters (load 0.12): EP from the Hebbian couplings retrieves more of them than Hebbian."""
    xi = memory.letters("TEK")
    H = onn.coupling_function([1.0])
    config = MemoryEPConfig(n_iterations=20, learning_rate=0.02, seed=1)
    ds = train_memory_ep(xi, H, config, progress=False)
    assert int(ds.unconverged.sum()) == 0
    shil = np.r_[0.0, np.full(25, config.shil)]
    heb = onn.make_params(hebbian_couplings(np.concatenate([np.ones((3, 1)), xi], axis=1)), H, shil=shil)
    ep = onn.make_params(ds.W.values, H, shil=shil)
    trials = config.eval_trials  # the shapes of the trainer's own evaluation: no new compilation
    h_acc, _, h_unc = evaluate_memory(heb, xi, 0.2, trials, np.random.default_rng(9))
    e_acc, _, e_unc = evaluate_memory(ep, xi, 0.2, trials, np.random.default_rng(9))
    assert h_unc == 0 and e_unc == 0
    assert e_acc >= h_acc + 0.1, (e_acc, h_acc)
    back = read_netcdf(write_netcdf(ds, tmp_path / "mem.nc"))
    np.testing.assert_array_equal(back.W.values, ds.W.values)
    assert back.attrs["config"]["beta"] == 0.1 and back.accuracy.attrs["units"] == "1"


def test_cli_onn_memory(tmp_path, capsys):
    out = tmp_path / "cli.nc"
    # the shapes of test_ep_memory_beats_hebbian_small (3 letters, 4 and 50 trials): no new compilation
    assert main(["train", "onn-memory", "--letters", "KET", "--n-iterations", "2", "--out", str(out), "--quiet"]) == 0
    assert "exact retrieval: EP" in capsys.readouterr().out
    ds = read_netcdf(out)
    assert ds.attrs["letters"] == "KET" and ds.sizes["iteration"] == 2
    assert main(["train", "onn-memory", "--letters", "t3", "--out", str(out)]) == 2


def test_bad_memory_inputs_raise(rng):
    with pytest.raises(InvalidInputError, match="capital letters"):
        memory.letters("a")
    with pytest.raises(InvalidInputError, match="corruption"):
        memory.corrupt(memory.letters("A"), 0.7, 2, rng)
    with pytest.raises(InvalidInputError, match="patterns"):
        hebbian_couplings(np.array([[1.0, 0.5]]))
    with pytest.raises(InvalidInputError, match="init"):
        MemoryEPConfig(init="zeros")
    with pytest.raises(InvalidInputError, match="beta"):
        MemoryEPConfig(beta=0.0)
    with pytest.raises(InvalidInputError, match="corrupted must have shape"):
        retrieve(onn.make_params(np.zeros((26, 26)), onn.coupling_function()), np.ones((2, 25)), rng)
