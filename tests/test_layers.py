"""The package's layers: every module imports alone, and imports point one way, down.

aiohttp's tests/test_circular_imports.py is the model for the first test: a module that only
imports after another one was imported first hides a cycle that bites whoever imports it alone.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests import ROOT

PACKAGE = ROOT / "wabot"

# Highest first. A module may import modules of its own layer or of any layer below it, never above.
# Layers that share a rank are siblings: neither may import the other (flows/db, whatsapp/config).
LAYERS: list[tuple[int, tuple[str, ...]]] = [
    (8, ("wabot.cli", "wabot.__main__")),
    (7, ("wabot.tools",)),
    (6, ("wabot.console", "wabot.api")),
    (5, ("wabot.server",)),
    (4, ("wabot.engine",)),
    (3, ("wabot.flows",)),
    (3, ("wabot.db",)),
    (2, ("wabot.whatsapp",)),
    (2, ("wabot.config",)),
    (0, ("wabot.text", "wabot.urls", "wabot.templates", "wabot.errors", "wabot.state", "wabot.logs", "wabot.envfile",
         "wabot.dates")),
]


def modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts == ["wabot"]:
            continue  # the empty top package
        names.append(".".join(parts))
    return names


def layer(module: str) -> tuple[int, tuple[str, ...]]:
    for rank, prefixes in LAYERS:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank, prefixes
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_layers.py")


def imported(module: str) -> list[tuple[int, str]]:
    """(line, module) of every wabot import in `module`, but those only for type hints."""
    path = PACKAGE.parent / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = PACKAGE.parent / module.replace(".", "/") / "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hints: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hints.update(id(n) for n in ast.walk(node))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in hints:
            continue
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 or module.count(".") >= 1, module
            base = node.module or ""
            if node.level:
                package = module.rsplit(".", node.level)[0] if path.name != "__init__.py" else module
                base = f"{package}.{base}".rstrip(".")
            if base == "wabot" or base.startswith("wabot."):
                found.extend((node.lineno, f"{base}.{a.name}" if base == "wabot" or _is_package(base) else base)
                             for a in node.names)
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names if a.name.startswith("wabot."))
    return found


def _is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()


def upward_imports() -> list[str]:
    wrong = []
    for module in modules():
        rank, home = layer(module)
        for line, target in imported(module):
            there, prefixes = layer(target)
            if there > rank or (there == rank and prefixes != home):
                wrong.append(f"{module}:{line} imports {target} ({'a layer above' if there > rank else 'a sibling'})")
    return wrong


def test_imports_point_down() -> None:
    assert upward_imports() == []


def test_every_module_is_in_a_layer() -> None:
    for module in modules():
        layer(module)


def _import_alone(module: str) -> tuple[str, int, str]:
    done = subprocess.run([sys.executable, "-W", "error", "-c", f"import {module}"],
                          capture_output=True, text=True, cwd=PACKAGE.parent, timeout=60)
    return module, done.returncode, done.stderr[-2000:]


def test_every_module_imports_alone() -> None:
    names = [m for m in modules() if m != "wabot.__main__"]  # importing __main__ starts the server
    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [f"{m}:\n{err}" for m, code, err in pool.map(_import_alone, names) if code]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("line", ["from wabot.server.app import create_app", "from wabot.tools import chat"])
def test_the_check_sees_an_upward_import(tmp_path: Path, line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The layer check itself can fail: an engine module importing the server or a tool is reported."""
    real = imported

    def with_one_more(module: str) -> list[tuple[int, str]]:
        extra = [(1, line.split()[1])] if module == "wabot.engine.menus" else []
        return real(module) + extra

    monkeypatch.setitem(globals(), "imported", with_one_more)
    assert any(w.startswith("wabot.engine.menus:1 imports") for w in upward_imports())
