"""The engine conformance suite (:mod:`pyosc.testing`) for every registered engine, the engine registry and
``pyosc info``."""
import argparse
import subprocess
import sys

import numpy as np
import pytest

from pyosc.cli import info
from pyosc.engines import get_engine, list_engines
from pyosc.engines.base import Equilibrium
from pyosc.engines.jax.engine import JaxEngine
from pyosc.errors import EngineUnavailableError, InvalidInputError
from pyosc.testing import check_engine, engine_checks

ENGINES = [pytest.param(name, id=name, marks=() if status.available else
                        pytest.mark.skip(reason=f"engine {name!r} unavailable: {status.reason}"))
           for name, status in list_engines().items()]
NO_JULIA = pytest.mark.skipif(list_engines()["julia"].available,
                              reason="Julia is available here: the no-Julia behaviour cannot be observed")
CHECKS = [pytest.param(check, id=check.__name__.removeprefix("check_")) for _, check in engine_checks()]


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("engine", ENGINES)
def test_engine_conforms(engine, check):
    check(get_engine(engine))


class _Overconfident(JaxEngine):
    """Flags every relaxed state converged: the stability condition removed from ``converged``."""

    def _relax(self, *args):
        eq = super()._relax(*args)
        return Equilibrium(eq.phi, np.ones_like(eq.converged), eq.force, eq.work)


def test_check_engine_names_the_failed_check():
    with pytest.raises(AssertionError, match="fails the check 'converged states are stable equilibria'.*saddle"):
        check_engine(_Overconfident())


@NO_JULIA
def test_julia_slot_is_unavailable_with_install_hint():
    status = list_engines()["julia"]
    assert not status.available and "pip install 'pyosc[julia]'" in status.reason
    with pytest.raises(EngineUnavailableError, match=r"pip install 'pyosc\[julia\]' then pyosc install-julia"):
        get_engine("julia")


def test_get_engine_default_environment_and_unknown_names(monkeypatch):
    monkeypatch.delenv("PYOSC_ENGINE", raising=False)
    engine = get_engine()
    assert engine.name == "jax" and get_engine(engine) is engine
    monkeypatch.setenv("PYOSC_ENGINE", "julia")
    if list_engines()["julia"].available:
        assert get_engine().name == "julia"
    else:
        with pytest.raises(EngineUnavailableError):
            get_engine()
    monkeypatch.setenv("PYOSC_ENGINE", "fortran")
    with pytest.raises(InvalidInputError, match=r"'fortran' \(from \$PYOSC_ENGINE\).*'jax', 'julia'"):
        get_engine()


def test_list_engines_and_info_report(capsys):
    engines = list_engines()
    assert set(engines) >= {"jax", "julia"}
    jax = engines["jax"]
    assert jax.available and jax.reason == "" and {"jax", "diffrax"} <= set(jax.versions)
    assert info.run(argparse.Namespace()) == 0
    out = capsys.readouterr().out
    assert out.startswith("pyosc ") and "data home: " in out
    assert f"jax: available - {jax.description} (jax {jax.versions['jax']}" in out
    if not engines["julia"].available:
        assert "julia: unavailable" in out and "why: " in out and "pip install 'pyosc[julia]'" in out


def test_engine_registry_and_info_import_no_jax():
    code = "import sys, pyosc.engines, pyosc.cli.info; pyosc.cli.info.report(); print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"
