"""Every kind of NetCDF file pyosc writes passes the CF checker (cfchecker, CF-1.8) with no error and no warning;
attributes are JSON, never Python reprs; files get the user's umask; the data checksum catches changed files.

The kinds: each trainer's history (XY equilibrium propagation, ONN memory, optomechanical adjoint, scattering) and a
collected study. The checker needs the udunits2 library (Debian: libudunits2-0; `.ci/run` installs it); without it
these checks skip, saying why. The CF tables of standard names, area types and regions are given as empty local
tables: pyosc uses none of them, and the checker would otherwise download them.
"""
import json
import os
import re

import netCDF4
import numpy as np
import pytest
import xarray as xr

from pyosc.errors import InvalidInputError
from pyosc.results import read_netcdf, verify_netcdf, write_checkpoint, write_netcdf

TABLES = {"standard_names": "<standard_name_table><version_number>0</version_number><last_modified>none"
                            "</last_modified></standard_name_table>",
          "area_types": "<area_type_table><version_number>0</version_number><date>none</date></area_type_table>",
          "regions": "<standardized_region_list><version_number>0</version_number><date>none</date>"
                     "</standardized_region_list>"}


def _checker():
    try:
        from cfchecker import cfchecks
    except Exception as e:  # noqa: BLE001 (ImportError, or OSError when udunits2 is missing)
        pytest.skip(f"cfchecker unavailable ({type(e).__name__}: {e}); pip install cfchecker and the udunits2 "
                    "library (Debian: apt-get install libudunits2-0)")
    return cfchecks


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One file of every kind pyosc writes, by kind."""
    from test_loop import history

    from pyosc.data.datasets import get_data_home
    from pyosc.studies import collect_to_file, load_study, run_point

    folder = tmp_path_factory.mktemp("cf")
    out = {"xy": history("xy-ep"), "onn": history("onn-ep"), "optomech": history("optomech-adjoint")}
    if (get_data_home() / "optdigits.tra").exists():  # the task's history, with its configuration
        from pyosc.experiments import scattering_digits

        out["scattering"] = scattering_digits.run(scattering_digits.Config(hidden=3, n_iterations=4, eval_every=2,
                                                                           batch_size=500))
    else:
        out["scattering"] = history("scattering")
    paths = {kind: write_netcdf(ds, folder / f"{kind}.nc") for kind, ds in out.items()}
    # a collected study: the XY shapes of history("xy-ep") (compiled already), a float and an int axis, and
    # points of different sizes are covered by tests/test_studies.py
    study_file = folder / "study.toml"
    study_file.write_text('task = "xy-xor"\n[base]\nn_runs = 3\nn_iterations = 10\neval_every = 4\n'
                          'optimizer = "adam"\n[sweep]\nlearning_rate = [0.05]\nseed = [0, 1]\n')
    study = load_study(study_file)
    for point in study.points():
        assert run_point(study, point).state == "done"
    paths["study"] = collect_to_file(study)
    return paths


KINDS = ["xy", "onn", "optomech", "scattering", "study"]


@pytest.mark.parametrize("kind", KINDS)
def test_cf_checker_finds_no_error_and_no_warning(kind, files, tmp_path):
    cfchecks = _checker()
    tables = {}
    for name, text in TABLES.items():
        tables[name] = tmp_path / f"{name}.xml"
        tables[name].write_text(f'<?xml version="1.0"?>\n{text}\n')
    checker = cfchecks.CFChecker(cfStandardNamesXML=str(tables["standard_names"]),
                                 cfAreaTypesXML=str(tables["area_types"]), cfRegionNamesXML=str(tables["regions"]),
                                 version=cfchecks.CFVersion("1.8"), silent=True)
    checker.checker(str(files[kind]))
    totals = checker.get_total_counts()
    problems = [m for m in checker.all_messages if m.split(":", 1)[0] in ("FATAL", "ERROR", "WARN")]
    assert totals["FATAL"] + totals["ERROR"] + totals["WARN"] == 0, problems
    print(f"cfchecker {kind}: {totals}")


@pytest.mark.parametrize("kind", KINDS)
def test_every_variable_is_described(kind, files):
    """CF-1.8 in the file, a title, a long_name on every variable and valid units on every numeric one."""
    with netCDF4.Dataset(files[kind]) as f:
        assert f.getncattr("Conventions") == "CF-1.8" and f.getncattr("title")
        for name, var in f.variables.items():
            attrs = var.ncattrs()
            assert "long_name" in attrs, f"{kind}: {name} has no long_name"
            if var.dtype != "S1" and var.dtype is not str:
                assert "units" in attrs, f"{kind}: {name} has no units"


def _python_repr(value) -> bool:
    """Whether an attribute value reads as a Python repr rather than plain text, a number or JSON."""
    if not isinstance(value, str):
        return False
    if value.startswith(("{", "[", "(")):
        try:
            json.loads(value)
            return False
        except json.JSONDecodeError:
            return True
    return bool(re.search(r"\barray\(|\bobject at 0x|^[A-Z]\w*\(\w+=|^(True|False|None)$", value))


@pytest.mark.parametrize("kind", KINDS)
def test_attributes_are_json_not_python_reprs(kind, files):
    with netCDF4.Dataset(files[kind]) as f:
        found = {(kind, k) for k in f.ncattrs() if _python_repr(f.getncattr(k))}
        found |= {(kind, f"{v}.{k}") for v, var in f.variables.items() for k in var.ncattrs()
                  if _python_repr(var.getncattr(k))}
    assert not found, found


def test_attributes_are_encoded_as_json(tmp_path):
    ds = xr.Dataset({"x": ("i", np.arange(3.0), {"long_name": "x", "units": "1", "flag": True})},
                    attrs={"config": {"a": np.arange(2), "b": np.float32(1.5), "c": (1, 2), "on": True, "off": None,
                                      "where": tmp_path},
                           "flag": np.bool_(True), "nothing": None, "values": [0.5, 1.5], "names": ["a", "b"]})
    path = write_netcdf(ds, tmp_path / "a.nc")
    with netCDF4.Dataset(path) as f:
        assert json.loads(f.getncattr("config")) == {"a": [0, 1], "b": 1.5, "c": [1, 2], "on": True, "off": None,
                                                     "where": str(tmp_path)}
        assert f.getncattr("flag") == 1 and f.getncattr("nothing") == "null" and f["x"].getncattr("flag") == 1
        assert json.loads(f.getncattr("names")) == ["a", "b"]
        np.testing.assert_array_equal(f.getncattr("values"), [0.5, 1.5])
    assert read_netcdf(path).attrs["config"]["a"] == [0, 1]


def test_files_get_the_users_umask(tmp_path):
    ds = xr.Dataset({"x": ("i", np.arange(3.0), {"long_name": "x", "units": "1"})})
    old = os.umask(0o027)
    try:
        netcdf = write_netcdf(ds, tmp_path / "a.nc")
        checkpoint = tmp_path / "a.ckpt.npz"
        write_checkpoint(checkpoint, {}, {"x": np.arange(3)}, progress=(1, 2), elapsed=1.0)
    finally:
        os.umask(old)
    assert oct(netcdf.stat().st_mode & 0o777) == oct(0o640)
    assert oct(checkpoint.stat().st_mode & 0o777) == oct(0o640)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ckpt.npz", "a.nc"]  # no temporary file left


def test_the_checksum_catches_changed_data(tmp_path):
    ds = xr.Dataset({"x": ("i", np.arange(3.0), {"long_name": "x", "units": "1"}),
                     "role": ("i", np.array(["a", "bb", ""], dtype=object), {"long_name": "role"}),
                     "ok": ("i", np.array([True, False, True]), {"long_name": "ok", "units": "1"})},
                    coords={"i": ("i", np.arange(3), {"long_name": "i", "units": "1"})})
    path = write_netcdf(ds, tmp_path / "a.nc")
    assert verify_netcdf(path).role.values.tolist() == ["a", "bb", ""]
    with netCDF4.Dataset(path, "a") as f:
        f["x"][1] = 5.0
    with pytest.raises(InvalidInputError, match=f"{path} fails its data checksum"):
        verify_netcdf(path)
