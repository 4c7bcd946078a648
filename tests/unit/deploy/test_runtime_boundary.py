"""What ships is what runs: Chalice packages only ``app.py`` and ``chalicelib/``.

These tests read the source (every import, also those inside functions) rather
than importing it, so a lazily imported module outside the package is caught
before it fails in AWS.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from chalicelib.topology import FUNCTION_TIMEOUTS

ROOT = Path(__file__).resolve().parents[3]
NOT_PACKAGED = {"appsync", "devstack", "bench", "tests", "tools"}


def _runtime_distributions() -> set[str]:
    """What a function can import: the packaged requirements and what the Lambda runtime provides (the SDK)."""
    names = set()
    for requirements in ("requirements.txt", "requirements-lambda-runtime.txt"):
        for line in (ROOT / requirements).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line:
                names.add(re.split(r"[=<>\[ ]", line)[0].lower().replace("_", "-"))
    return names | {"chalice"}  # Chalice adds its own runtime module to every package


def _imports(path: Path) -> list[tuple[str, ast.AST]]:
    """(top-level module, node) for every absolute import in the file, ``importlib.import_module("x")`` too.

    A dynamic import whose name is not a string literal cannot be checked, so it is reported as ``?``.
    """
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], node))
        elif isinstance(node, ast.Call) and ast.unparse(node.func) in {"importlib.import_module", "import_module",
                                                                       "__import__"}:
            first = node.args[0] if node.args else None
            literal = isinstance(first, ast.Constant) and isinstance(first.value, str)
            found.append((first.value.split(".")[0] if literal else "?", node))
    return found


def _packaged_files() -> list[Path]:
    return [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]


def _local_stage_block_lines(tree: ast.Module) -> set[int]:
    """Lines of the body (not the ``else``) of app.py's top-level ``if _STAGE == "local" ...:``.

    Only a test that starts with exactly ``_STAGE == "local"`` counts: that body never runs in
    a packaged stage (Chalice sets each stage's ``JUCR_STAGE`` when it loads the app).
    """
    lines: set[int] = set()
    for node in tree.body:
        test = node.test if isinstance(node, ast.If) else None
        first = test.values[0] if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) else test
        if first is not None and ast.unparse(first) == "_STAGE == 'local'":
            for statement in node.body:
                lines |= set(range(statement.lineno, (statement.end_lineno or statement.lineno) + 1))
    return lines


def test_every_import_of_the_package_resolves_inside_it_or_to_a_runtime_requirement():
    runtime = _runtime_distributions()
    owners = packages_distributions()
    local_only = _local_stage_block_lines(ast.parse((ROOT / "app.py").read_text()))
    outside = []
    for path in _packaged_files():
        for module, node in _imports(path):
            if module in {"chalicelib", "app"} or module in sys.stdlib_module_names:
                continue
            if path.name == "app.py" and path.parent == ROOT and node.lineno in local_only:
                continue
            dists = {d.lower().replace("_", "-") for d in owners.get(module, [])}
            if module in NOT_PACKAGED or not dists & runtime:
                outside.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {module}")
    assert outside == []


def test_the_boundary_check_catches_a_lazy_import_of_the_deploy_step(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import importlib\ndef f(name):\n    from appsync.infra import Infra\n"
                      "    importlib.import_module('devstack.run')\n    return importlib.import_module(name)\n")
    assert [module for module, _ in _imports(source)] == ["importlib", "appsync", "devstack", "?"]


def test_only_the_body_of_an_exact_local_stage_test_is_exempt():
    tree = ast.parse("if _STAGE != 'local':\n    import a\nif _STAGE == 'local' and x:\n    import b\n"
                     "else:\n    import c\n")
    assert _local_stage_block_lines(tree) == {4}


def test_every_stage_names_its_stage_so_no_packaged_stage_is_local():
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    for stage, settings in config["stages"].items():
        assert settings.get("environment_variables", {}).get("JUCR_STAGE") == stage


def _project_graph() -> dict[str, set[str]]:
    """Import edges between project modules (app, chalicelib.*, devstack.*, appsync.*), lazy ones included."""
    modules = {"app": ROOT / "app.py"}
    for package in ("chalicelib", "devstack", "appsync"):
        for path in (ROOT / package).rglob("*.py"):
            dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[dotted.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            edges |= {t for t in targets if t in modules}
        graph[name] = edges
    return graph


def test_nothing_app_imports_imports_app_back():
    graph = _project_graph()
    seen, stack = set(), list(graph["app"])
    while stack:
        module = stack.pop()
        if module in seen:
            continue
        seen.add(module)
        stack.extend(graph.get(module, ()))
    assert "app" not in seen


@pytest.mark.parametrize("function", sorted(FUNCTION_TIMEOUTS))
def test_lambda_timeouts_in_chalice_config_match_the_topology(function):
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    declared = config["lambda_functions"].get(function, {}).get("lambda_timeout", config["lambda_timeout"])
    assert declared == FUNCTION_TIMEOUTS[function]
