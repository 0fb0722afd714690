"""House style, checked: no function in ``src/``, ``tests/`` or
``benchmarks/`` is longer than 80 lines, and no module of the package longer
than 600.

Every function and method counts, nested ones too, from its ``def`` line to
its last line (docstring included). Ruff checks the rest of "small":
complexity (C901), branches (PLR0912) and statements (PLR0915).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
CHECKED = [SRC, ROOT / "tests", ROOT / "benchmarks"]
MAX_LINES = 80
MAX_MODULE_LINES = 600


def _long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_LINES:
                found.append(f"{path}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_the_check_sees_every_source_file() -> None:
    files = {p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py")}
    assert "safenpz/__init__.py" in files
    assert "safenpz/datasets/imdb.py" in files


def test_no_function_is_longer_than_80_lines() -> None:
    long = [
        entry
        for folder in CHECKED
        for path in sorted(folder.rglob("*.py"))
        for entry in _long_functions(path)
    ]
    assert not long, "functions over 80 lines:\n" + "\n".join(long)


def test_a_long_function_is_found(tmp_path: Path) -> None:
    body = "\n".join(f"        x = {i}" for i in range(MAX_LINES))
    path = tmp_path / "m.py"
    path.write_text(f"class C:\n    def f(self):\n{body}\n", encoding="utf-8")
    assert _long_functions(path) == [f"{path}:2 f ({MAX_LINES + 1} lines)"]


def test_no_module_is_longer_than_600_lines() -> None:
    long = {
        path.relative_to(SRC).as_posix(): n
        for path in sorted(SRC.rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"
