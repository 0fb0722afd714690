"""Tests for safenpz._pickle_scan: the static opcode walker.

The scanner is the first line of defence (and the engine of ``safenpz scan``),
so every hostile stream of :mod:`hostile` must be refused *by the scanner
itself*, with the global, the opcode and its byte offset, before any decoding.
"""

from __future__ import annotations

import contextlib
import copyreg
import pickle
import re
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostile import (
    DEPTH,
    EMPTY_TUPLE,
    EXT_CODES,
    HOSTILE,
    MARK,
    STOP,
    Hostile,
    call,
    ext_payload,
    glob,
    global_sites,
    message_pattern,
    proto,
    sglob,
    stream,
    ustr,
)
from safenpz._exceptions import (
    FormatError,
    LimitError,
    SafenpzError,
    UnsafeFileError,
)
from safenpz._pickle_scan import SAFE_GLOBALS, PickleReport, scan_pickle
from strategies import byte_edits, mutate

FUZZ = settings(max_examples=300, deadline=2000)


def _ids(cases: list[Hostile]) -> list[str]:
    return [c.id for c in cases]


# --------------------------------------------------------------------------
# hostile streams: refused statically, with global, opcode and offset


@pytest.mark.parametrize("case", HOSTILE, ids=_ids(HOSTILE))
def test_hostile_stream_is_refused_by_the_scanner(
    case: Hostile, sentinel: Path
) -> None:
    data = case.build(str(sentinel))
    want = case.expect(data)
    with pytest.raises(want.error, match=want.pattern("member 'evil.pkl'")):
        scan_pickle(data, member="evil.pkl")
    assert not sentinel.exists()


@pytest.mark.parametrize("case", HOSTILE, ids=_ids(HOSTILE))
def test_hostile_stream_report_mode_lists_the_problem(
    case: Hostile, sentinel: Path
) -> None:
    """``strict=False`` (the ``safenpz scan`` mode) never raises for unsafe
    content; it reports the first problem at the same offset and lists the
    refused global."""
    data = case.build(str(sentinel))
    want = case.expect(data)
    report = scan_pickle(data, member="evil.pkl", strict=False)
    assert isinstance(report, PickleReport)
    assert not report.safe
    unsafe = [p for p in report.problems if p.kind == "unsafe"]
    assert unsafe, report.problems
    assert (unsafe[0].opcode, unsafe[0].offset) == (want.opcode, want.offset)
    if want.qualname is not None:
        refused = [
            (f"{g.module}.{g.name}", g.opcode, g.offset)
            for g in report.globals
            if not g.allowed
        ]
        assert (want.qualname, want.opcode, want.offset) in refused
    assert not sentinel.exists()


def test_memoize_index_follows_the_c_unpickler() -> None:
    """``MEMOIZE`` stores at index *number of memo entries* (CPython's
    ``memo_len``), not *largest index + 1*. A scanner that disagrees can be
    shown ``numpy.dtype`` while the unpickler resolves ``os.system``."""
    case = next(c for c in HOSTILE if c.id == "stack_global-memoize-index-confusion")
    data = case.build("/nonexistent/sentinel")
    sites = global_sites(data)
    assert [s.qualname for s in sites] == ["os.system"]
    report = scan_pickle(data, strict=False)
    assert [(g.module, g.name) for g in report.globals] == [("os", "system")]
    assert not report.safe


@pytest.mark.parametrize("opcode", sorted(EXT_CODES), ids=sorted(EXT_CODES))
def test_extension_codes_are_refused_even_when_registered(
    opcode: str, sentinel: Path
) -> None:
    _op, code = EXT_CODES[opcode]
    data = ext_payload(opcode, str(sentinel))
    copyreg.add_extension("os", "system", code)
    try:
        with pytest.raises(
            UnsafeFileError, match=message_pattern("'x'", opcode, offset=2)
        ):
            scan_pickle(data, member="x")
        report = scan_pickle(data, strict=False)
        assert [p.opcode for p in report.problems] == [opcode]
    finally:
        copyreg.remove_extension("os", "system", code)
    assert not sentinel.exists()


def test_inst_names_its_global() -> None:
    """INST carries its class as text; the report lists it like GLOBAL."""
    data = MARK + b"ios\nsystem\n."
    report = scan_pickle(data, strict=False)
    assert ("os", "system", "INST", 1) in [
        (g.module, g.name, g.opcode, g.offset) for g in report.globals
    ]


# --------------------------------------------------------------------------
# the table


def test_safe_globals_is_the_documented_closed_table() -> None:
    modules = {m for m, _ in SAFE_GLOBALS}
    assert modules <= {
        "numpy",
        "numpy.core.multiarray",
        "numpy._core.multiarray",
        "numpy.core._multiarray_umath",
        "numpy._core._multiarray_umath",
        "numpy.core.numeric",
        "numpy._core.numeric",
        "builtins",
        "__builtin__",
        "_codecs",
        "collections",
    }
    for danger in [
        ("builtins", "eval"),
        ("builtins", "exec"),
        ("builtins", "getattr"),
        ("builtins", "__import__"),
        ("builtins", "open"),
        ("numpy", "load"),
        ("numpy", "frompyfunc"),
        ("numpy", "memmap"),
        ("numpy.core.multiarray", "array"),
        ("copyreg", "_reconstructor"),
    ]:
        assert danger not in SAFE_GLOBALS


def test_table_agrees_with_the_decoder() -> None:
    from safenpz import _unpickle

    assert set(_unpickle._TABLE) == SAFE_GLOBALS


# --------------------------------------------------------------------------
# benign streams


BENIGN = {
    "none": None,
    "ints": [0, 1, -1, 255, 65535, 2**31, 2**100, -(2**70)],
    "floats": [0.5, float("inf"), -0.0],
    "strings": ["", "a", "héllo", "x" * 300],
    "bytes": [b"", b"\x00\xff", b"y" * 300],
    "containers": {"a": (1, 2), "b": {1, 2}, "c": frozenset({3}), 4: [None]},
    "complex": 1 + 2j,
    "object-array": np.array([[1, 2], [3]], dtype=object),
    "numeric-array": np.arange(12, dtype=np.int32).reshape(3, 4),
    "dtype": np.dtype([("a", "<i4"), ("b", "<f8")]),
    "scalar": np.float32(1.5),
}


@pytest.mark.parametrize("protocol", range(6), ids=[f"p{p}" for p in range(6)])
@pytest.mark.parametrize("obj", list(BENIGN.values()), ids=list(BENIGN))
def test_pickler_output_is_safe(obj: object, protocol: int) -> None:
    data = pickle.dumps(obj, protocol=protocol)
    report = scan_pickle(data)
    assert report.safe
    assert report.length == len(data)
    assert report.protocol == (protocol if protocol >= 2 else 0)
    assert all(g.allowed for g in report.globals)
    assert sum(report.opcodes.values()) > 0


@pytest.mark.parametrize(
    "kind", [bytes, bytearray, memoryview], ids=["bytes", "bytearray", "memoryview"]
)
def test_accepts_any_bytes_like(kind: type) -> None:
    data = kind(pickle.dumps([1, 2, 3], protocol=4))
    assert scan_pickle(data).safe


def test_globals_are_listed_with_offsets() -> None:
    data = stream(
        call(sglob("numpy", "dtype"), ustr("i8"))
        + call(glob("builtins", "set"), EMPTY_TUPLE)
        + b"\x86",
        4,
    )
    report = scan_pickle(data)
    got = [(g.module, g.name, g.opcode, g.offset, g.allowed) for g in report.globals]
    assert got == [
        ("numpy", "dtype", "STACK_GLOBAL", 16, True),
        ("builtins", "set", "GLOBAL", 24, True),
    ]


def test_allowed_global_through_the_memo_is_accepted() -> None:
    """What picklers write at protocol 4: the module name memoized once and
    reused with BINGET."""
    arrays = [np.arange(3), np.arange(4.0)]
    data = pickle.dumps(arrays, protocol=4)
    assert b"h" in data  # BINGET of a memoized name
    assert scan_pickle(data).safe


# --------------------------------------------------------------------------
# format abuse


def test_frame_claiming_more_than_present_is_refused() -> None:
    data = proto(4) + b"\x95" + struct.pack("<Q", 10**9) + b"K\x01."
    with pytest.raises(FormatError, match=message_pattern("FRAME", offset=2)):
        scan_pickle(data)


def test_frames_that_fit_are_accepted() -> None:
    data = pickle.dumps(list(range(100_000)), protocol=5)
    assert data[2] == 0x95
    assert scan_pickle(data).safe


def test_huge_memo_index_is_refused_without_allocating(measure) -> None:
    data = stream(b"K\x01r\xff\xff\xff\xff")
    with measure() as m, pytest.raises(FormatError, match="LONG_BINPUT"):
        scan_pickle(data)
    assert m.seconds < 1
    assert m.peak_bytes < 1 << 20


def test_mark_depth_limit_names_the_keyword() -> None:
    data = proto(2) + MARK * DEPTH + STOP
    with pytest.raises(
        LimitError, match=message_pattern("max_depth", "MARK", offset=2 + 64)
    ):
        scan_pickle(data, max_depth=64)


def test_mark_depth_limit_can_be_raised() -> None:
    data = proto(2) + MARK * 100 + b"t" * 100 + STOP
    with pytest.raises(LimitError, match="max_depth"):
        scan_pickle(data, max_depth=99)
    assert scan_pickle(data, max_depth=100).safe


def test_container_count_limit() -> None:
    data = pickle.dumps([[] for _ in range(50)], protocol=2)
    with pytest.raises(LimitError, match="max_items"):
        scan_pickle(data, max_items=10)
    assert scan_pickle(data, max_items=51).safe


def test_format_problem_stops_report_mode() -> None:
    data = proto(2) + b"\xff" + glob("os", "system") + STOP
    report = scan_pickle(data, strict=False)
    assert [p.kind for p in report.problems] == ["format"]
    assert report.problems[0].offset == 2


def test_report_mode_collects_several_unsafe_globals() -> None:
    data = stream(
        call(glob("os", "system"), ustr("x"))
        + call(glob("subprocess", "call"), ustr("y"))
        + b"\x86"
    )
    report = scan_pickle(data, strict=False)
    names = [f"{g.module}.{g.name}" for g in report.globals if not g.allowed]
    assert names == ["os.system", "subprocess.call"]
    assert [p.kind for p in report.problems] == ["unsafe", "unsafe"]


def test_long_object_array_is_scanned_quickly() -> None:
    rows = np.empty(20_000, dtype=object)
    for i in range(len(rows)):
        rows[i] = list(range(i % 50))
    data = pickle.dumps(rows, protocol=4)
    start = time.perf_counter()
    assert scan_pickle(data).safe
    assert time.perf_counter() - start < 5


# --------------------------------------------------------------------------
# properties


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_safenpz_errors(data: bytes) -> None:
    with contextlib.suppress(SafenpzError):
        scan_pickle(data)
    report = scan_pickle(data, strict=False)  # report mode never raises
    assert report.length == len(data)


SEEDS = [
    pickle.dumps(np.array([[1, 2], [3]], dtype=object), protocol=p) for p in (2, 4, 5)
] + [pickle.dumps({"a": [1.5, b"x", (None,)]}, protocol=p) for p in (0, 3)]


@FUZZ
@given(st.sampled_from(SEEDS), byte_edits(10_000))
def test_mutated_pickles_raise_only_safenpz_errors(
    seed: bytes, edits: list[tuple[str, int, int]]
) -> None:
    data = mutate(seed, edits)
    message = ""
    try:
        report = scan_pickle(bytes(data))
    except SafenpzError as err:
        message = str(err)
    if message:
        assert re.search(r"at byte \d+", message), message
    else:
        assert report.safe


def test_every_container_and_mark_opcode_takes_the_counting_fast_path() -> None:
    """MARK depth and container counts are only kept on the fast path."""
    from safenpz._pickle_scan import _CONTAINERS, _MARK_CLOSERS, _SIMPLE

    names = {name for name, _, _ in _SIMPLE.values()}
    assert _CONTAINERS | _MARK_CLOSERS | {"MARK"} <= names
