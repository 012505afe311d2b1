import numpy as np
import pytest

from pyosc import topology as T
from pyosc.errors import InvalidInputError


@pytest.mark.parametrize("n, count", [(85, 1596), (139, 7725), (185, 15246), (222, 22831)])
def test_all_to_all_counts_match_table1(n, count):
    assert T.all_to_all(n, 64, 10).n_trainable == count


@pytest.mark.parametrize("hidden, count", [(20, 1540), (100, 7620), (200, 15220), (300, 22820)])
def test_layered_counts_match_table1(hidden, count):
    assert T.layered([64, hidden, 10]).n_trainable == count


def test_roles_and_masks():
    t = T.layered([3, 4, 2])
    assert list(t.input_units) == [0, 1, 2] and list(t.output_units) == [7, 8] and list(t.hidden_units) == [3, 4, 5, 6]
    assert not t.coupling_mask[:3, :3].any() and not t.coupling_mask[3:7, 3:7].any() and not t.coupling_mask[:3, 7:].any()
    assert t.coupling_mask[:3, 3:7].all() and t.coupling_mask[3:7, 7:].all()
    assert T.all_to_all(5, 2, 1).n_trainable == 15


def test_square_lattice_neighbours():
    t = T.square_lattice(3, 4, 1, 1)
    assert t.coupling_mask.sum() == 2 * (3 * 3 + 2 * 4)
    assert t.coupling_mask[0, 1] and t.coupling_mask[0, 4] and not t.coupling_mask[0, 5]
    periodic = T.square_lattice(3, 4, 1, 1, periodic=True)
    assert (periodic.coupling_mask.sum(1) == 4).all()


def test_from_spec():
    assert T.from_spec("layered:64,200,10").n_units == 274
    assert T.from_spec("all-to-all:85", n_inputs=64, n_outputs=10).n_trainable == 1596
    assert T.from_spec("lattice:4x4", n_inputs=2, n_outputs=1).n_units == 16


@pytest.mark.parametrize("spec", ["ring:5", "layered:", "all2all:5", "layered:64,x,10", 5])
def test_unknown_topology_names_raise(spec):
    with pytest.raises(InvalidInputError, match="topology"):
        T.from_spec(spec, n_inputs=2, n_outputs=1)


def test_inconsistent_spec_raises():
    with pytest.raises(InvalidInputError, match="inputs"):
        T.from_spec("layered:3,4,2", n_inputs=64)
    with pytest.raises(InvalidInputError, match="n_outputs"):
        T.all_to_all(5, 4, 2)
    with pytest.raises(InvalidInputError, match="symmetric"):
        T.Topology(np.triu(np.ones((3, 3), bool), 1), 1, 1, "bad")
