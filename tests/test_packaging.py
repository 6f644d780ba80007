"""The distribution's shape: every package folder is shipped, `platform/` never shadows the standard
library, and imports run one way (api → domain → storage; edge_agent → tianwang.protocol only;
simulator → nothing of ours)."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# (folder, the package name it is installed as)
TREES = [("platform", "tianwang"), ("edge_agent", "edge_agent"), ("simulator", "simulator")]
DOMAIN = ["cameras", "checkpoints", "places", "coverage", "records", "analyses", "alarms", "auth", "storage"]


def listed_packages() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return set(data["tool"]["setuptools"]["packages"])


def package_dirs(folder: str, name: str) -> dict[str, Path]:
    """Every folder under `folder` holding .py files, by the dotted name it is installed as."""
    base = ROOT / folder
    found: dict[str, Path] = {}
    for py in base.rglob("*.py"):
        rel = py.parent.relative_to(base)
        if any(part == "__pycache__" or part.startswith(".") for part in rel.parts):
            continue
        found[".".join((name, *rel.parts))] = py.parent
    return found


def sources(folder: str) -> Iterator[Path]:
    for py in sorted((ROOT / folder).rglob("*.py")):
        if "__pycache__" not in py.parts:
            yield py


def module_name(py: Path, base: Path, name: str) -> str:
    rel = py.relative_to(base).with_suffix("")
    parts = [name, *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(py: Path, base: Path, name: str) -> Iterator[tuple[int, str]]:
    """(line, absolute module) for every import in `py` (a file of the tree at `base`, installed
    as `name`), relative ones resolved, and every `importlib.import_module("…")` /
    `__import__("…")` with a literal name."""
    tree = ast.parse(py.read_text(encoding="utf-8"), filename=str(py))
    mod = module_name(py, base, name)
    package = mod if py.name == "__init__.py" else mod.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            anchor = ".".join(parts[: len(parts) - (node.level - 1)]) if node.level else ""
            target = ".".join(p for p in (anchor, node.module or "") if p)
            # `from tianwang import protocol` is tianwang.protocol, `from tianwang.api import x`
            # is within tianwang.api: the qualified name is what the rules judge.
            for alias in node.names:
                yield node.lineno, f"{target}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args:
            f = node.func
            fname = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            arg = node.args[0]
            dynamic = fname in ("import_module", "__import__")
            if dynamic and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                yield node.lineno, arg.value


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def offences(folder: str, name: str, forbidden: list[str], allowed: tuple[str, ...] = ()) -> list[str]:
    bad = []
    for py in sources(folder):
        for line, target in imported_modules(py, ROOT / folder, name):
            if any(within(target, f) for f in forbidden) and not any(within(target, a) for a in allowed):
                bad.append(f"{py.relative_to(ROOT)}:{line} imports {target}")
    return bad


# -- (a) every package folder is shipped ---------------------------------------------------------


@pytest.mark.parametrize(("folder", "name"), TREES)
def test_every_package_folder_is_listed(folder: str, name: str) -> None:
    found = package_dirs(folder, name)
    assert name in found, f"{folder}/ has no Python files at its top"
    missing = sorted(set(found) - listed_packages())
    assert missing == [], f"add to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_every_listed_package_exists() -> None:
    dirs: dict[str, Path] = {}
    for folder, name in TREES:
        dirs |= package_dirs(folder, name)
    stale = sorted(listed_packages() - set(dirs))
    assert stale == [], f"listed in pyproject.toml but no such folder with .py files: {stale}"


def test_package_dir_maps_tianwang_to_platform() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert data["tool"]["setuptools"]["package-dir"] == {"tianwang": "platform"}


# -- (b), (c) `platform/` never shadows the standard library -------------------------------------


def test_platform_folder_has_no_init() -> None:
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_stdlib_platform_wins_from_the_repo_root() -> None:
    code = (
        "import platform; platform.system(); print(platform.__file__); "
        "import tianwang.cameras, tianwang; print(tianwang.cameras.__file__)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == 0, r.stderr
    stdlib_platform, cameras = r.stdout.split()
    assert Path(stdlib_platform).parent != ROOT / "platform"
    assert Path(stdlib_platform).name == "platform.py"
    assert Path(cameras).resolve().is_relative_to(ROOT / "platform" / "cameras")


# -- (d), (e) imports run one way ----------------------------------------------------------------


def test_edge_agent_imports_only_the_protocol_of_the_platform() -> None:
    assert offences("edge_agent", "edge_agent", ["tianwang"], allowed=("tianwang.protocol",)) == []


def test_simulator_imports_nothing_of_ours() -> None:
    assert offences("simulator", "simulator", ["tianwang", "edge_agent"]) == []


def test_protocol_imports_nothing_else_of_the_platform() -> None:
    # the agent depends on tianwang.protocol; if it pulled in more, so would the agent
    bad = []
    for py in sources("platform/protocol"):
        for line, target in imported_modules(py, ROOT / "platform", "tianwang"):
            if within(target, "tianwang") and not within(target, "tianwang.protocol"):
                bad.append(f"{py.relative_to(ROOT)}:{line} imports {target}")
    assert bad == []


@pytest.mark.parametrize("domain", DOMAIN)
def test_domain_packages_do_not_import_the_api(domain: str) -> None:
    if not (ROOT / "platform" / domain).is_dir():
        pytest.fail(f"platform/{domain}/ is gone; update DOMAIN")
    bad = []
    for py in sources(f"platform/{domain}"):
        for line, target in imported_modules(py, ROOT / "platform", "tianwang"):
            if within(target, "tianwang.api"):
                bad.append(f"{py.relative_to(ROOT)}:{line} imports {target}")
    assert bad == []


def test_import_scanner_sees_relative_and_dynamic_imports(tmp_path: Path) -> None:
    # the checks above are only as good as the scanner: feed it the forms it must catch
    fake = tmp_path / "platform" / "cameras" / "service.py"
    fake.parent.mkdir(parents=True)
    fake.write_text(
        "from ..api import deps\n"
        "from ..api.routers import cameras\n"
        "from tianwang import api\n"
        "import tianwang.api.app\n"
        "import importlib\n"
        "importlib.import_module('tianwang.api')\n"
        "from . import ids\n"
        "from .schemas import CameraIn\n"
    )
    found = {t for _, t in imported_modules(fake, tmp_path / "platform", "tianwang")}
    assert found == {
        "tianwang.api.deps",
        "tianwang.api.routers.cameras",
        "tianwang.api",
        "tianwang.api.app",
        "importlib",
        "tianwang.cameras.ids",
        "tianwang.cameras.schemas.CameraIn",
    }
    # and an __init__.py resolves `.` to its own package
    init = tmp_path / "platform" / "cameras" / "__init__.py"
    init.write_text("from .ids import x\nfrom .. import errors\n")
    found = {t for _, t in imported_modules(init, tmp_path / "platform", "tianwang")}
    assert found == {"tianwang.cameras.ids.x", "tianwang.errors"}


def test_nothing_reads_outside_the_repository() -> None:
    """A clone alone is all a user has: no code, test or bench reaches for the `shared/` folder that
    lies beside the checkout in development (its recorded camera lives in tests/fixtures)."""
    offenders = []
    for folder in ("platform", "edge_agent", "simulator", "tests", "bench", ".ci"):
        for f in sorted((ROOT / folder).rglob("*")):
            if not f.is_file() or f.suffix not in {".py", ".sh", ""} or "fixtures" in f.parts:
                continue
            if f == Path(__file__).resolve():
                continue
            text = f.read_text(encoding="utf-8", errors="replace")
            for needle in ("../shared", "shared/peers", '"shared"', "'shared'"):
                if needle in text:
                    offenders.append(f"{f.relative_to(ROOT)}: {needle}")
    for name in ("Makefile", "pyproject.toml"):
        if "../shared" in (ROOT / name).read_text(encoding="utf-8"):
            offenders.append(name)
    assert not offenders, offenders
    assert (ROOT / "tests" / "fixtures" / "onvif-recorded" / "LICENSE.agsh-onvif").is_file()
