"""The package is what runs: the functions see only the unzipped package and the runtime client."""

from __future__ import annotations

import json
import subprocess
import zipfile

import pytest

from devstack import lambdas
from tests.package.conftest import ALL_FUNCTIONS

pytestmark = pytest.mark.xdist_group("package")

# Only the local stack or the checkout need these; none may be in what Lambda runs.
NOT_IN_PACKAGE = ("appsync/", "devstack/", "tests/", "bench/", "tools/", "moto/", "pytest/", "chalice/cli/")


def test_the_package_declares_the_eleven_functions(package):
    assert set(package["specs"]) == ALL_FUNCTIONS
    for spec in package["specs"].values():
        assert spec.handler == f"app.{spec.name}"
        assert spec.environment["JUCR_STAGE"] == "prod"


def test_the_zip_holds_the_runtime_and_nothing_of_the_checkout(package):
    names = zipfile.ZipFile(package["zip"]).namelist()
    assert "app.py" in names and "chalicelib/topology.py" in names
    assert not [n for n in names if n.startswith(NOT_IN_PACKAGE)]


def test_the_function_interpreter_sees_only_the_package_and_the_runtime_client(functions, package):
    """Same interpreter, flags and environment as the emulator gives awslambdaric."""
    emulator = functions.emulator("authorizer")
    probe = """
import importlib, json, sys
found = {}
for name in ("pymongo", "awslambdaric", "chalicelib.topology", "appsync", "devstack", "moto", "pytest", "graphql"):
    try:
        found[name] = getattr(importlib.import_module(name), "__file__", None)
    except ImportError:
        found[name] = None
print(json.dumps({"path": sys.path, "found": found, "prefix": sys.prefix}))
"""
    out = subprocess.run([lambdas.base_python(), "-S", "-c", probe], cwd=package["task_root"], env=emulator.env,
                         capture_output=True, text=True, check=True, timeout=60)
    seen = json.loads(out.stdout)
    task_root, runtime = str(package["task_root"]), str(lambdas.RUNTIME_DIR)
    assert seen["found"]["pymongo"].startswith(task_root + "/")
    assert seen["found"]["chalicelib.topology"].startswith(task_root + "/")
    assert seen["found"]["awslambdaric"].startswith(runtime + "/")
    for absent in ("appsync", "devstack", "moto", "pytest"):
        assert seen["found"][absent] is None, f"{absent} importable by a function"
    stdlib = seen["prefix"] + "/lib/"
    assert all(p in ("", task_root, runtime) or p.startswith(stdlib) for p in seen["path"]), seen["path"]
    assert not [p for p in seen["path"] if "site-packages" in p]
