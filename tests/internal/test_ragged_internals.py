"""White-box tests of safenpz._ragged and safenpz._interop: the Arrow list
type switch at the int32 offset bound (patched small), and the doctests of the
private module (tests/test_ragged.py tests ``RaggedArray`` itself)."""

from __future__ import annotations

import doctest
from typing import Any

import pytest

from safenpz import RaggedArray, _interop, _ragged


def rag(rows: list[list[Any]], dtype: Any = None) -> RaggedArray:
    return RaggedArray.from_lists(rows, dtype=dtype)


@pytest.fixture
def pa() -> Any:
    return pytest.importorskip("pyarrow")


def test_arrow_auto_large(pa: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_interop, "_ARROW_INT32_MAX", 2)
    r = rag([[1, 2], [3]])
    assert r.to_arrow().type == pa.large_list(pa.int64())
    assert rag([[1, 2]]).to_arrow().type == pa.list_(pa.int64())
    with pytest.raises(
        ValueError, match=r"3 values do not fit .*to_arrow\(large=True\)"
    ):
        r.to_arrow(large=False)


def test_docstring_examples() -> None:
    pytest.importorskip("pyarrow")
    # RaggedArray.__module__ is "safenpz" (set by the package), so look at the
    # class itself rather than at the module that defines it.
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    found = finder.find(_ragged) + finder.find(RaggedArray, "RaggedArray", module=False)
    for test in found:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 20
    assert result.failed == 0
