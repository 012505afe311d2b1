"""Optimizers: one implementation for NamedTuples and dicts, per-parameter step factors, Adam's closed form."""
from typing import NamedTuple

import numpy as np
import pytest

from pyosc.errors import InvalidInputError
from pyosc.training.optimizers import Adam, make_optimizer


class Pair(NamedTuple):
    a: np.ndarray
    b: np.ndarray


def test_sgd_and_adam_agree_across_collections():
    rng = np.random.default_rng(0)
    p = Pair(rng.normal(size=(3, 4)), rng.normal(size=3))
    grads = [Pair(rng.normal(size=(3, 4)), rng.normal(size=3)) for _ in range(4)]
    for name in ("sgd", "adam"):
        opt = make_optimizer(name, 0.1, {"b": 3.0})
        pt, st = p, opt.init(p)
        pd, sd = p._asdict(), opt.init(p._asdict())
        for g in grads:
            pt, st = opt.update(pt, g, st)
            pd, sd = opt.update(pd, g._asdict(), sd)
        assert isinstance(pt, Pair) and isinstance(pd, dict)
        for k in Pair._fields:
            np.testing.assert_allclose(getattr(pt, k), pd[k], rtol=0, atol=0)


def test_adam_first_step_is_signed_learning_rate_times_scale():
    # After one step, m_hat = g and v_hat = g^2, so the step is lr * scale * sign(g) (up to eps).
    opt = Adam(0.01, lr_scale={"b": 2.0})
    p = Pair(np.zeros(5), np.zeros(5))
    g = Pair(np.array([1.0, -2.0, 3.0, -4.0, 0.5]), np.array([0.1, -0.1, 7.0, -7.0, 1.0]))
    new, (t, _m, _v) = opt.update(p, g, opt.init(p))
    assert t == 1
    np.testing.assert_allclose(new.a, -0.01 * np.sign(g.a), rtol=1e-6)
    np.testing.assert_allclose(new.b, -0.02 * np.sign(g.b), rtol=1e-6)


@pytest.mark.parametrize("args", [("rmsprop", 0.1), ("adam", -1.0), ("sgd", 0.1, {"a": 0.0})])
def test_bad_optimizer_settings_raise(args):
    with pytest.raises(InvalidInputError):
        make_optimizer(*args)
