"""White-box tests of safenpz._tree: the save-side caps (patched small), the
measure that counts expanded size before anything is encoded, and the reader's
bounds on the node table before it is parsed (tests/test_tree.py tests the
tree kind through ``save`` and ``load``)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safenpz import FormatError, LimitError, _tree, _tree_read, _tree_write, load, save
from safenpz.cli import scan_file
from strategies import plain_data


def get_x(data: bytes, **kwargs: Any) -> Any:
    with load(data, **kwargs) as f:
        return f["x"]


def test_expanding_shared_references_are_capped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(_tree_write, "MAX_SAVE_NODES", 1000)
    value: list[Any] = []
    for _ in range(40):  # 2**40 nodes once expanded
        value = [value, value]
    with pytest.raises(ValueError, match="more than 1,000 nodes"):
        save(tmp_path / "out.npz", x=value)
    assert list(tmp_path.iterdir()) == []


def test_scan_never_decodes_a_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "weights.npz"
    save(path, w={"conv": {"weights": np.ones((2, 2), np.float32)}, "n": [1, "a"]})

    def refuse(*args: Any) -> Any:
        msg = "scan decoded a tree"
        raise AssertionError(msg)

    monkeypatch.setattr(_tree_read, "decode", refuse)
    result = scan_file(path)
    assert result["verdict"] == "safe"
    assert {m["member"] for m in result["members"]} >= {"w.tree.npy", "w.0.npy"}


def _cube(side: int, levels: int) -> list[Any]:
    value: list[Any] = [0] * side
    for _ in range(levels - 1):
        value = [value] * side
    return value


@given(plain_data())
@settings(max_examples=150, deadline=None)
def test_the_count_is_exactly_what_encode_writes(value: Any) -> None:
    shared = [value, [value, value], {"k": value}]  # shared references too
    nodes, _, leaf_bytes = _tree_write._measure(shared, "x")
    _, members = _tree_write.encode(shared, "x")
    assert nodes == len(json.loads(bytes(members["x.tree"]).decode()))
    leaves = [a for k, a in members.items() if k != "x.tree"]
    assert leaf_bytes == sum(a.nbytes for a in leaves)


@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from('\x00"\\é😀')))
@settings(max_examples=200, deadline=None)
def test_json_len_in_slices_is_exact(
    text: str,
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_tree_write, "_TEXT_CHUNK", 3)
        assert _tree_write._json_len(text) == len(json.dumps(text))


def test_memo_shared_cube_is_refused_before_encoding(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """1000**4 nodes once expanded, 3 objects in memory: the count is
    linear in the distinct objects, so this is refused at once (it used to
    run for minutes)."""

    def never(*args: Any) -> Any:
        msg = "encoded before the size was checked"
        raise AssertionError(msg)

    monkeypatch.setattr(_tree_write._Encoder, "run", never)
    with pytest.raises(LimitError, match=r"more than 1,048,576 nodes once shared"):
        save(tmp_path / "out.npz", x=_cube(1000, 4))
    assert list(tmp_path.iterdir()) == []


def test_node_cap_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_tree_write, "MAX_SAVE_NODES", 10)
    inner = [1, 2]
    save(io.BytesIO(), x=[inner, inner, inner])  # 1 + 3 * 3 = 10 nodes
    with pytest.raises(LimitError, match="more than 10 nodes"):
        save(io.BytesIO(), x=[inner, inner, inner, None])


@pytest.mark.parametrize(
    ("item", "size"),
    [("a" * 48, 50), ("\x00" * 8, 50), (b"b" * 36, 50), (np.bytes_(b"b" * 36), 50)],
    ids=["str", "escaped-str", "bytes", "np.bytes_"],
)
def test_text_cap_counts_what_json_takes(
    monkeypatch: pytest.MonkeyPatch, item: Any, size: int
) -> None:
    monkeypatch.setattr(_tree_write, "MAX_SAVE_TEXT", 2 * size)
    save(io.BytesIO(), x=[item, item])
    with pytest.raises(LimitError, match="more than 100 characters of strings"):
        save(io.BytesIO(), x=[item, item, item])


def test_one_huge_string_is_refused_without_measuring_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_tree_write, "MAX_SAVE_TEXT", 100)
    monkeypatch.setattr(_tree_write.json, "dumps", None)  # would fail if called
    with pytest.raises(LimitError, match="characters of strings"):
        _tree_write._measure({"s": "x" * 200}, "x")


def test_copied_leaf_bytes_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_tree_write, "MAX_SAVE_COPY_BYTES", 80)
    a = np.zeros(10)  # 80 bytes
    save(io.BytesIO(), x=[a, a])  # one copy
    save(io.BytesIO(), x=[np.zeros(10) for _ in range(5)])  # distinct: no copies
    with pytest.raises(LimitError, match="160 bytes of copies"):
        save(io.BytesIO(), x={"a": a, "b": [a, a]})


def test_big_ints_and_object_array_shapes_count_as_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_tree_write, "MAX_SAVE_TEXT", 1000)
    with pytest.raises(LimitError, match="characters"):
        _tree_write._measure([1 << 4000] * 2, "x")
    _, text, _ = _tree_write._measure(np.empty((0,) * 32, dtype=object), "x")
    assert text >= len(json.dumps([0] * 32))  # NumPy 1 allows 32 dimensions


def test_written_table_is_checked_against_the_reader_caps(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(_tree, "MAX_TABLE_VALUES", 100)
    save(tmp_path / "ok.npz", x=list(range(20)))  # ~ 20 * 4 + 3 values
    with pytest.raises(LimitError, match=r"node table would take .* JSON values"):
        save(tmp_path / "big.npz", x=list(range(30)))
    monkeypatch.setattr(_tree, "MAX_TABLE_BYTES", 100)
    with pytest.raises(LimitError, match=r"node table would take .* characters"):
        save(tmp_path / "big.npz", x=["a" * 40, "b" * 40])
    assert [p.name for p in tmp_path.iterdir()] == ["ok.npz"]


@pytest.mark.parametrize(
    ("cap", "value", "words"),
    [
        ("MAX_TABLE_VALUES", 50, "JSON values"),
        ("MAX_TABLE_BYTES", 300, r"bytes \(at most 300\)"),
    ],
)
def test_reader_bounds_the_table_before_parsing(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    cap: str,
    value: int,
    words: str,
) -> None:
    buf = io.BytesIO()
    save(buf, x=list(range(100)))
    monkeypatch.setattr(_tree, cap, value)

    def never(*args: Any, **kwargs: Any) -> Any:
        msg = "parsed a table over the caps"
        raise AssertionError(msg)

    monkeypatch.setattr(_tree_read._Decoder, "parse", never)
    with pytest.raises(FormatError, match=f"node table has .*{words}"):
        get_x(buf.getvalue())
    path = tmp_path / "big.npz"
    path.write_bytes(buf.getvalue())
    assert scan_file(path)["verdict"] == "invalid"  # scan agrees
