import os
import signal
from pathlib import Path

import numpy as np
import pytest

import pyosc.models  # noqa: F401  (switches JAX to float64)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if "PYOSC_DATA_HOME" not in os.environ and SHARED_DATA.is_dir():
    os.environ["PYOSC_DATA_HOME"] = str(SHARED_DATA)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def interrupt_at():
    """``interrupt_at(k)``: a progress callback that sends this process SIGINT (Ctrl-C) after iteration k."""
    def make(k: int):
        def progress(done, total, metrics):
            if done == k:
                os.kill(os.getpid(), signal.SIGINT)

        return progress

    return make
