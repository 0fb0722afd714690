"""The container layer's import rules, read from the source (white-box).

``scan`` is static by construction: it reaches the container modules and the
pickle scanner, never a decoder. Magic bytes live in ``_sniff`` only.

Modules are named relative to the package, dotted for subpackages
(``_pickle._scanner``). Importing a submodule runs its subpackage's
``__init__`` first, so that counts as an import too.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "safenpz"
#: Decoders, by module name (wherever they live: ``_unpickle`` or
#: ``_pickle._unpickle``).
DECODERS = {
    "_decode",
    "_constructors",
    "_context",
    "_array_state",
    "_dtype_state",
    "_walk",
    "_walk_bulk",
    "_finish",
    "_fast_probe",
    "_fastrows",
    "_fast_header",
    "_fast_objects",
    "_fast_body",
    "_fast_tokens",
    "_npzfile",
    "_npy",
}
CONTAINER = ["_sniff", "_header", "_zip", "_manifest"]
SCANNER = "_pickle._scanner"
#: What the pickle scanner may use outside its package.
SCANNER_SUPPORT = {"_exceptions", "_limits", "_preview"}


def _path(module: str) -> Path | None:
    """The source file of `module`, if it is a module of the package."""
    base = SRC.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _modules() -> list[str]:
    """The top-level modules and those of the ``_pickle`` package."""
    top = [p.stem for p in SRC.glob("*.py") if p.stem != "__init__"]
    pickle_pkg = [
        "_pickle" if p.stem == "__init__" else f"_pickle.{p.stem}"
        for p in (SRC / "_pickle").glob("*.py")
    ]
    return sorted(top + pickle_pkg)


def _targets(module: str, node: ast.ImportFrom) -> list[list[str]]:
    """What one ``from ... import ...`` in `module` may name, as module paths."""
    if node.level:
        path = _path(module)
        here = module.split(".")
        package = here if path is not None and path.name == "__init__.py" else here[:-1]
        base = package[: len(package) - node.level + 1]
        target = base + (node.module.split(".") if node.module else [])
    elif node.module == "safenpz" or (node.module or "").startswith("safenpz."):
        target = (node.module or "").split(".")[1:]
    else:
        return []
    return [target, *([*target, alias.name] for alias in node.names)]


@functools.cache
def _imports(module: str) -> frozenset[str]:
    """The package's modules `module` imports (relative or absolute), with
    the subpackages importing them runs."""
    path = _path(module)
    assert path is not None, module
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        for parts in _targets(module, node):
            if parts and _path(".".join(parts)) is not None:
                found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return frozenset(found)


def _closure(module: str) -> set[str]:
    seen: set[str] = set()
    todo = [module]
    while todo:
        for dep in _imports(todo.pop()) - seen:
            seen.add(dep)
            todo.append(dep)
    return seen


def _decoders(modules: set[str]) -> set[str]:
    return {m for m in modules if m.rsplit(".", 1)[-1] in DECODERS}


def test_the_resolver_sees_package_imports() -> None:
    """A guard on the helpers above (they would pass vacuously if blind)."""
    assert {"_pickle", SCANNER, "_pickle._report"} <= _imports("_scan")
    assert "_pickle._opcodes" in _closure(SCANNER)
    assert "_pickle._decode" in _closure("_npy")


@pytest.mark.parametrize("module", ["_scan", SCANNER, *CONTAINER])
def test_static_modules_never_reach_a_decoder(module: str) -> None:
    assert not _decoders(_closure(module))


def test_the_pickle_scanner_needs_only_its_package_and_support() -> None:
    outside = {m for m in _closure(SCANNER) if m.split(".")[0] != "_pickle"}
    assert outside <= SCANNER_SUPPORT


@pytest.mark.parametrize("module", [*CONTAINER, "_decode", "_npzfile", "_npy"])
def test_reader_modules_are_not_in_a_cycle(module: str) -> None:
    assert module not in _closure(module)


def test_magic_bytes_are_known_to_sniff_only() -> None:
    magic = re.compile(r"b[\"'](\\x93NUMPY|PK\\x0[35]\\x0[46])")
    holders = [p.name for p in sorted(SRC.rglob("*.py")) if magic.search(p.read_text())]
    assert holders == ["_sniff.py"]


@pytest.mark.parametrize("module", _modules())
def test_no_module_is_in_an_import_cycle(module: str) -> None:
    """Lazy imports inside functions count too (``ast.walk`` sees them)."""
    assert module not in _closure(module)
