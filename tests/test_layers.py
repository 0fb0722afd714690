"""The container layer's import rules, read from the source (white-box).

``scan`` is static by construction: it reaches the container modules and the
pickle scanner, never a decoder. Magic bytes live in ``_sniff`` only.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "safenpz"
# modules are named relative to safenpz, dotted: "_npy", "_pickle._decode"
PICKLE_DECODERS = {
    "_pickle._decode",
    "_pickle._constructors",
    "_pickle._context",
    "_pickle._array_state",
    "_pickle._dtype_state",
    "_pickle._walk",
    "_pickle._fastrows",
    "_pickle._fast_header",
    "_pickle._fast_objects",
    "_pickle._fast_body",
    "_pickle._fast_tokens",
}
DECODERS = {*PICKLE_DECODERS, "_decode", "_npzfile", "_npy"}
CONTAINER = ["_sniff", "_header", "_zip", "_manifest"]


def _path(module: str) -> Path:
    """The file of `module` (a package's ``__init__.py``)."""
    path = SRC.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _exists(module: str) -> bool:
    return bool(module) and _path(module).exists()


def _imports(module: str) -> set[str]:
    """The safenpz modules `module` imports (relative imports only).

    ``from .pkg.mod import x`` imports ``pkg.mod`` and, from outside ``pkg``,
    runs ``pkg/__init__.py`` first; ``from . import x`` imports ``x`` if it is
    a module."""
    package = module.split(".")
    if _path(module).name != "__init__.py":
        package = package[:-1]
    tree = ast.parse(_path(module).read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ImportFrom) and node.level >= 1):
            continue
        base = package[: len(package) - (node.level - 1)]
        if node.module:
            target = [*base, *node.module.split(".")]
            for i in range(len(base) + 1, len(target) + 1):
                found.add(".".join(target[:i]))
        else:
            found.update(".".join([*base, a.name]) for a in node.names)
    return found


def _closure(module: str) -> set[str]:
    seen: set[str] = set()
    todo = [module]
    while todo:
        for dep in _imports(todo.pop()) - seen:
            if _exists(dep):
                seen.add(dep)
                todo.append(dep)
    return seen


def _all_modules() -> list[str]:
    names = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            names.append(".".join(parts))
    return names


def test_the_import_graph_sees_the_pickle_package() -> None:
    """The rules below reach into packages (a guard for the helpers)."""
    assert {"_pickle", "_pickle._decode", "_pickle._opcodes"} <= _closure("_npy")
    assert set(_all_modules()) >= PICKLE_DECODERS


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


@pytest.mark.parametrize("module", _all_modules())
def test_no_module_is_in_an_import_cycle(module: str) -> None:
    """Lazy imports inside functions count too (``ast.walk`` sees them)."""
    assert module not in _closure(module)
