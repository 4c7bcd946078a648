"""Domains meet only through events, contracts and each other's published modules.

Every module under ``chalicelib/`` is parsed (not imported): its imports, at any depth
(inside functions too), and the module names given to ``importlib.import_module`` /
``__import__``. A module of domain X may import from domain Y only the package itself
(its ``PUBLISHED`` declaration) and the modules Y lists in ``PUBLISHED``; the shared
layers import no domain at all, except the composition roots that wire them. And a
collection belongs to one domain: its name appears as a string literal nowhere else.
The checker is tested on small sources first, so the rule on the real tree can fail.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3] / "chalicelib"
DOMAINS = ("auth", "billing", "ocm", "dlq")
# Layers every domain may use; they know no domain.
SHARED = ("contracts", "events", "store", "observability", "config", "topology", "cli_exits", "timestamps",
          "resolvers")
# Composition roots: they build each domain's ports, the CLI and the stage's settings (every domain's
# section, chalicelib.sections), so they may import any domain.
COMPOSERS = ("chalicelib.bootstrap", "chalicelib.__main__", "chalicelib.sections")
_DYNAMIC = ("import_module", "__import__")


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. chalicelib.dlq.reconciler
    tree: ast.Module
    is_package: bool

    @property
    def top(self) -> str:
        return self.name.split(".")[1] if "." in self.name else ""


def parse(name: str, source: str, is_package: bool = False) -> Module:
    return Module(name, ast.parse(source), is_package)


def tree_modules() -> list[Module]:
    modules = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules.append(parse(name, path.read_text(encoding="utf-8"), is_package))
    return modules


def _is_module(dotted: str) -> bool:
    path = ROOT.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: Module) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in ``module``; ``<dynamic>`` when the name is not a literal."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}") else base
        elif isinstance(node, ast.Call) and _called(node.func) in _DYNAMIC:
            first = node.args[0] if node.args else None
            literal = isinstance(first, ast.Constant) and isinstance(first.value, str)
            yield node.lineno, first.value if literal else "<dynamic>"


def _called(func: ast.expr) -> str | None:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def published(modules: list[Module]) -> dict[str, tuple[str, ...]]:
    """Each domain's ``PUBLISHED`` tuple, read from its ``__init__`` without importing it."""
    found: dict[str, tuple[str, ...]] = {}
    for module in modules:
        if module.is_package and module.name.count(".") == 1 and module.top in DOMAINS:
            for node in module.tree.body:
                if isinstance(node, ast.AnnAssign | ast.Assign):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    if any(isinstance(t, ast.Name) and t.id == "PUBLISHED" for t in targets) and node.value:
                        found[module.top] = tuple(ast.literal_eval(node.value))
    return found


def import_violations(modules: list[Module], declared: dict[str, tuple[str, ...]]) -> list[str]:
    out = []
    for module in modules:
        for line, target in imports_of(module):
            where = f"{module.name}:{line}"
            if target == "<dynamic>":
                out.append(f"{where} imports a module whose name is not a literal (the rule cannot see it)")
                continue
            parts = target.split(".")
            if parts[0] != "chalicelib" or len(parts) < 2 or parts[1] not in DOMAINS or parts[1] == module.top:
                continue
            if module.top not in DOMAINS:
                if module.name not in COMPOSERS:
                    out.append(f"{where} is a shared layer and imports the domain module {target}")
            elif len(parts) > 2 and parts[2] not in declared.get(parts[1], ()):
                out.append(f"{where} imports {target}, which {parts[1]} does not publish "
                           f"(published: {', '.join(declared.get(parts[1], ())) or 'nothing'})")
    return out


def init_violations(modules: list[Module]) -> list[str]:
    """A domain's ``__init__`` imports nothing: importing the package must not hand out its internals."""
    return [f"{m.name}:{node.lineno} imports in a domain's __init__" for m in modules
            if m.is_package and m.name.count(".") == 1 and m.top in DOMAINS
            for node in ast.walk(m.tree) if isinstance(node, ast.Import | ast.ImportFrom)]


def collections_owned(modules: list[Module]) -> dict[str, set[str]]:
    """Per domain, the string constants it uses as collection names: ``db[NAME]`` and ``IndexSpec(NAME, ...)``."""
    owned: dict[str, set[str]] = {domain: set() for domain in DOMAINS}
    for domain in DOMAINS:
        mine = [m for m in modules if m.top == domain]
        constants = {t.id: node.value.value for m in mine for node in m.tree.body if isinstance(node, ast.Assign)
                     and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                     for t in node.targets if isinstance(t, ast.Name)}
        for node in (n for m in mine for n in ast.walk(m.tree)):
            for ref in _collection_refs(node):
                name = ref.id if isinstance(ref, ast.Name) else ref.attr if isinstance(ref, ast.Attribute) else None
                if name in constants:
                    owned[domain].add(constants[name])
    return owned


def _collection_refs(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.Subscript) and (
            (isinstance(node.value, ast.Name) and node.value.id == "db")
            or (isinstance(node.value, ast.Attribute) and node.value.attr == "db")):
        return [node.slice]
    if isinstance(node, ast.Call) and _called(node.func) == "IndexSpec":
        return [*node.args[:1], *(k.value for k in node.keywords if k.arg == "collection")]
    return []


def literal_violations(modules: list[Module], owned: dict[str, set[str]]) -> list[str]:
    """Domain modules only: the shared topology names a queue ``wallets``, which is not billing's collection."""
    owner = {name: domain for domain, names in owned.items() for name in names}
    return [f"{m.name}:{node.lineno} names {owner[node.value]}'s collection {node.value!r}"
            for m in modules for node in ast.walk(m.tree)
            if m.top in DOMAINS and isinstance(node, ast.Constant) and isinstance(node.value, str)
            and node.value in owner and owner[node.value] != m.top]


# --- the checker itself ---------------------------------------------------------------------

DECLARED = {"auth": (), "billing": ("queries",), "ocm": (), "dlq": ()}


@pytest.mark.parametrize("name, source", [
    ("chalicelib.dlq.x", "from chalicelib.billing.repository import INVOICES\n"),
    ("chalicelib.dlq.x", "def f():\n    from chalicelib.billing import repository\n"),
    ("chalicelib.dlq.x", "import chalicelib.ocm.sync\n"),
    ("chalicelib.dlq.x", "import importlib\nimportlib.import_module('chalicelib.auth.tokens')\n"),
    ("chalicelib.dlq.x", "from importlib import import_module\nname = 'x'\nimport_module(name)\n"),
    ("chalicelib.dlq.x", "from ..billing import sessions\n"),
    ("chalicelib.billing.x", "class A:\n    def f(self):\n        __import__('chalicelib.dlq.reconciler')\n"),
    ("chalicelib.events.x", "from chalicelib.auth.tokens import verify_access_token\n"),
])
def test_the_checker_catches_an_import_of_another_domains_internals(name, source):
    assert len(import_violations([parse(name, source)], DECLARED)) == 1


@pytest.mark.parametrize("name, source", [
    ("chalicelib.dlq.x", "from chalicelib.billing.queries import InvoiceState, invoice_state\n"),
    ("chalicelib.dlq.x", "from chalicelib.billing import queries\nfrom chalicelib.billing import PUBLISHED\n"),
    ("chalicelib.dlq.x", "from . import letters\nfrom .repository import DONE\nimport chalicelib.store\n"),
    ("chalicelib.dlq.x", "from chalicelib.contracts.errors import WalletNotOpen\nimport pymongo\n"),
    ("chalicelib.bootstrap", "def f():\n    from chalicelib.billing import repository\n"),
])
def test_the_checker_lets_published_own_and_shared_imports_through(name, source):
    assert import_violations([parse(name, source)], DECLARED) == []


def test_the_checker_catches_another_domains_collection_name_and_a_leaky_init():
    billing = parse("chalicelib.billing.repository", 'INVOICES = "invoices"\n\ndef f(db):\n    return db[INVOICES]\n')
    dlq = parse("chalicelib.dlq.x", 'def f(db):\n    return db["invoices"].find_one({})\n')
    owned = collections_owned([billing, dlq])
    assert owned["billing"] == {"invoices"}
    assert literal_violations([billing, dlq], owned) == ["chalicelib.dlq.x:2 names billing's collection 'invoices'"]
    leaky = parse("chalicelib.billing", "from chalicelib.billing.repository import BillingRepository\n", True)
    assert len(init_violations([leaky])) == 1


# --- the rule on the real tree ---------------------------------------------------------------

@pytest.fixture(scope="module")
def modules() -> list[Module]:
    return tree_modules()


def test_every_top_level_module_is_a_domain_a_shared_layer_or_a_composition_root(modules):
    """A new package must say which it is, here, before the rule can cover it."""
    known = {*DOMAINS, *SHARED, *(c.split(".")[1] for c in COMPOSERS)}
    assert sorted({m.top for m in modules if m.top} - known) == []


def test_each_domain_declares_what_it_publishes_and_its_init_imports_nothing(modules):
    declared = published(modules)
    assert set(declared) == set(DOMAINS)
    for domain, names in declared.items():
        assert all(_is_module(f"chalicelib.{domain}.{n}") for n in names), (domain, names)
    assert declared["billing"] == ("queries",)
    assert init_violations(modules) == []


def test_no_domain_imports_another_domains_internals(modules):
    assert import_violations(modules, published(modules)) == []


def test_a_collection_name_appears_only_in_the_domain_that_owns_it(modules):
    owned = collections_owned(modules)
    # The derivation found each domain's collections (an empty set would make the check vacuous).
    assert {"invoices", "wallets", "ledger"} <= owned["billing"] and "users" in owned["auth"]
    assert "ocm_stations" in owned["ocm"] and owned["dlq"] == {"dead_letters"}
    assert all(not (owned[a] & owned[b]) for a in DOMAINS for b in DOMAINS if a < b), "one owner per collection"
    assert literal_violations(modules, owned) == []
