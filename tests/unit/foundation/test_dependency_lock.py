"""Every dependency the Makefile installs or packages is pinned and hash-locked, and the locks hold every direct pin.

pip's --require-hashes refuses a whole install over one unhashed line, but only when the install runs;
these checks stop an unhashed addition, or a requirements*.in edited without `make lock`, at the
first test run instead. The last test feeds the checks a bad lock, so they are known to be able to fail.
"""

import re
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[3]
# chalice builds deployment.zip from this one; the Makefile installs the others.
PACKAGED_LOCK = "requirements.txt"
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def _logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined and comments dropped, as pip and make read them."""
    lines, pending = [], ""
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined = (pending + line).strip()
        pending = ""
        if joined:
            lines.append(joined)
    return lines


def lock_problems(path: Path) -> list[str]:
    """What makes a lock unfit for --require-hashes: anything but `name==version` lines with sha256 hashes."""
    problems = []
    for line in _logical_lines(path.read_text()):
        spec = line.split(" --hash", 1)[0].strip()
        if spec.startswith("-"):
            problems.append(f"{path.name}: option line {spec.split()[0]} (a lock lists packages only)")
            continue
        try:
            req = Requirement(spec)
        except InvalidRequirement:
            problems.append(f"{path.name}: unreadable requirement {spec!r}")
            continue
        pins = list(req.specifier)
        if req.url or len(pins) != 1 or pins[0].operator != "==" or "*" in pins[0].version:
            problems.append(f"{path.name}: {req.name} is not pinned to one exact version")
        if not HASH.search(line):
            problems.append(f"{path.name}: {req.name} has no sha256 hash")
    return problems


def locked_versions(path: Path) -> dict[str, str]:
    """Canonical package name -> pinned version, for a lock that passed lock_problems."""
    versions = {}
    for line in _logical_lines(path.read_text()):
        req = Requirement(line.split(" --hash", 1)[0].strip())
        versions[canonicalize_name(req.name)] = next(iter(req.specifier)).version
    return versions


def direct_pins(path: Path) -> dict[str, str | None]:
    """Canonical name -> version (None if unpinned) named by a .in file and the .in files it includes with -r."""
    pins: dict[str, str | None] = {}
    for line in _logical_lines(path.read_text()):
        if line.startswith("-r "):
            pins.update(direct_pins(path.parent / line.split(None, 1)[1]))
        elif not line.startswith("-"):
            req = Requirement(line)
            exact = [s.version for s in req.specifier if s.operator == "=="]
            pins[canonicalize_name(req.name)] = exact[0] if exact else None
    return pins


def in_problems(in_path: Path, lock_path: Path) -> list[str]:
    """Packages a .in names that its lock lacks, or locks at another version than the .in pins."""
    locked = locked_versions(lock_path)
    problems = []
    for name, version in direct_pins(in_path).items():
        if name not in locked:
            problems.append(f"{in_path.name}: {name} is not in {lock_path.name} (run `make lock`)")
        elif version is not None and locked[name] != version:
            problems.append(f"{in_path.name}: {name}=={version} but {lock_path.name} locks {locked[name]}")
    return problems


def _makefile_commands() -> list[str]:
    """The Makefile's logical lines with its `NAME := value` variables expanded."""
    lines = _logical_lines((ROOT / "Makefile").read_text())
    variables = dict(re.match(r"^([A-Z_]+) :?= ?(.*)$", ln).groups() for ln in lines if re.match(r"^[A-Z_]+ :?=", ln))
    expanded = []
    for line in lines:
        for _ in range(5):  # variables nest a few levels deep at most
            line = re.sub(r"\$\(([A-Z_]+)\)", lambda m: variables.get(m[1], m[0]), line)
        expanded.append(line)
    return expanded


def _installed_locks() -> list[str]:
    """The files the Makefile feeds to `pip install -r`, each of which must be a hashed lock."""
    installs = [ln for ln in _makefile_commands() if "pip install" in ln]
    assert installs, "no pip install found in the Makefile"
    for line in installs:
        assert "--require-hashes" in line, f"Makefile installs without --require-hashes: {line}"
    return sorted({name for line in installs for name in re.findall(r"-r (\S+)", line)})


def test_the_makefile_installs_and_packages_only_hash_checked_locks():
    assert _installed_locks() == ["requirements-dev.txt", "requirements-lambda-runtime.txt"]
    packaging_lines = [ln for ln in _makefile_commands() if "chalice package" in ln]
    assert packaging_lines, "no chalice package rule in the Makefile"
    for line in packaging_lines:
        # chalice fetches the manylinux wheels in pip calls of its own; these hold them to the lock's hashes.
        assert "PIP_REQUIRE_HASHES=1" in line and f"PIP_CONSTRAINT=$(CURDIR)/{PACKAGED_LOCK}" in line, line


def test_every_locked_requirement_is_pinned_and_hashed():
    problems = [p for name in [PACKAGED_LOCK, *_installed_locks()] for p in lock_problems(ROOT / name)]
    assert problems == []


def test_every_direct_pin_is_in_its_lock_at_that_version():
    pairs = [(ROOT / name.replace(".txt", ".in"), ROOT / name) for name in [PACKAGED_LOCK, *_installed_locks()]]
    for in_path, _ in pairs:
        assert in_path.exists(), f"{in_path.name} is missing: every lock is compiled from one"
    assert [p for in_path, lock_path in pairs for p in in_problems(in_path, lock_path)] == []


def test_the_locks_agree_on_every_package_they_share():
    # The tests run the versions that ship and that the emulated functions see.
    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for name in [PACKAGED_LOCK, *_installed_locks()]:
        for package, version in locked_versions(ROOT / name).items():
            first = seen.setdefault(package, (name, version))
            if first[1] != version:
                clashes.append(f"{package}: {first[0]} locks {first[1]}, {name} locks {version}")
    assert clashes == []


def test_the_checks_catch_an_unhashed_unpinned_or_missing_requirement(tmp_path):
    digest = "0" * 64
    lock = tmp_path / "requirements.txt"
    lock.write_text(
        f"six==1.17.0 \\\n    --hash=sha256:{digest}\n    # via -r requirements.in\n"
        "idna==3.20\n"
        f"certifi>=2026.1 \\\n    --hash=sha256:{digest}\n"
        "-e ./local-checkout\n"
    )
    (tmp_path / "requirements.in").write_text("six==1.17.0\nidna==3.19\ntoolz==1.0.0\n")
    assert lock_problems(lock) == [
        "requirements.txt: idna has no sha256 hash",
        "requirements.txt: certifi is not pinned to one exact version",
        "requirements.txt: option line -e (a lock lists packages only)",
    ]
    lock.write_text(f"six==1.17.0 --hash=sha256:{digest}\nidna==3.20 --hash=sha256:{digest}\n")
    assert in_problems(tmp_path / "requirements.in", lock) == [
        "requirements.in: idna==3.19 but requirements.txt locks 3.20",
        "requirements.in: toolz is not in requirements.txt (run `make lock`)",
    ]
