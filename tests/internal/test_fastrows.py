"""Tests of :mod:`safenpz._pickle._fastrows`: ``decode_int_rows`` against pickle itself.

Every accepted stream is checked against what :mod:`pickle` makes of the same
bytes (flattened to values + offsets); everything else must give ``None``,
never an exception and never a wrong value.

``tests/internal/data/fastrows_np1.npy`` was written by NumPy 1.26.4 (``np.save``,
protocol 3, ``numpy.core.multiarray`` spelling)::

    r = [5, 300, 70000]
    rows = [[], [7], list(range(1001)),
            [-1, -2**31, 2**31, 2**62, -2**63, 2**63 - 1], r, r, [0]]
    a = np.empty(len(rows), dtype=object)
    for i, x in enumerate(rows): a[i] = x
    np.save("fastrows_np1.npy", a)
"""

from __future__ import annotations

import builtins
import io
import itertools
import pickle
import pickletools
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile import HOSTILE, MALFORMED, py2_int_list, py2_object_array
from safenpz._pickle import _fastrows
from safenpz._pickle._fast_header import _HANDLERS
from safenpz._pickle._fast_probe import BODY, HEADER, never_int_rows
from safenpz._pickle._fast_tokens import BODY_OPS, LEN, LEN_FAST, PAD, Reject, tokenise
from safenpz._pickle._fastrows import IntRows, decode_int_rows
from safenpz._pickle._opcodes import code

DATA = Path(__file__).parent / "data"
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
PROTOCOLS = (2, 3, 4, 5)


# --------------------------------------------------------------------------
# the probe before the fast path (safenpz._pickle._fast_probe) never refuses a
# stream the fast path takes: checked on every stream every test here decodes


@pytest.fixture(autouse=True, scope="module")
def _probe_agrees() -> Any:
    real = _fastrows._decode

    def checked(data: Any) -> IntRows:
        rows = real(data)
        if never_int_rows(data):  # decode_int_rows turns this into None
            msg = "the probe refused a stream the fast path takes"
            raise AssertionError(msg)
        return rows

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_fastrows, "_decode", checked)
        yield


def test_the_probe_allows_every_opcode_the_fast_path_reads() -> None:
    header = {c for c, handler in enumerate(_HANDLERS) if handler is not None}
    body = {code(name) for name in BODY_OPS}
    frames = {code("PROTO"), code("FRAME")}
    assert header | frames <= HEADER
    assert body | {code("TUPLE"), code("BUILD"), code("STOP"), code("FRAME")} == BODY


@pytest.mark.parametrize("p", [0, *PROTOCOLS])
@pytest.mark.parametrize(
    "rows",
    [[{"a": 1}], [[1.5]], [["x"], [2]], ["s"], [None], [[1, 2], [3]], [[]], []],
    ids=[
        "dict",
        "float-row",
        "str-row",
        "str",
        "none",
        "int-rows",
        "empty-row",
        "no-row",
    ],
)
def test_the_probe_refuses_early_what_it_can(rows: list[Any], p: int) -> None:
    """The first element shows it; protocol 0 is text."""
    data = pickle.dumps(obj_array(rows), protocol=p)
    expected = p == 0 or rows not in ([[1, 2], [3]], [[]], [])
    assert never_int_rows(data) is expected
    assert never_int_rows(memoryview(data)) is expected


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80", b"\x80\x04\x95", b"\x80\x02T\xff\xff\xff\xff", b"cnumpy\n"],
    ids=["empty", "proto-cut", "frame-cut", "negative-length", "global-cut"],
)
def test_the_probe_cannot_tell_from_truncated_streams(data: bytes) -> None:
    assert never_int_rows(data) is False


# --------------------------------------------------------------------------
# helpers


def obj_array(rows: list[Any], shape: tuple[int, ...] | None = None) -> np.ndarray:
    arr = np.empty(len(rows), dtype=object)
    for i, row in enumerate(rows):
        arr[i] = row
    return arr if shape is None else arr.reshape(shape)


def flatten(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """values + offsets of an object array of int lists, rows in C order."""
    rows = list(arr.ravel(order="C"))
    values = np.array([x for row in rows for x in row], dtype=np.int64)
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum([len(row) for row in rows], out=offsets[1:])
    return values, offsets


# NumPy 2 moved numpy.core to numpy._core; the tests run on both majors
_RECONSTRUCT = pickle.loads(pickle.dumps(np.zeros(1), protocol=2)).__reduce__()[0]
_CORE = _RECONSTRUCT.__module__.encode()  # b"numpy.core.multiarray" or "numpy._core..."

_ORACLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): __import__("_codecs").encode,
}


class _Oracle(pickle.Unpickler):
    """The reference: the C unpickler, limited to the globals of the fast path."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ORACLE_GLOBALS[module, name]
        except KeyError:
            msg = f"{module}.{name}"
            raise pickle.UnpicklingError(msg) from None


def oracle(data: bytes) -> np.ndarray:
    return _Oracle(io.BytesIO(data), encoding="latin1").load()


def assert_same(got: IntRows | None, arr: np.ndarray) -> None:
    assert got is not None
    values, offsets = flatten(arr)
    assert got.shape == arr.shape
    assert got.values.dtype == np.int64
    assert got.offsets.dtype == np.int64
    np.testing.assert_array_equal(got.values, values, strict=True)
    np.testing.assert_array_equal(got.offsets, offsets, strict=True)


def check_stream(data: bytes) -> IntRows | None:
    """decode_int_rows(data); if it accepts, pickle must agree exactly."""
    got = decode_int_rows(data)
    if got is not None:
        arr = oracle(data)
        assert isinstance(arr, np.ndarray)
        assert arr.dtype == object
        for row in arr.ravel():
            assert type(row) is list
            assert all(type(x) is int for x in row)
        assert_same(got, arr)
    return got


def npy_payload(arr: np.ndarray) -> bytes:
    """What np.save writes after the .npy header."""
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    buf.seek(0)
    version = np.lib.format.read_magic(buf)
    if version == (1, 0):
        np.lib.format.read_array_header_1_0(buf)
    else:
        np.lib.format.read_array_header_2_0(buf)
    return buf.read()


def frames_of(data: bytes) -> tuple[bytes, list[bytes]]:
    """(PROTO bytes, frame payloads) of a framed stream."""
    assert data[2] == 0x95
    head, p, out = data[:2], 2, []
    while p < len(data):
        assert data[p] == 0x95
        (n,) = struct.unpack_from("<Q", data, p + 1)
        out.append(data[p + 9 : p + 9 + n])
        p += 9 + n
    return head, out


def framed(head: bytes, payload: bytes, cuts: list[int]) -> bytes:
    """Re-frame `payload`, starting a new frame at every offset in `cuts`."""
    out = bytearray(head)
    bounds = [0, *sorted(cuts), len(payload)]
    for a, b in itertools.pairwise(bounds):
        out += b"\x95" + struct.pack("<Q", b - a) + payload[a:b]
    return bytes(out)


def op_starts(data: bytes) -> list[int]:
    return [pos for _, _, pos in pickletools.genops(data) if pos is not None]


def other_spelling(data: bytes) -> bytes:
    """The same stream with the other NumPy major's module spelling
    (``numpy.core.multiarray`` <-> ``numpy._core.multiarray``)."""
    one, two = b"numpy.core.multiarray", b"numpy._core.multiarray"
    old, new_name = (two, one) if two in data else (one, two)
    if data[1] < 4:
        new = data.replace(b"c" + old + b"\n", b"c" + new_name + b"\n")
    else:
        short = b"\x8c" + bytes([len(old)]) + old
        assert data.count(short) == 1
        new = data.replace(short, b"\x8c" + bytes([len(new_name)]) + new_name)
        # the global sits in the first frame, whose length changed by one byte
        (n,) = struct.unpack_from("<Q", new, 3)
        delta = len(new_name) - len(old)
        new = new[:3] + struct.pack("<Q", n + delta) + new[11:]
    assert new != data
    return new


def _put(i: int) -> bytes:
    return b"q" + bytes([i]) if i < 256 else b"r" + struct.pack("<I", i)


def _get(i: int) -> bytes:
    return b"h" + bytes([i]) if i < 256 else b"j" + struct.pack("<I", i)


def py2_style(data: bytes) -> bytes:
    """Rewrite a Python 3 protocol-2 stream the way Python 2 + NumPy 1.x wrote
    it: ``b'b'`` and short ``str`` as ``SHORT_BINSTRING`` (instead of
    ``_codecs.encode(...)`` and ``BINUNICODE``), memo renumbered."""
    ops: list[tuple[Any, Any, Any]] = list(pickletools.genops(data))
    out = bytearray()
    memo: dict[int, int] = {}
    i = 0
    while i < len(ops):
        op, arg, pos = ops[i]
        end = ops[i + 1][2] if i + 1 < len(ops) else len(data)
        if op.name == "GLOBAL" and arg == "_codecs encode":
            # GLOBAL PUT 'b' PUT 'latin1' PUT TUPLE2 PUT REDUCE (PUT)
            assert [o.name for o, _, _ in ops[i : i + 9]][-1] == "REDUCE"
            text = ops[i + 2][1]
            out += b"U" + bytes([len(text)]) + text.encode("latin-1")
            i += 9
            continue
        if op.name in ("BINPUT", "LONG_BINPUT"):
            memo[arg] = len(memo)
            out += _put(memo[arg])
        elif op.name in ("BINGET", "LONG_BINGET"):
            out += _get(memo[arg])
        elif op.name == "BINUNICODE" and arg.isascii() and len(arg) < 256:
            out += b"U" + bytes([len(arg)]) + arg.encode("ascii")
        else:
            out += data[pos:end]
        i += 1
    return bytes(out)


# --------------------------------------------------------------------------
# strategies

ints = st.one_of(
    st.integers(0, 255),
    st.integers(256, 65535),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(INT64_MIN, INT64_MAX),
)
rows_st = st.one_of(
    st.lists(ints, max_size=12),
    st.lists(ints, min_size=1, max_size=1),
    st.builds(lambda v, n: [v] * n, ints, st.integers(995, 2010)),
    st.builds(lambda n: list(range(n)), st.integers(990, 1010)),
)


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    rows: list[list[int]] = draw(st.lists(rows_st, max_size=12))
    # share some row objects (the pickler writes a memo GET for them)
    for _ in range(draw(st.integers(0, 3))):
        if rows:
            rows.insert(
                draw(st.integers(0, len(rows))),
                rows[draw(st.integers(0, len(rows) - 1))],
            )
    return obj_array(rows)


SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# --------------------------------------------------------------------------
# accepted streams


@SETTINGS
@given(arrays())
def test_matches_pickle_all_protocols(arr: np.ndarray) -> None:
    for p in PROTOCOLS:
        data = pickle.dumps(arr, protocol=p)
        assert_same(decode_int_rows(data), pickle.loads(data))
        assert_same(decode_int_rows(other_spelling(data)), arr)
    assert_same(decode_int_rows(npy_payload(arr)), arr)
    assert_same(decode_int_rows(py2_style(pickle.dumps(arr, protocol=2))), arr)


@pytest.mark.parametrize("p", PROTOCOLS)
@pytest.mark.parametrize(
    "rows",
    [
        [],
        [[]],
        [[], []],
        [[1]],
        [[0], [], [255], [256], [65535], [65536]],
        [list(range(999))],
        [list(range(1000))],
        [list(range(1001))],
        [list(range(2001)), [3]],
        [[7] * 2500, []],
        [[-1, -255, -256, -65536, -(2**31), 2**31 - 1]],
        [[2**31, -(2**31) - 1, 2**40, -(2**40), 2**62, INT64_MIN, INT64_MAX]],
        [[75] * 40, [77] * 40, [0x4B4B] * 30],  # argument bytes that look like opcodes
    ],
    ids=lambda r: f"{len(r)}rows",
)
def test_edge_cases(rows: list[list[int]], p: int) -> None:
    arr = obj_array(rows)
    data = pickle.dumps(arr, protocol=p)
    got = decode_int_rows(data)
    assert_same(got, arr)
    assert got is not None
    assert got.fortran_order is False
    assert got.values.flags.c_contiguous
    assert got.values.flags.writeable


@pytest.mark.parametrize("p", PROTOCOLS)
def test_shared_rows(p: int) -> None:
    r, s = [1, 2, 3], [70000]
    arr = obj_array([r, r, [], s, r, s, s])
    data = pickle.dumps(arr, protocol=p)
    assert b"h" in data[data.index(b"]") :]  # really memo GETs
    assert_same(decode_int_rows(data), arr)
    many = obj_array([r] * 3000)  # GETs of four bytes (LONG_BINGET) too
    assert_same(decode_int_rows(pickle.dumps(many, protocol=p)), many)


@pytest.mark.parametrize("p", PROTOCOLS)
def test_shapes_and_order(p: int) -> None:
    rows = [[i] * (i % 3) for i in range(12)]
    c2d = obj_array(rows, (3, 4))
    f2d = np.asfortranarray(c2d)
    c3d = obj_array(rows, (2, 3, 2))
    zero_d = np.empty((), dtype=object)
    zero_d[()] = [1, 2]
    empty2d = np.empty((0, 3), dtype=object)
    for arr in (c2d, f2d, c3d, zero_d, empty2d):
        got = decode_int_rows(pickle.dumps(arr, protocol=p))
        assert_same(got, arr)
        assert got is not None
        assert got.fortran_order == (arr.ndim > 1 and not arr.flags.c_contiguous)


def test_numpy1_fixture() -> None:
    path = DATA / "fastrows_np1.npy"
    with path.open("rb") as f:
        assert np.lib.format.read_magic(f) == (1, 0)
        np.lib.format.read_array_header_1_0(f)
        data = f.read()
    assert data[:2] == b"\x80\x03"
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in data
    arr = np.load(path, allow_pickle=True)  # our own trusted fixture
    assert_same(decode_int_rows(data), arr)
    assert_same(decode_int_rows(bytearray(data)), arr)
    assert_same(decode_int_rows(memoryview(data)), arr)


def test_python2_streams() -> None:
    rows = [[1, 2, 3], [], [300], [2**31, -(2**40)], list(range(1500))]
    # as assembled by hand in hostile.py (no memo, TUPLE for the shape)
    data = py2_object_array([py2_int_list(r) for r in rows])
    assert b"Ub" in data.replace(b"U\x01b", b"Ub")
    assert_same(decode_int_rows(data), pickle.loads(data, encoding="latin1"))
    # as Python 2's cPickle wrote it (memo PUTs, SHORT_BINSTRING)
    arr = obj_array(rows)
    data = py2_style(pickle.dumps(arr, protocol=2))
    assert b"_codecs" not in data
    assert b"U\x01b" in data
    assert b"U\x02O8" in data
    pickletools.dis(data, out=io.StringIO())
    assert_same(decode_int_rows(data), arr)


def test_many_lanes_and_resync() -> None:
    rng = np.random.default_rng(5)
    lengths = rng.integers(0, 300, 3000)
    ids = np.minimum(rng.zipf(1.2, lengths.sum()), 88586)
    offs = np.concatenate([[0], np.cumsum(lengths)])
    rows = [ids[a:b].tolist() for a, b in itertools.pairwise(offs)]
    # runs that keep a lane on the wrong opcode chain for a whole block
    rows[100] = [75] * 3000  # b"KKKK...": every second byte looks like BININT1
    rows[200] = [0x4D4D] * 2000  # b"MMM..."
    rows[300] = [0x4A4A4A4A] * 1000  # b"JJJJJ..."
    arr = obj_array(rows)
    for p in PROTOCOLS:
        assert_same(decode_int_rows(pickle.dumps(arr, protocol=p)), arr)


def test_long_trap_is_never_wrong() -> None:
    # a run of b"K" spanning very many blocks may be refused, never misread
    arr = obj_array([[1, 2], [75] * 200_000, [3]])
    for p in (2, 4):
        data = pickle.dumps(arr, protocol=p)
        got = decode_int_rows(data)
        if got is not None:
            assert_same(got, arr)


# --------------------------------------------------------------------------
# the lane tokeniser against a plain sequential walk


def _reference_tokens(buf: bytes, s: int, m: int, table: np.ndarray) -> list[int]:
    out, p = [], s
    while p < m:
        out.append(p)
        n = int(table[buf[p]])
        if n == 0 and buf[p] == 0x8A:  # LONG1
            k = buf[p + 1]
            n = 2 + k if k <= 8 else 1
        elif n == 0:  # text INT / LONG: up to the newline within 22 bytes
            nl = buf.find(b"\n", p + 1, p + 23)
            n = nl - p + 1 if nl >= 0 else 1
        p += n
    return out


@settings(max_examples=150, deadline=None)
@given(
    st.binary(min_size=1, max_size=30_000).filter(lambda b: len(b) > 0),
    st.sampled_from([b"", b"KKKKKKKKK", b"MMMMMMM", b"JJJJJJJ", b"K(eq]\x8a\x03"]),
    st.integers(0, 200),
)
def test_tokenise_matches_sequential_walk(raw: bytes, motif: bytes, reps: int) -> None:
    data = raw[: len(raw) // 2] + motif * reps + raw[len(raw) // 2 :]
    m = len(data)
    buf = np.frombuffer(data + bytes(PAD), np.uint8)
    for table in (LEN, LEN_FAST):
        want = _reference_tokens(data + bytes(PAD), 0, m, table)
        try:
            got = tokenise(buf, m, 0, table)
        except Reject:
            continue
        assert got.tolist() == want


def test_tokenise_resyncs_on_random_bytes() -> None:
    rng = np.random.default_rng(0)
    for size in (100, 5_000, 200_000):
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        buf = np.frombuffer(data + bytes(PAD), np.uint8)
        got = tokenise(buf, size, 0, LEN)  # must not be refused
        assert got.tolist() == _reference_tokens(data + bytes(PAD), 0, size, LEN)


# --------------------------------------------------------------------------
# refused streams


@pytest.mark.parametrize("p", PROTOCOLS)
@pytest.mark.parametrize(
    "rows",
    [
        [[1.0]],
        [[1, 2.5]],
        [["a"]],
        [[b"a"]],
        [[(1,)]],
        [[True]],
        [[1, False]],
        [[None]],
        [[[1]]],
        [[1, []]],
        [[{}]],
        [[np.int64(3)]],
        [[2**63]],
        [[INT64_MIN - 1]],
        [[2**100]],
        [(1, 2)],
        [None],
        [7],
        ["abc"],
        [{1: 2}],
        [[1], (2,)],
    ],
    ids=repr,
)
def test_other_elements_refused(rows: list[Any], p: int) -> None:
    data = pickle.dumps(obj_array(rows), protocol=p)
    assert decode_int_rows(data) is None


def test_other_payloads_refused() -> None:
    for value in (
        [[1, 2]],
        (1, 2),
        np.arange(3),
        np.array([1.5]),
        np.array(["a"], dtype=object),
        np.array([[1], [2]], dtype=np.int64),
        np.ma.masked_array(obj_array([[1]])),
        np.array([b"ab"]),
    ):
        for p in PROTOCOLS:
            assert decode_int_rows(pickle.dumps(value, protocol=p)) is None, value
    assert decode_int_rows(pickle.dumps(obj_array([[1]]), protocol=0)) is None


def test_hostile_catalogue_refused(tmp_path: Path) -> None:
    sentinel = tmp_path / "sentinel"
    for case in HOSTILE:
        assert decode_int_rows(case.build(str(sentinel))) is None, case.id
    for bad in MALFORMED:
        assert decode_int_rows(bad.data) is None, bad.id
    assert not sentinel.exists()


def test_global_outside_the_table() -> None:
    arr = obj_array([[1, 2], [3]])
    for p in (2, 3):
        data = pickle.dumps(arr, protocol=p)
        for old, new in [
            (b"cnumpy\nndarray\n", b"cos\nsystem\n"),
            (b"cnumpy\ndtype\n", b"cos\nsystem\n"),
            (b"c" + _CORE + b"\n_reconstruct\n", b"cos\nsystem\n"),
            (b"cnumpy\nndarray\n", b"cnumpy\nmatrix\n"),
            (b"cnumpy\nndarray\n", b"cnumpy.ma\nMaskedArray\n"),
        ]:
            assert old in data
            assert decode_int_rows(data.replace(old, new)) is None
    data = pickle.dumps(arr, protocol=4)
    assert decode_int_rows(data.replace(b"\x8c\x07ndarray", b"\x8c\x07ndarraz")) is None


def test_nothing_is_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    good = pickle.dumps(obj_array([[1, 2], []]), protocol=2)
    bad = good.replace(b"cnumpy\nndarray\n", b"csafenpz_canary\nboom\n")
    assert decode_int_rows(good) is not None  # warm up lazy imports of NumPy

    def no_import(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(args[0])

    monkeypatch.setattr(builtins, "__import__", no_import)
    assert decode_int_rows(good) is not None
    assert decode_int_rows(bad) is None
    monkeypatch.undo()
    assert "safenpz_canary" not in sys.modules


@pytest.mark.parametrize("p", PROTOCOLS)
def test_every_prefix_refused(p: int) -> None:
    data = pickle.dumps(obj_array([[1, 300], [], [70000, 2**40], [5]]), protocol=p)
    assert decode_int_rows(data) is not None
    for n in range(len(data)):
        assert decode_int_rows(data[:n]) is None, n


@pytest.mark.parametrize("p", PROTOCOLS)
def test_trailing_bytes_refused(p: int) -> None:
    data = pickle.dumps(obj_array([[1, 2], [3]]), protocol=p)
    for extra in (b"\x00", b".", b"N.", data):
        assert decode_int_rows(data + extra) is None


def test_claimed_lengths_refused() -> None:
    arr = obj_array([[1, 2], [3]])
    data = pickle.dumps(arr, protocol=4)
    assert data[2] == 0x95
    huge = data[:3] + struct.pack("<Q", 2**62) + data[11:]
    assert decode_int_rows(huge) is None
    long_by_one = data[:3] + struct.pack("<Q", len(data) - 10) + data[11:]
    assert decode_int_rows(long_by_one) is None
    p2 = pickle.dumps(arr, protocol=2)
    # BINUNICODE 'O8' claiming 2**31 bytes
    assert b"X\x02\x00\x00\x00O8" in p2
    assert (
        decode_int_rows(p2.replace(b"X\x02\x00\x00\x00O8", b"X\x00\x00\x00\x80O8"))
        is None
    )
    # a LONG1 in a row claiming 255 bytes
    bad = obj_array([[2**40]])
    p2 = pickle.dumps(bad, protocol=2)
    assert b"\x8a\x06" in p2
    assert decode_int_rows(p2.replace(b"\x8a\x06", b"\x8a\xff")) is None
    # a LONG_BINPUT far beyond anything a pickler writes
    rows = obj_array([[i] for i in range(300)])
    p2 = pickle.dumps(rows, protocol=2)
    assert b"r\x00\x01\x00\x00" in p2
    assert (
        decode_int_rows(p2.replace(b"r\x00\x01\x00\x00", b"r\xff\xff\xff\xff", 1))
        is None
    )


def test_shape_must_match_rows() -> None:
    data = pickle.dumps(obj_array([[1], [2], [3]]), protocol=2)
    assert b"K\x03\x85" in data
    for shape in (b"K\x02\x85", b"K\x04\x85", b"K\x01K\x02\x86", b")"):
        assert decode_int_rows(data.replace(b"K\x03\x85", shape, 1)) is None
    assert decode_int_rows(data.replace(b"K\x03\x85", b"K\x01K\x03\x86", 1)) is not None


def test_memo_indices_must_be_sequential() -> None:
    data = pickle.dumps(obj_array([[1], [2]]), protocol=2)
    # pickle itself does not care (nothing reads that entry); the fast path does
    assert b"]q\x12K\x01a" in data
    changed = data.replace(b"]q\x12K\x01a", b"]q\xf0K\x01a")
    assert pickle.loads(changed).shape == (2,)
    assert decode_int_rows(changed) is None


def test_frames_must_start_on_opcodes() -> None:
    arr = obj_array([[i, 300 * i] for i in range(40)])
    data = pickle.dumps(arr, protocol=5)
    head, frames = frames_of(data)
    payload = b"".join(frames)
    starts = [s - 2 for s in op_starts(head + payload) if s > 2]
    # frames cut at opcode boundaries decode
    cuts = starts[5::37][:10]
    assert_same(decode_int_rows(framed(head, payload, cuts)), arr)
    # a frame cut inside an opcode (the C unpickler would read the frame
    # header as the opcode's argument; the pure-Python one refuses): refused
    inside = sorted(set(range(1, len(payload))) - set(starts))
    for cut in inside[::7]:
        assert decode_int_rows(framed(head, payload, [cut])) is None, cut


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    check_stream(data)
    check_stream(b"\x80\x04" + data)


_SEEDS = [
    pickle.dumps(obj_array([[1, 300], [], [70000, -5, 2**40], [5]]), protocol=p)
    for p in PROTOCOLS
] + [py2_style(pickle.dumps(obj_array([[1, 2], [3]]), protocol=2))]


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(_SEEDS),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=3),
    st.integers(0, 3),
)
def test_mutated_streams(seed: bytes, edits: list[tuple[int, int]], cut: int) -> None:
    """Byte edits: refused, or decoded exactly like pickle decodes them."""
    data = bytearray(seed)
    for pos, value in edits:
        data[pos % len(data)] = value
    check_stream(bytes(data))
    if cut:
        check_stream(bytes(data[:-cut]))


def test_mutated_large_streams() -> None:
    """Edits deep inside a body that needs many lanes: refused or exact."""
    rng = np.random.default_rng(7)
    rows = [rng.integers(0, 90_000, rng.integers(0, 200)).tolist() for _ in range(600)]
    rows[10] = [75] * 3000
    for p in (2, 4):
        data = pickle.dumps(obj_array(rows), protocol=p)
        assert len(data) > 100_000
        for pos in rng.integers(0, len(data), 12).tolist():
            for value in (0x4B, 0x28, 0x65, 0x5D, 0x8A, 0x00):
                changed = bytearray(data)
                changed[pos] = value
                check_stream(bytes(changed))


def test_result_is_frozen_and_owned() -> None:
    data = bytearray(pickle.dumps(obj_array([[1, 2], [3]]), protocol=4))
    got = decode_int_rows(data)
    assert got is not None
    with pytest.raises(AttributeError):
        got.shape = (5,)
    data[:] = bytes(len(data))  # the result does not share the input's memory
    np.testing.assert_array_equal(got.values, [1, 2, 3])
    np.testing.assert_array_equal(got.offsets, [0, 2, 3])
