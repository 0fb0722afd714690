"""Tests of the tree kind: nested plain data stored pickle-free (the "tree"
manifest kind), and its node table as hostile input."""

from __future__ import annotations

import contextlib
import io
import json
import math
import struct
import sys
import warnings
import zipfile
from collections import OrderedDict, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile import HOSTILE, npy_bytes, npz_bytes, obj_array
from identical import assert_identical
from safenpz import FormatError, LimitError, SafenpzError, UnsafeFileError, load, save
from safenpz.cli import main
from strategies import byte_edits, mutate, plain_data

#: the manifest member's name: part of the pickle-free format
MANIFEST = "__safenpz__"


def saved(compress: bool = False, **values: Any) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():  # non-ASCII field names: .npy format 3.0
        warnings.filterwarnings("ignore", "Stored array in format 3.0")
        save(buf, compress=compress, **values)
    return buf.getvalue()


def round_trip(value: Any, **load_kwargs: Any) -> Any:
    """save → safenpz.load; also checks that plain NumPy opens every member."""
    data = saved(x=value)
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        for name in f.files:
            assert not f[name].dtype.hasobject
    with load(data, **load_kwargs) as f:
        assert f.files == ["x"]
        return f["x"]


def nested_lists(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def depth_of(value: Any) -> int:
    """Nesting depth of single-item lists, without recursion."""
    depth = 0
    while value:
        value = value[0]
        depth += 1
    return depth


def nan_with_payload(bits: int) -> float:
    value: float = struct.unpack("<Q", struct.pack("<Q", bits))[0]
    out: float = struct.unpack("<d", struct.pack("<Q", value))[0]
    return out


# --------------------------------------------------------------------------
# round trips

STRUCT = np.dtype([("a", ">i4"), (("title", "b"), "<f8"), ("c", "S3", (2,))])
EXAMPLES: dict[str, Any] = {
    "none": None,
    "bools": [True, False],
    "ints": [0, -1, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 7**200, -(7**200)],
    "floats": [0.0, -0.0, 1.5, 1e-310, float("inf"), float("-inf"), 0.1],
    "nan-payloads": [nan_with_payload(0x7FF8000000000001), nan_with_payload(2**64 - 1)],
    "complex": [1 + 2j, complex(-0.0, float("nan")), complex(float("inf"), 0)],
    "str": ["", "héllo", "\x00", "a\x00", "\ud800", "\U0001f600"],
    "bytes": [b"", b"\x00", b"a\x00\x00", bytes(range(256))],
    "bytearray": bytearray(b"ab\x00"),
    "np.str_": [np.str_("a\x00"), np.str_(""), np.str_("é")],
    "np.bytes_": [np.bytes_(b"a\x00"), np.bytes_(b"")],
    "np-numbers": [
        np.bool_(True),
        np.int8(-5),
        np.uint64(2**64 - 1),
        np.longlong(3),
        np.ulonglong(4),
        np.float16(1.5),
        np.float32(-0.0),
        np.float64("nan"),
        np.longdouble("1.1"),
        np.complex64(1 - 1j),
        np.clongdouble(2),
    ],
    "np-other-scalars": [
        np.datetime64("2020-01-01T12", "h"),
        np.timedelta64(-3, "ms"),
        np.datetime64("NaT"),
        np.void(b"\x00\x01"),
        np.zeros(1, STRUCT)[0],
    ],
    "dtypes": [np.dtype(">i4"), STRUCT, np.dtype("M8[ns]"), np.dtype("U3")],
    "containers": (
        [],
        (),
        {},
        set(),
        frozenset(),
        [1, "a", (2, [3])],
        {"b": 1, "a": 2, 3: [None]},
        {(1, "x"): 1, None: 2, b"k": 3, frozenset({1}): 4, 2.5: 5, True: 6},
        {1, "a", (2, 3), None, b"x"},
        frozenset({frozenset({1}), 2}),
    ),
    "ordereddict": OrderedDict([("z", 1), ("a", OrderedDict(b=[2]))]),
    "arrays": [
        np.arange(6, dtype=">i2").reshape(2, 3),
        np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        np.zeros((2, 0, 3), np.float32),
        np.array(1.5),
        np.array(["a\x00", "bc"]),
        np.array([b"a\x00", b""], dtype="S3"),
        np.array(["2020-01-01", "NaT"], dtype="M8[D]"),
        np.zeros(3, STRUCT),
        np.zeros(2, "V5"),
    ],
    "object-arrays": [
        obj_array([1, "abc", {"a": 1, "b": 2}]),
        obj_array([{"w": np.ones(2, np.float32)}], shape=()),
        np.asfortranarray(obj_array([1, None, "x", 2.5, [1], ()], shape=(2, 3))),
        np.empty((0, 3), dtype=object),
        np.empty((2, 0), dtype=object),
        obj_array([obj_array([1, [2]]), obj_array([], shape=(0,))]),
        obj_array([np.asfortranarray(obj_array([1, 2, 3, 4], shape=(2, 2)))]),
    ],
    "weights": {  # the most common real object .npy: a 0-d array of a dict
        "conv1": {
            "weights": np.asfortranarray(np.ones((3, 3, 3, 10), np.float32)),
            "biases": np.zeros(10, np.float32),
        },
        "prelu": {"alpha": np.full(10, 0.25, np.float32)},
    },
    "deep-64": nested_lists(64),
}


@pytest.mark.parametrize("value", list(EXAMPLES.values()), ids=list(EXAMPLES))
def test_round_trip_is_identical(value: Any) -> None:
    assert_identical(round_trip(value), value)


@pytest.mark.parametrize("compress", [False, True], ids=["stored", "deflated"])
def test_layout_members_and_manifest(compress: bool) -> None:
    value = {"w": np.arange(3, dtype=np.float32), "b": [np.zeros(2), 1]}
    data = saved(compress, m=value, n=np.arange(2))
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        assert sorted(f.files) == sorted([MANIFEST, "m.tree", "m.0", "m.1", "n"])
        nodes = json.loads(f["m.tree"].tobytes().decode("utf-8"))
        manifest = json.loads(str(f[MANIFEST][()]))
        assert_identical(f["m.0"], value["w"])
    assert manifest["arrays"] == {"m": {"kind": "tree", "leaves": 2}}
    assert nodes[0] == ["dict", [1, 2, 3, 4]]
    assert nodes[2] == ["array", 0]
    with load(data) as f:
        assert f.files == ["m", "n"]
        assert_identical(f["m"], value)


@pytest.mark.skipif(sys.platform == "win32", reason="C long is 32 bits there")
def test_number_forms_in_the_node_table() -> None:
    data = saved(x=[5, 2**64, 1.5, float("nan"), np.float32(1), np.longlong(2)])
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        nodes = json.loads(f["x.tree"].tobytes().decode("utf-8"))
    assert nodes[1:] == [
        ["int", 5],
        ["int", "10000000000000000"],
        ["float", 1.5],
        ["float", "7ff8000000000000"],
        ["np.number", "f4", "0000803f"],
        ["np.number", "q", "0200000000000000"],  # longlong is not int64 on Linux
    ]


def test_nan_dict_keys_and_set_items_keep_their_bits() -> None:
    # identical.py cannot match NaN keys (no two NaN objects are equal)
    nan = nan_with_payload(0x7FF0000000000123)
    got = round_trip({nan: 1, 2.0: 2, "s": {nan, 1.0}})
    keys = list(got)
    assert [struct.pack("<d", k).hex() for k in keys[:2]] == [
        struct.pack("<d", nan).hex(),
        struct.pack("<d", 2.0).hex(),
    ]
    (item,) = [x for x in got["s"] if math.isnan(x)]
    assert struct.pack("<d", item) == struct.pack("<d", nan)


def test_shared_references_are_stored_as_copies() -> None:
    row = [1, 2]
    value = [row, row, {"a": row}]
    got = round_trip(value)
    assert_identical(got, value)
    assert got[0] is not got[1]


def test_deep_nesting_saves_without_recursion_and_loads_with_max_depth() -> None:
    value = nested_lists(5000)
    data = saved(x=value)  # an explicit stack: no RecursionError
    with load(data) as f, pytest.raises(LimitError, match="max_depth=64"):
        f["x"]
    with load(data, max_depth=6000) as f:
        assert depth_of(f["x"]) == 5000


def test_top_level_values_of_every_kind_and_positional() -> None:
    buf = io.BytesIO()
    save(buf, {"a": 1}, y=3, z="s", w=np.float32(2), v=None)
    with load(buf.getvalue()) as f:
        assert f.files == ["y", "z", "w", "v", "arr_0"]
        for name, want in [
            ("y", 3),
            ("z", "s"),
            ("w", np.float32(2)),
            ("v", None),
            ("arr_0", {"a": 1}),
        ]:
            assert_identical(f[name], want)


def test_object_arrays_that_other_kinds_cannot_hold_exactly() -> None:
    cases = [
        obj_array([[1, 2.5], [3]]),  # mixed row items
        obj_array([(1, 2), [3]]),  # mixed row types
        np.array([1, 2**70], dtype=object),  # beyond int64
        np.asfortranarray(np.array([[1, 2], [3, 4]], dtype=object)),  # F order
    ]
    for arr in cases:
        assert_identical(round_trip(arr), arr)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(plain_data())
def test_any_plain_data_round_trips(value: Any) -> None:
    assert_identical(round_trip(value), value)


# --------------------------------------------------------------------------
# what cannot be stored exactly is refused at save time

REFUSED_AT_SAVE: dict[str, tuple[Any, type[Exception], str]] = {
    "object": (object(), TypeError, "builtins.object"),
    "defaultdict": (defaultdict(list), TypeError, "collections.defaultdict"),
    "dict-subclass-in-list": ([1, defaultdict(int)], TypeError, r"value\[1\] is a"),
    "masked-array": ([np.ma.masked_array([1, 2])], TypeError, "MaskedArray"),
    "recarray": (
        {"m": np.zeros(2, [("a", "i4")]).view(np.recarray)},
        TypeError,
        r"value\['m'\] is a numpy\.\S*recarray",
    ),
    "metadata": (
        [np.zeros(2, np.dtype("f8", metadata={"unit": "m"}))],
        TypeError,
        "metadata",
    ),
    "aligned-struct": (
        {"a": np.zeros(2, np.dtype([("a", "u1"), ("b", "<i8")], align=True))},
        TypeError,
        "align=True",
    ),
    "record-scalar": (
        [np.rec.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")])[0]],
        TypeError,
        "record",
    ),
    "object-field": ([np.zeros(2, [("a", "O")])], TypeError, "Python objects"),
    "subarray-dtype": ([np.dtype(("i4", (2,)))], TypeError, "np.load would give"),
    "object-dtype": ([np.dtype(object)], TypeError, "Python objects"),
}


@pytest.mark.parametrize(
    ("value", "error", "match"),
    list(REFUSED_AT_SAVE.values()),
    ids=list(REFUSED_AT_SAVE),
)
def test_refused_at_save(
    value: Any, error: type[Exception], match: str, tmp_path: Path
) -> None:
    with pytest.raises(error, match=match):
        save(tmp_path / "out.npz", x=value)
    assert list(tmp_path.iterdir()) == []


def test_top_level_array_with_metadata_is_refused(tmp_path: Path) -> None:
    arr = np.zeros(2, np.dtype("f8", metadata={"unit": "m"}))
    with pytest.raises(TypeError, match="metadata"):
        save(tmp_path / "out.npz", x=arr)
    assert list(tmp_path.iterdir()) == []


def _self_list() -> list[Any]:
    x: list[Any] = [1]
    x.append(x)
    return x


def _self_dict() -> dict[str, Any]:
    d: dict[str, Any] = {}
    d["me"] = [d]
    return d


def _self_array() -> np.ndarray:
    a = np.empty(1, dtype=object)
    a[0] = a
    return a


@pytest.mark.parametrize(
    "make", [_self_list, _self_dict, _self_array], ids=["list", "dict", "array"]
)
def test_a_container_that_contains_itself_is_refused(make: Any, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="contains itself"):
        save(tmp_path / "out.npz", x=make())
    assert list(tmp_path.iterdir()) == []


def test_tree_parts_clash_with_other_names() -> None:
    clashing: dict[str, Any] = {"x.0": np.arange(3)}
    with pytest.raises(ValueError, match="clashes"):
        save(io.BytesIO(), x={"a": np.arange(2)}, **clashing)


# --------------------------------------------------------------------------
# the node table is hostile input


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():  # non-ASCII field names: .npy format 3.0
        warnings.filterwarnings("ignore", "Stored array in format 3.0")
        np.save(buf, arr)
    return buf.getvalue()


def tree_npz(
    nodes: Any,
    leaves: dict[int, bytes | np.ndarray] | None = None,
    entry: Any = None,
    *,
    sentinel: Path,
    extra: dict[str, bytes] | None = None,
) -> bytes:
    """An archive with tree ``x``: `nodes` (JSON-encoded unless bytes or an
    array), leaf members, and an unreferenced hostile pickle member
    ``evil.npy`` that would create `sentinel` if anything ran it."""
    leaves = leaves or {}
    if entry is None:
        entry = {"kind": "tree", "leaves": len(leaves)}
    manifest = {"format": "safenpz", "version": 1, "arrays": {"x": entry}}
    if isinstance(nodes, np.ndarray):
        table = _npy(nodes)
    else:
        text = nodes if isinstance(nodes, bytes) else json.dumps(nodes).encode()
        table = _npy(np.frombuffer(text, dtype=np.uint8))
    case = next(c for c in HOSTILE if c.id == "reduce-os.system-p2")
    members = {
        MANIFEST + ".npy": _npy(np.array(json.dumps(manifest))),
        "x.tree.npy": table,
        "evil.npy": npy_bytes(case.build(str(sentinel))),
    }
    for i, leaf in leaves.items():
        members[f"x.{i}.npy"] = leaf if isinstance(leaf, bytes) else _npy(leaf)
    members.update(extra or {})
    return npz_bytes(members)


def get_x(data: bytes, **kwargs: Any) -> Any:
    with load(data, **kwargs) as f:
        return f["x"]


A = np.arange(3)
CHAIN_100 = [["list", [i + 1]] for i in range(100)] + [["none"]]
# (nodes, leaves, error, message)
BAD_TREES: dict[str, tuple[Any, dict[int, Any], type[SafenpzError], str]] = {
    "kind-names-a-callable": (
        [["posix.system", "touch sentinel"]],
        {},
        FormatError,
        "node 0: unknown node kind 'posix.system'",
    ),
    "kind-import": ([["__import__", "os"]], {}, FormatError, "unknown node kind"),
    "kind-not-a-string": ([[1, 2]], {}, FormatError, r"node 0: a node must be"),
    "node-not-a-list": (
        [{"kind": "list"}],
        {},
        FormatError,
        "a node must be a JSON array",
    ),
    "empty-node": ([[]], {}, FormatError, "a node must be a JSON array"),
    "table-not-a-list": ({"nodes": []}, {}, FormatError, "non-empty JSON array"),
    "table-empty": ([], {}, FormatError, "non-empty JSON array"),
    "deep-json": (b"[" * 100_000 + b"]" * 100_000, {}, FormatError, "not valid JSON"),
    "not-json": (b'[["none"]', {}, FormatError, "not valid JSON"),
    "json-nan": (b'[["float", NaN]]', {}, FormatError, "holds NaN"),
    "json-infinity": (b'[["float", -Infinity]]', {}, FormatError, "holds -Infinity"),
    "not-utf8": (b'[["str", "\xff"]]', {}, FormatError, "not UTF-8"),
    "deep-nesting": (CHAIN_100, {}, LimitError, "max_depth=64"),
    "self-reference": ([["list", [0]]], {}, FormatError, "child index 0 is not"),
    "back-reference": (
        [["list", [1]], ["list", [0]]],
        {},
        FormatError,
        "node 1: child index 0 is not a node after 1",
    ),
    "child-out-of-range": ([["list", [5]]], {}, FormatError, "child index 5"),
    "child-not-int": ([["list", ["1"]], ["none"]], {}, FormatError, "child index '1'"),
    "child-bool": ([["list", [True]], ["none"]], {}, FormatError, "child index True"),
    "node-referenced-twice": (
        [["list", [1, 1]], ["none"]],
        {},
        FormatError,
        "node 1 is referred to twice",
    ),
    "node-unreferenced": (
        [["list", []], ["none"]],
        {},
        FormatError,
        "node 1: no node refers to it",
    ),
    "leaf-referenced-twice": (
        [["list", [1, 2]], ["array", 0], ["array", 0]],
        {0: A},
        FormatError,
        r"member x\.0\.npy is referred to twice",
    ),
    "leaf-unreferenced": (
        [["list", [1]], ["array", 0]],
        {0: A, 1: A},
        FormatError,
        r"member x\.1\.npy is not referred to",
    ),
    "leaf-out-of-range": (
        [["array", 3]],
        {0: A},
        FormatError,
        "leaf 3 does not exist",
    ),
    "leaf-not-int": ([["array", "x.0"]], {0: A}, FormatError, "takes one leaf index"),
    "leaf-object-array": (
        [["array", 0]],
        {0: np.array([1, None], dtype=object)},
        FormatError,
        "must be a numeric array",
    ),
    "scalar-not-0d": ([["scalar", 0]], {0: A}, FormatError, "must be 0-d"),
    "dtype-not-empty": ([["dtype", 0]], {0: A}, FormatError, "must be empty 1-D"),
    "arity": ([["none", 1]], {}, FormatError, "'none' takes 0 argument"),
    "list-not-list": ([["list", "abc"]], {}, FormatError, "one list of child"),
    "dict-odd": (
        [["dict", [1]], ["none"]],
        {},
        FormatError,
        "even number of children",
    ),
    "dict-unhashable-key": (
        [["dict", [1, 2]], ["list", []], ["none"]],
        {},
        FormatError,
        "not hashable",
    ),
    "dict-equal-keys": (
        [["dict", [1, 2, 3, 4]], ["int", 1], ["none"], ["bool", True], ["none"]],
        {},
        FormatError,
        "equal keys",
    ),
    "set-equal-items": (
        [["set", [1, 2]], ["str", "a"], ["str", "a"]],
        {},
        FormatError,
        "equal keys or items",
    ),
    "frozenset-unhashable": (
        [["frozenset", [1]], ["array", 0]],
        {0: A},
        FormatError,
        "not hashable",
    ),
    "int-float": ([["int", 1.5]], {}, FormatError, "an int is"),
    "int-bool": ([["int", True]], {}, FormatError, "an int is"),
    "int-huge-json": ([["int", 2**64]], {}, FormatError, "an int is"),
    "int-json-digits": (b'[["int", ' + b"9" * 5000 + b"]]", {}, FormatError, "JSON"),
    "int-hex-small": ([["int", "ff"]], {}, FormatError, "canonical hex"),
    "int-hex-prefix": ([["int", "0x1" + "0" * 20]], {}, FormatError, "an int is"),
    "int-hex-leading-zero": (
        [["int", "0" + "1" * 20]],
        {},
        FormatError,
        "canonical hex",
    ),
    "float-int": ([["float", 1]], {}, FormatError, "a float is"),
    "float-json-overflow": (b'[["float", 1e999]]', {}, FormatError, "a float is"),
    "float-bits-finite": (
        [["float", "3ff0000000000000"]],
        {},
        FormatError,
        "a float is",
    ),
    "float-bits-short": ([["float", "7ff8"]], {}, FormatError, "a float is"),
    "complex-arity": ([["complex", 1.0]], {}, FormatError, "takes 2 argument"),
    "bool-int": ([["bool", 1]], {}, FormatError, "a bool is"),
    "str-int": ([["str", 5]], {}, FormatError, "a string node"),
    "bytes-not-base64": ([["bytes", "!!!"]], {}, FormatError, "base64"),
    "bytes-non-ascii": ([["bytes", "é"]], {}, FormatError, "base64"),
    "bytes-int": ([["bytearray", 3]], {}, FormatError, "base64"),
    "number-object": ([["np.number", "O", "00"]], {}, FormatError, "unknown NumPy"),
    "number-not-str": ([["np.number", 8, "00"]], {}, FormatError, "unknown NumPy"),
    "number-short": ([["np.number", "f8", "00"]], {}, FormatError, "16 hex digits"),
    "number-not-hex": (
        [["np.number", "i2", "zz00"]],
        {},
        FormatError,
        "hex digits",
    ),
    "objarray-shape-mismatch": (
        [["objarray", [10**12], "C", [1]], ["none"]],
        {},
        FormatError,
        r"shape \(1000000000000,\) does not match its 1 elements",
    ),
    "objarray-huge-empty": (
        [["objarray", [0, 2**62, 2**62], "C", []]],
        {},
        FormatError,
        "bad object array shape",
    ),
    "objarray-negative": (
        [["objarray", [-1], "C", []]],
        {},
        FormatError,
        "'objarray' takes",
    ),
    "objarray-too-many-dims": (
        [["objarray", [1] * 65, "C", [1]], ["none"]],
        {},
        FormatError,
        "'objarray' takes",
    ),
    "objarray-order": (
        [["objarray", [1], "K", [1]], ["none"]],
        {},
        FormatError,
        "'objarray' takes",
    ),
}


@pytest.mark.parametrize(
    ("nodes", "leaves", "error", "match"),
    list(BAD_TREES.values()),
    ids=list(BAD_TREES),
)
def test_bad_node_table(
    nodes: Any,
    leaves: dict[int, Any],
    error: type[SafenpzError],
    match: str,
    sentinel: Path,
) -> None:
    data = tree_npz(nodes, leaves, sentinel=sentinel)
    with load(data) as f:
        assert "x" in f.files
        with pytest.raises(error, match=match) as info:
            f["x"]
    assert type(info.value) is error
    assert "member 'x.tree.npy'" in str(info.value)
    assert info.value.member == "x.tree.npy"
    assert not sentinel.exists()


def test_too_many_nodes_is_a_limit_error(sentinel: Path) -> None:
    nodes = [["list", list(range(1, 50))]] + [["none"]] * 49
    data = tree_npz(nodes, sentinel=sentinel)
    with pytest.raises(LimitError, match="max_items=10"):
        get_x(data, max_items=10)
    assert_identical(get_x(data), [None] * 49)
    assert not sentinel.exists()


@pytest.mark.parametrize(
    ("table", "match"),
    [
        (np.arange(3), "1-D uint8"),
        (np.array('[["none"]]'), "1-D uint8"),
        (np.frombuffer(b'[["none"]]', np.uint8).reshape(1, -1), "1-D uint8"),
    ],
    ids=["int64", "unicode-0d", "2d"],
)
def test_node_table_member_must_be_uint8_text(
    table: np.ndarray, match: str, sentinel: Path
) -> None:
    with pytest.raises(FormatError, match=match):
        get_x(tree_npz(table, sentinel=sentinel))
    assert not sentinel.exists()


BAD_ENTRIES: dict[str, tuple[Any, dict[int, Any], dict[str, bytes]]] = {
    "leaves-huge": ({"kind": "tree", "leaves": 10**12}, {}, {}),
    "leaves-negative": ({"kind": "tree", "leaves": -1}, {}, {}),
    "leaves-bool": ({"kind": "tree", "leaves": True}, {0: A}, {}),
    "leaves-str": ({"kind": "tree", "leaves": "1"}, {0: A}, {}),
    "leaves-missing": ({"kind": "tree"}, {}, {}),
    "extra-key": ({"kind": "tree", "leaves": 0, "call": "os.system"}, {}, {}),
    "leaf-member-missing": ({"kind": "tree", "leaves": 2}, {0: A}, {}),
    "hides-a-raw-member": ({"kind": "tree", "leaves": 0}, {}, {"x.npy": _npy(A)}),
}


@pytest.mark.parametrize(
    ("entry", "leaves", "extra"), list(BAD_ENTRIES.values()), ids=list(BAD_ENTRIES)
)
def test_bad_manifest_entry(
    entry: Any, leaves: dict[int, Any], extra: dict[str, bytes], sentinel: Path
) -> None:
    data = tree_npz([["none"]], leaves, entry, sentinel=sentinel, extra=extra)
    with pytest.raises(FormatError, match=r"bad entry for 'x'|entry 'x' would hide"):
        load(data)
    assert not sentinel.exists()


def test_missing_node_table_member(sentinel: Path) -> None:
    manifest = {
        "format": "safenpz",
        "version": 1,
        "arrays": {"x": {"kind": "tree", "leaves": 0}},
    }
    data = npz_bytes({MANIFEST + ".npy": _npy(np.array(json.dumps(manifest)))})
    with pytest.raises(FormatError, match="bad entry for 'x'"):
        load(data)


def test_duplicated_leaf_member_is_refused(sentinel: Path) -> None:
    buf = io.BytesIO(tree_npz([["array", 0]], {0: A}, sentinel=sentinel))
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "a") as zf:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate
        zf.writestr("x.0.npy", _npy(A[:1]))
    data = buf.getvalue()
    with pytest.raises(FormatError, match="duplicate"):
        load(data)
    assert not sentinel.exists()


@pytest.mark.parametrize("where", ["leaf", "table"])
def test_hostile_pickle_as_a_tree_member(where: str, sentinel: Path) -> None:
    case = next(c for c in HOSTILE if c.id == "reduce-os.system-p4")
    evil = npy_bytes(case.build(str(sentinel)))
    if where == "leaf":
        data = tree_npz([["array", 0]], {0: evil}, sentinel=sentinel)
    else:
        data = tree_npz([["none"]], sentinel=sentinel)
        data = npz_bytes(
            {
                MANIFEST + ".npy": _npy(
                    np.array(
                        json.dumps(
                            {
                                "format": "safenpz",
                                "version": 1,
                                "arrays": {"x": {"kind": "tree", "leaves": 0}},
                            }
                        )
                    )
                ),
                "x.tree.npy": evil,
            }
        )
    with pytest.raises(UnsafeFileError, match=r"posix\.system"):
        get_x(data)
    assert not sentinel.exists()


@settings(max_examples=150, deadline=None)
@given(plain_data(max_leaves=8), byte_edits(max_pos=2000))
def test_edited_node_tables_raise_only_safenpz_errors(
    value: Any, edits: list[tuple[str, int, int]]
) -> None:
    data = saved(x=[value])  # a list is always a tree
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        members = {name + ".npy": _npy(f[name]) for name in f.files}
    table = members["x.tree.npy"]
    header = len(table) - len(np.load(io.BytesIO(table)).tobytes())
    text = mutate(table[header:], edits)
    members["x.tree.npy"] = _npy(np.frombuffer(text, dtype=np.uint8))
    with contextlib.suppress(SafenpzError):
        get_x(npz_bytes(members))


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.integers() | st.text(max_size=3), st.lists))
def test_arbitrary_json_node_tables_raise_only_safenpz_errors(nodes: Any) -> None:
    table = nodes if isinstance(nodes, list) else [nodes]
    with contextlib.suppress(SafenpzError):
        get_x(tree_npz(table, sentinel=Path("/nonexistent-sentinel")))


# --------------------------------------------------------------------------
# scan and info


def test_info_describes_a_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "weights.npz"
    save(path, w={"a": np.ones(2)}, x=np.arange(3))
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "w: dict" in out
    assert "x: array" in out


# --------------------------------------------------------------------------
# issue 8 review: the expanded size is counted, by object identity, before
# anything is encoded; the reader bounds the node table before parsing it


def test_an_oversized_node_table_is_refused_before_it_is_inflated(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.npz"
    save(path, w={"a": [1, 2, 3]})
    data = bytearray(path.read_bytes())
    name = b"w.tree.npy"
    claimed = 300 * 2**20  # more than 4 * MAX_TABLE_BYTES + header
    patched = 0
    pos = 0
    while (pos := data.find(name, pos + 1)) != -1:
        for sig, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
            start = pos - (30 if sig == b"PK\x03\x04" else 46)
            if data[start : start + 4] == sig:
                data[start + size_at : start + size_at + 4] = claimed.to_bytes(
                    4, "little"
                )
                patched += 1
    assert patched == 2
    with (
        load(bytes(data)) as npz,
        pytest.raises(
            FormatError, match="node table of 'w' declares 314,572,800 bytes"
        ),
    ):
        npz["w"]
