"""Tests outside ``tests/internal/`` import only safenpz's public names.

A test of public behaviour takes its names from ``safenpz`` (or a public
submodule: ``safenpz.cli``, ``safenpz.datasets``, ``safenpz.torch``), so the
private modules can be refactored without touching it. Tests of private code
(white-box tests) live in ``tests/internal/``. A few shared helpers need a
private name: each is allowed below, with the modules it may import and the
reason, and an entry whose file no longer needs one fails the check too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
INTERNAL = TESTS / "internal"

#: helper file -> (the private modules it may import, why it needs them)
ALLOWED: dict[str, tuple[frozenset[str], str]] = {
    "bounds_child.py": (
        frozenset({"safenpz._save"}),
        "the bounds child re-saves members under their raw archive names "
        "(save_arrays takes any name; save(**arrays) cannot take 'compress')",
    ),
    "conftest.py": (
        frozenset({"safenpz._pickle"}),
        "the whole suite runs with the compiled pre-check cross-checked "
        "against the scan (_prescan.CROSS_CHECK) and the proven path's "
        "results against the validating decoder's (_decode.decode_proven)",
    ),
    "dataset_server.py": (
        frozenset({"safenpz.datasets._spec"}),
        "downloads of generated files need their hashes in the known-hash table",
    ),
    "reference_decode.py": (
        frozenset({"safenpz._limits", "safenpz._pickle"}),
        "the reference scanner's dynamic half runs streams through the "
        "decoder's own constructors, final walk and limits (never the scanner)",
    ),
    "reference_scan.py": (
        frozenset({"safenpz._limits", "safenpz._pickle"}),
        "the reference scanner applies the implementation's closed table of "
        "globals (SAFE_GLOBALS) and its default limits",
    ),
}

#: calls whose first argument names a module (or a module attribute)
_NAMING_CALLS = {"import_module", "importorskip", "__import__", "setattr", "delattr"}


def _private(dotted: str) -> bool:
    """``safenpz._x``, ``safenpz.datasets._x.y``, ``safenpz._x.attr`` ..."""
    parts = dotted.split(".")
    return parts[0] == "safenpz" and any(p.startswith("_") for p in parts[1:])


def _private_module(dotted: str) -> str:
    """The private module a dotted name is in: ``safenpz._x.y`` -> ``safenpz._x``."""
    parts = dotted.split(".")
    first = next(i for i, p in enumerate(parts) if i and p.startswith("_"))
    return ".".join(parts[: first + 1])


def private_imports(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Yield ``(line, private module)`` for each private name `tree` imports."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _private(alias.name):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if _private(node.module):
                yield node.lineno, node.module
                continue
            for alias in node.names:
                name = alias.name
                dunder = name.startswith("__") and name.endswith("__")
                if not dunder and _private(f"{node.module}.{name}"):
                    yield node.lineno, f"{node.module}.{name}"
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else None
            called = func.id if isinstance(func, ast.Name) else called
            first = node.args[0]
            if (
                called in _NAMING_CALLS
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and _private(first.value)
            ):
                yield node.lineno, first.value


def _public_tree_files() -> list[Path]:
    return sorted(
        p for p in TESTS.rglob("*.py") if INTERNAL not in p.parents and p != INTERNAL
    )


def test_tests_outside_internal_import_only_public_names() -> None:
    users: set[str] = set()
    offenders = []
    for path in _public_tree_files():
        rel = path.relative_to(TESTS).as_posix()
        allowed = ALLOWED.get(rel, (frozenset(), ""))[0]
        for line, module in private_imports(ast.parse(path.read_text(), rel)):
            if _private_module(module) in allowed:
                users.add(rel)
            else:
                offenders.append(f"tests/{rel}:{line}: {module}")
    assert not offenders, (
        "import the public name from safenpz, or move the white-box test to "
        "tests/internal/:\n" + "\n".join(offenders)
    )
    assert users == set(ALLOWED), f"unused allow-list entries: {set(ALLOWED) - users}"


@pytest.mark.parametrize(
    ("source", "private"),
    [
        ("import safenpz._npy", ["safenpz._npy"]),
        ("import safenpz._npy as n", ["safenpz._npy"]),
        ("from safenpz._npy import load", ["safenpz._npy"]),
        ("from safenpz import _tree, load", ["safenpz._tree"]),
        ("from safenpz.datasets._spec import Rules", ["safenpz.datasets._spec"]),
        ("from safenpz.datasets import _spec", ["safenpz.datasets._spec"]),
        ("def f():\n    from safenpz._scan import scan_path", ["safenpz._scan"]),
        ("importlib.import_module('safenpz._fetch')", ["safenpz._fetch"]),
        ("mp.setattr('safenpz._decode.safe_loads', f)", ["safenpz._decode.safe_loads"]),
        ("import safenpz, safenpz.datasets, safenpz.cli", []),
        ("from safenpz import __version__, load, scan_pickle", []),
        ("from safenpz.cli import main", []),
        ("from safenpz.datasets import imdb", []),
        ("from hostile import _private_helper", []),
        ("mp.setattr(safenpz, '_x', 1)", []),
    ],
)
def test_the_rule_sees_every_spelling(source: str, private: list[str]) -> None:
    assert [m for _, m in private_imports(ast.parse(source))] == private
