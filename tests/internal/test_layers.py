"""The container layer's import rules, read from the source (white-box).

``scan`` is static by construction: it reaches the container modules and the
pickle scanner, never a decoder. Magic bytes live in ``_sniff`` only.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "safenpz"
DECODERS = {"_unpickle", "_fastrows", "_decode", "_npzfile", "_npy"}
CONTAINER = ["_sniff", "_header", "_zip", "_manifest"]


def _imports(module: str) -> set[str]:
    """The sibling modules `module` imports (relative imports only)."""
    tree = ast.parse((SRC / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(a.name for a in node.names)
    return found


def _closure(module: str) -> set[str]:
    seen: set[str] = set()
    todo = [module]
    while todo:
        for dep in _imports(todo.pop()) - seen:
            if (SRC / f"{dep}.py").exists():
                seen.add(dep)
                todo.append(dep)
    return seen


@pytest.mark.parametrize("module", ["_scan", *CONTAINER])
def test_static_modules_never_reach_a_decoder(module: str) -> None:
    assert not _closure(module) & DECODERS


@pytest.mark.parametrize("module", [*CONTAINER, "_decode", "_npzfile", "_npy"])
def test_reader_modules_are_not_in_a_cycle(module: str) -> None:
    assert module not in _closure(module)


def test_magic_bytes_are_known_to_sniff_only() -> None:
    magic = re.compile(r"b[\"'](\\x93NUMPY|PK\\x0[35]\\x0[46])")
    holders = [p.name for p in sorted(SRC.rglob("*.py")) if magic.search(p.read_text())]
    assert holders == ["_sniff.py"]


@pytest.mark.parametrize(
    "module", sorted(p.stem for p in SRC.glob("*.py") if p.stem != "__init__")
)
def test_no_module_is_in_an_import_cycle(module: str) -> None:
    """Lazy imports inside functions count too (``ast.walk`` sees them)."""
    assert module not in _closure(module)
