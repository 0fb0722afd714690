"""Tests for the static pickle scanner (``safenpz._pickle``, ``scan_pickle``):
the static opcode walker.

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
from safenpz import scan_pickle
from safenpz._exceptions import (
    FormatError,
    LimitError,
    SafenpzError,
    UnsafeFileError,
)
from safenpz._limits import Limits
from safenpz._pickle._decode import safe_loads
from safenpz._pickle._globals import SAFE_GLOBALS
from safenpz._pickle._opcodes import OPS
from safenpz._pickle._report import PickleReport
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
    from safenpz._pickle import _constructors

    assert set(_constructors.TABLE) == SAFE_GLOBALS


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
    # the dtype is never finished by BUILD: refused at STOP, listed all the same
    report = scan_pickle(data, strict=False)
    assert [(p.opcode, p.kind) for p in report.problems] == [("STOP", "format")]
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
    assert m.seconds < 30  # a hang detector on a shared machine, not a timing target
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
    """MARK depth and container counts are only kept on the fast path (the
    structural handlers): every container builder, every MARK-closing opcode
    that is not refused outright, and MARK itself are dispatched there."""
    from safenpz._pickle._handlers import DISPATCH, STRUCTURAL
    from safenpz._pickle._opcodes import BY_CODE, OPS

    containers = {op.name for op in OPS.values() if op.container}
    closers = {op.name for op in OPS.values() if op.pops_mark and not op.forbidden}
    names = {BY_CODE[c].name for c in STRUCTURAL}
    assert containers | closers | {"MARK"} <= names
    assert all(DISPATCH[c] is handler for c, handler in STRUCTURAL.items())


@pytest.mark.parametrize(
    "opcode",
    sorted(op.name for op in OPS.values() if op.container and op.pushes == 1),
)
def test_every_container_opcode_counts_toward_max_items(opcode: str) -> None:
    """Behavioural twin of the test above: each container opcode, given what
    it pops, makes one container (the shared empty tuple: none)."""
    op = OPS[opcode]
    before = MARK if op.pops_mark else b""
    data = proto(4) + before + b"N" * op.pops + bytes([op.code]) + STOP
    report = scan_pickle(data)
    assert report.safe
    assert report.containers == (0 if opcode == "EMPTY_TUPLE" else 1)


# --------------------------------------------------------------------------
# the abstract stack: nesting and hashing bounds (issue 8)

DEEP = 1_000_000


def _deep_tuple(depth: int) -> bytes:
    return EMPTY_TUPLE + b"\x85" * (depth - 1)  # ((((),),),) ...


DEEP_KEYS = {
    # a million-deep tuple as a dict key, a set item, a frozenset item
    "dict-key": proto(2) + b"}" + _deep_tuple(DEEP) + b"Ns" + STOP,
    "set-item": proto(4) + b"\x8f(" + _deep_tuple(DEEP) + b"\x90" + STOP,
    "frozenset-item": proto(4) + b"(" + _deep_tuple(DEEP) + b"\x91" + STOP,
}

_CHILD = """
import sys
from pathlib import Path
import safenpz
data = Path(sys.argv[1]).read_bytes()
try:
    safenpz.load(data)
except safenpz.SafenpzError as err:
    print(type(err).__name__, str(err)[:300])
"""


@pytest.mark.parametrize("name", sorted(DEEP_KEYS))
def test_deep_tuple_key_is_refused_before_it_is_hashed(
    name: str, tmp_path: Path
) -> None:
    """Hashing a deep tuple recurses in C without a recursion check: the plain
    unpickler crashes the interpreter (checked below as the control), safenpz
    must refuse the 1 MB stream before the C unpickler sees it."""
    import subprocess
    import sys

    path = tmp_path / "deep.pkl"
    path.write_bytes(DEEP_KEYS[name])
    with pytest.raises(LimitError, match=r"tuples nested deeper than max_depth=64"):
        scan_pickle(DEEP_KEYS[name], member="deep.pkl")
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("LimitError"), out.stdout
    assert "max_depth" in out.stdout
    control = subprocess.run(
        [
            sys.executable,
            "-c",
            "import pickle, sys; pickle.loads(open(sys.argv[1], 'rb').read())",
            str(path),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert control.returncode != 0  # a crash (a signal) or at least an error


def test_tuple_depth_limit_matches_the_walk() -> None:
    """Tuples ``max_depth + 1`` high are accepted (the walk's outermost level is
    depth 0), one more is refused; the limit can be raised."""
    ok = proto(2) + _deep_tuple(65) + STOP
    assert scan_pickle(ok).safe
    deep = proto(2) + _deep_tuple(66) + STOP
    with pytest.raises(LimitError, match=message_pattern("max_depth", "TUPLE1")):
        scan_pickle(deep)
    assert scan_pickle(deep, max_depth=65).safe


def _shared_tuples(levels: int, width: int) -> bytes:
    """Tuples of `width` memo-shared copies of the level below: the last one
    expands to ``width ** levels`` values while the stream stays tiny."""
    body = MARK + b"K\x01" * width + b"t" + b"q\x00"
    for level in range(1, levels):
        body += MARK + (b"h" + bytes([level - 1])) * width + b"t"
        body += b"q" + bytes([level])
    return body


def test_memo_shared_tuple_bomb_in_a_frozenset_is_refused(sentinel: Path) -> None:
    """2 KB, 100 ** 5 values to hash: refused at the tuple, by max_items."""
    data = proto(2) + _shared_tuples(5, 100) + b"(h\x04\x91" + STOP
    assert len(data) < 2100
    with (
        measure_time() as seconds,
        pytest.raises(LimitError, match=message_pattern("max_items", "TUPLE")),
    ):
        scan_pickle(data, member="bomb.pkl")
    assert seconds() < 2
    from safenpz._pickle._decode import safe_loads

    with pytest.raises(LimitError, match="max_items"):
        safe_loads(data)


def test_hashing_work_of_shared_keys_is_counted() -> None:
    """One tuple of 10**4 values used as 300 dict keys: 3 * 10**6 values to
    hash; refused under max_items=10**6, accepted above."""
    keys = b"(" + b"h\x01N" * 300 + b"u"
    data = proto(2) + _shared_tuples(2, 100) + b"}" + keys + STOP
    with pytest.raises(LimitError, match=message_pattern("max_items", "SETITEMS")):
        scan_pickle(data, max_items=10**6)
    assert scan_pickle(data, max_items=10**7).safe


def _long1(value: int) -> bytes:
    raw = pickle.encode_long(value)
    return b"\x8a" + bytes([len(raw)]) + raw


@pytest.mark.parametrize("where", ["dict-keys", "set-items", "tuple-keys"])
def test_colliding_big_int_keys_are_refused(where: str) -> None:
    """Ints k * (2**61 - 1) all hash to 0: a dict of them is quadratic to build."""
    p = 2**61 - 1
    keys = [_long1(k * p) for k in range(1, 5000)]
    if where == "dict-keys":
        body = b"}(" + b"".join(k + b"N" for k in keys) + b"u"
    elif where == "set-items":
        body = b"\x8f(" + b"".join(keys) + b"\x90"
    else:
        body = b"}(" + b"".join(k + b"\x85N" for k in keys) + b"u"
    data = proto(4) + body + STOP
    with pytest.raises(FormatError, match=r"2\*\*61"):
        scan_pickle(data)


def test_big_ints_as_values_or_few_keys_are_accepted() -> None:
    big = {k * (2**61 - 1): k for k in range(1, 100)}
    assert scan_pickle(pickle.dumps(big, protocol=2)).safe
    values = {k: k * 2**70 for k in range(10_000)}
    assert scan_pickle(pickle.dumps(values, protocol=2)).safe
    assert scan_pickle(pickle.dumps(values, protocol=0)).safe


def test_empty_frame_after_stop_is_refused() -> None:
    data = pickle.dumps([1, 2], protocol=5) + b"\x95" + bytes(8)
    with pytest.raises(FormatError, match="trailing data after STOP"):
        scan_pickle(data)


def test_trailing_whitespace_after_stop_is_accepted() -> None:
    data = pickle.dumps([1, 2], protocol=2)
    assert scan_pickle(data + b"\n").safe
    assert scan_pickle(data + b"\r\n").safe


@pytest.mark.parametrize(
    ("body", "opcode", "what"),
    [
        (b"e", "APPENDS", "without a MARK"),
        (b"a", "APPEND", "stack underflow"),
        (b"K\x01s", "SETITEM", "stack underflow"),
        (b"(\x85", "TUPLE1", "stack underflow"),
        (b"h\x05", "BINGET", "never stored"),
        (b"", "STOP", "stack underflow"),
    ],
    ids=[
        "appends-no-mark",
        "append-empty",
        "setitem",
        "tuple-over-mark",
        "get",
        "stop",
    ],
)
def test_stack_errors_are_format_errors(body: bytes, opcode: str, what: str) -> None:
    data = proto(2) + body + STOP
    with pytest.raises(FormatError, match=message_pattern(opcode, what)):
        scan_pickle(data)


def test_limit_defaults_are_load_defaults() -> None:
    import inspect

    from safenpz._limits import DEFAULT_LIMITS
    from safenpz._pickle._decode import safe_loads

    params = inspect.signature(scan_pickle).parameters
    assert params["max_items"].default == DEFAULT_LIMITS.max_items
    assert params["max_depth"].default == DEFAULT_LIMITS.max_depth
    # the decoder takes the load's one Limits object, by default load's own
    limits = inspect.signature(safe_loads).parameters["limits"]
    assert limits.default is DEFAULT_LIMITS


@contextlib.contextmanager
def measure_time():
    start = time.perf_counter()
    end: list[float] = []
    try:
        yield lambda: (end[0] if end else time.perf_counter()) - start
    finally:
        end.append(time.perf_counter())


# --------------------------------------------------------------------------
# differential: the scanner against a straightforward genops reference


def _verdict(data: bytes) -> tuple[str, str, int] | None:
    error: SafenpzError | None = None
    try:
        scan_pickle(data)
    except SafenpzError as err:
        error = err
    if error is None:
        return None
    kind = {UnsafeFileError: "unsafe", FormatError: "format", LimitError: "limit"}
    m = re.search(r"\(opcode (\S+) at byte (\d+)\)", str(error))
    assert m is not None, str(error)
    return kind[type(error)], m.group(1), int(m.group(2))


def _agree(data: bytes) -> None:
    from reference_scan import reference_scan

    want = reference_scan(data)
    got = _verdict(data)
    if want == ("format", None, None):  # genops cannot parse it
        assert got is None or got[0] in ("format", "unsafe", "limit")
        return
    assert got == want, (data[:200], got, want)


PLAIN = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4) | st.integers(), inner, max_size=4)
        | st.frozensets(st.integers() | st.text(max_size=3), max_size=4)
    ),
    max_leaves=30,
)


@FUZZ
@given(PLAIN, st.integers(min_value=0, max_value=5))
def test_scanner_agrees_with_the_reference_on_pickler_output(
    obj: object, protocol: int
) -> None:
    data = pickle.dumps(obj, protocol=protocol)
    _agree(data)
    _agree(pickle.dumps([obj, obj, (obj,)], protocol=protocol))  # memo gets


@FUZZ
@given(st.sampled_from(SEEDS), byte_edits(10_000))
def test_scanner_agrees_with_the_reference_on_mutated_pickles(
    seed: bytes, edits: list[tuple[str, int, int]]
) -> None:
    _agree(bytes(mutate(seed, edits)))


@pytest.mark.parametrize("case", HOSTILE, ids=_ids(HOSTILE))
def test_scanner_agrees_with_the_reference_on_hostile_streams(case: Hostile) -> None:
    _agree(case.build("/nonexistent/sentinel"))


@pytest.mark.parametrize(
    "data",
    [
        *DEEP_KEYS.values(),
        proto(2) + _deep_tuple(66) + STOP,
        proto(2) + _shared_tuples(5, 100) + b"(h\x04\x91" + STOP,
        proto(2) + b"]" * 100 + b"a" * 99 + STOP,
        proto(2) + b"}" + b"(K\x01" * 70 + b"t" * 70 + b"Ns" + STOP,
        proto(2) + b"(((K\x01K\x02tt0" + b"0" + STOP,
        proto(2) + b"K\x01K\x02K\x03\x87K\x04\x86]q\x00h\x00a0" + b"N" + STOP,
    ],
    ids=[
        "deep-key",
        "deep-set",
        "deep-frozenset",
        "deep",
        "bomb",
        "lists",
        "marks",
        "pop-mark",
        "mixed",
    ],
)
def test_scanner_agrees_with_the_reference_on_stack_cases(data: bytes) -> None:
    _agree(data)


@pytest.mark.parametrize("pair", [b"]0", b"}0", b"\x8f0"], ids=["list", "dict", "set"])
def test_empty_containers_popped_at_once_count_toward_max_items(pair: bytes) -> None:
    """The hostile member of issue 9 (empty containers, each popped): refused
    at the first container beyond max_items, at its exact offset, in a step."""
    data = proto(4) + pair * 5_000_000 + b"N" + STOP  # 10 MB
    start = time.perf_counter()
    with pytest.raises(
        LimitError, match=message_pattern("max_items=1000000", offset=2 + 2 * 10**6)
    ):
        scan_pickle(data, max_items=10**6)
    assert time.perf_counter() - start < 5
    report = scan_pickle(data)
    assert report.safe
    assert report.containers == 5_000_000
    assert report.opcodes["POP"] == 5_000_000


# --------------------------------------------------------------------------
# the containment graph: nesting and self-reference decided before decoding


def _self_array() -> bytes:
    """An object array whose item list holds the array itself (REDUCE + BUILD)."""
    arr = np.empty(1, dtype=object)
    arr[0] = arr
    return pickle.dumps(arr, protocol=2)


def _ordered_dict_holding_itself() -> bytes:
    from collections import OrderedDict

    od: OrderedDict[int, object] = OrderedDict()
    od[0] = [od]
    return pickle.dumps(od, protocol=2)


def _dict_in_list_in_itself() -> bytes:
    d: dict[int, object] = {}
    d[0] = [d]
    return pickle.dumps(d, protocol=2)


def _list_in_tuple_in_itself() -> bytes:
    lst: list[object] = []
    lst.append((lst,))
    return pickle.dumps(lst, protocol=4)


def _list_in_itself_protocol0() -> bytes:
    lst: list[object] = []
    lst.append(lst)
    return pickle.dumps(lst, 0)


CYCLES = {
    "list-in-itself": b"]q\x00h\x00a.",
    "list-appends-itself": b"]q\x00(K\x01h\x00e.",
    "dict-value-is-itself": b"}q\x00K\x00h\x00s.",
    "dict-setitems-itself": b"}q\x00(K\x00h\x00u.",
    "dict-in-list-in-dict": _dict_in_list_in_itself(),
    "list-in-tuple-in-list": _list_in_tuple_in_itself(),
    "object-array-holds-itself": _self_array(),
    "ordered-dict-holds-itself": _ordered_dict_holding_itself(),
    "protocol-0": _list_in_itself_protocol0(),
}


@pytest.mark.parametrize("data", CYCLES.values(), ids=CYCLES.keys())
def test_a_container_that_contains_itself_is_refused_by_the_scan(data: bytes) -> None:
    """Whatever the container kinds on the cycle, the static scan refuses it
    at STOP, before anything is decoded, as the walk would."""
    with pytest.raises(FormatError, match=message_pattern("contains itself", "STOP")):
        scan_pickle(data)
    with pytest.raises(FormatError, match="contains itself"):
        safe_loads(data)


def test_a_cycle_through_a_set_cannot_be_built() -> None:
    """A set holds only hashable items, and a tuple holding a list is not
    one: the unpickler refuses the key before any cycle exists, and so does
    the scan (a cycle through a set is impossible)."""
    data = b"]q\x00\x8f(h\x00\x85\x90a."  # L = []; {(L,)}; L.append(set)
    pattern = message_pattern("set items must be hashable", "ADDITEMS", offset=8)
    with pytest.raises(FormatError, match=pattern):
        scan_pickle(data)
    with pytest.raises(FormatError, match=pattern):
        safe_loads(data)


def _nested(kinds: str, height: int) -> object:
    """`height` containers inside one another, cycling through `kinds`
    (l: list, d: dict value, t: tuple, k: dict key tuple)."""
    obj: object = 1
    for i in range(height):
        kind = kinds[i % len(kinds)]
        if kind == "l":
            obj = [obj]
        elif kind == "d":
            obj = {"k": obj}
        elif kind == "t":
            obj = (obj,)
        else:
            obj = {(obj,) if isinstance(obj, tuple) else (1,): 2}
    return obj


@pytest.mark.parametrize("kinds", ["l", "d", "ld", "ltd", "dt"])
@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_nesting_bound_of_the_scan_is_the_walk_bound(kinds: str, protocol: int) -> None:
    """``max_depth + 1`` containers inside one another load (the walk's depth 0
    is the outermost); one more is refused by the scan, at STOP, naming
    max_depth, for lists, dicts, tuples and mixes of them."""
    max_depth = 6
    ok = pickle.dumps(_nested(kinds, max_depth + 1), protocol=protocol)
    assert scan_pickle(ok, max_depth=max_depth).safe
    assert safe_loads(ok, limits=Limits(max_depth=max_depth)) == _nested(
        kinds, max_depth + 1
    )
    deep = pickle.dumps(_nested(kinds, max_depth + 2), protocol=protocol)
    with pytest.raises(LimitError, match=message_pattern("max_depth=6", "STOP")):
        scan_pickle(deep, max_depth=max_depth)


def test_nested_setitem_and_append_runs_nest() -> None:
    """A run of SETITEMs (or APPENDs) sets each value into the one below it:
    ``}K\\x00}K\\x00}ss`` is three dicts deep, not one dict holding two."""
    dicts = proto(2) + b"}K\x00" * 3 + b"}" + b"s" * 3 + STOP
    assert scan_pickle(dicts, max_depth=3).safe
    with pytest.raises(LimitError, match="max_depth=2"):
        scan_pickle(dicts, max_depth=2)
    lists = proto(2) + b"]" * 4 + b"a" * 3 + STOP
    assert scan_pickle(lists, max_depth=3).safe
    with pytest.raises(LimitError, match="max_depth=2"):
        scan_pickle(lists, max_depth=2)


def test_shared_containers_are_not_cycles_and_the_check_is_linear() -> None:
    """Memo-shared containers (a DAG) load; the graph check takes linear time
    even when the number of paths is exponential (2**20000 here)."""
    shared = [1]
    obj = [shared, shared, {"k": shared}, (shared,), [[shared]]]
    data = pickle.dumps(obj, protocol=2)
    assert scan_pickle(data).safe
    assert safe_loads(data) == obj
    chain = proto(2) + b"]q\x00" + b"(h\x00h\x00lq\x00" * 20_000 + STOP
    with measure_time() as elapsed:
        assert scan_pickle(chain, max_depth=10**6).safe
    assert elapsed() < 5
    with pytest.raises(LimitError, match="max_depth=64"):
        scan_pickle(chain)


def test_object_arrays_are_over_estimated_by_two_levels() -> None:
    """Documented: a REDUCE result holds its args tuple and a BUILD target its
    state tuple, so an object array's items are three levels below it for the
    scan (one for the walk). An object array of lists needs max_depth=3."""
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = [1], [2]
    data = pickle.dumps(arr, protocol=2)
    assert scan_pickle(data, max_depth=3).safe
    with pytest.raises(LimitError, match=message_pattern("max_depth=2", "STOP")):
        scan_pickle(data, max_depth=2)


# --------------------------------------------------------------------------
# errors carry their location (and limit, global) as attributes


def _strict_error(data: bytes, **kwargs: object) -> SafenpzError:
    with pytest.raises(SafenpzError) as info:
        scan_pickle(data, member="evil.pkl", **kwargs)  # type: ignore[arg-type]
    return info.value


@pytest.mark.parametrize("case", HOSTILE, ids=_ids(HOSTILE))
def test_hostile_error_carries_member_opcode_offset_and_global(case: Hostile) -> None:
    data = case.build("/nonexistent/sentinel")
    want = case.expect(data)
    err = _strict_error(data)
    assert type(err) is want.error
    assert err.member == "evil.pkl"
    assert err.where.source is None
    if want.opcode is not None:
        assert err.opcode == want.opcode
    if want.offset is not None:
        assert err.offset == want.offset
    if want.qualname is not None:
        assert isinstance(err, UnsafeFileError)
        assert err.global_name == want.qualname
    # the first problem of report mode is the same, as data
    first = scan_pickle(data, member="evil.pkl", strict=False).problems[0]
    assert (first.opcode, first.offset, first.message) == (
        err.opcode,
        err.offset,
        err.message,
    )


@pytest.mark.parametrize(
    "data",
    [
        glob("os", "system") + b".",
        proto(2) + b"\xff" + STOP,
        proto(2) + MARK * 70 + STOP,
    ],
    ids=["unsafe", "format", "limit"],
)
def test_error_text_is_location_message_and_advice(data: bytes) -> None:
    """``str(err)``: ``member 'x': <message> (opcode OP at byte N). <advice>``."""
    err = _strict_error(data)
    assert err.advice
    assert str(err) == (
        f"member 'evil.pkl': {err.message} (opcode {err.opcode} at byte "
        f"{err.offset}). {err.advice}"
    )
    assert str(err) == err.where.render(err.message, err.advice)
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is type(err)
    assert str(copy) == str(err)
    assert (copy.where, copy.advice) == (err.where, err.advice)


def test_unsafe_global_names_itself() -> None:
    err = _strict_error(stream(call(glob("os", "system"), ustr("x"))))
    assert isinstance(err, UnsafeFileError)
    assert (err.global_name, err.opcode, err.offset) == ("os.system", "GLOBAL", 2)
    inst = _strict_error(MARK + b"ios\nsystem\n.")
    assert isinstance(inst, UnsafeFileError)
    assert (inst.global_name, inst.opcode, inst.offset) == ("os.system", "INST", 1)


def test_unsafe_without_a_global_name() -> None:
    """A forbidden opcode or a computed STACK_GLOBAL names no global."""
    computed = stream(b"K\x01K\x02\x93" + STOP, 4)
    for data in (ext_payload("EXT1", "/nonexistent/sentinel"), computed):
        err = _strict_error(data)
        assert isinstance(err, UnsafeFileError)
        assert err.global_name is None


LIMITS = {
    "mark-depth": (proto(2) + MARK * 70 + STOP, {}, "MARK", "max_depth", 65, 64),
    "containers": (
        pickle.dumps([[] for _ in range(50)], protocol=2),
        {"max_items": 10},
        "EMPTY_LIST",
        "max_items",
        11,
        10,
    ),
    "empty-popped": (
        proto(4) + b"]0" * 30 + b"N" + STOP,
        {"max_items": 20},
        "EMPTY_LIST",
        "max_items",
        21,
        20,
    ),
    "tuple-depth": (
        proto(2) + _deep_tuple(66) + STOP,
        {},
        "TUPLE1",
        "max_depth",
        65,
        64,
    ),
    "tuple-expansion": (
        proto(2) + _shared_tuples(3, 100) + STOP,
        {"max_items": 10**5},
        "TUPLE",
        "max_items",
        1 + 100 * (1 + 100 * (1 + 100)),  # each tuple counts itself
        10**5,
    ),
    "graph-depth": (
        pickle.dumps(_nested("l", 8), protocol=2),
        {"max_depth": 6},
        "STOP",
        "max_depth",
        7,
        6,
    ),
}


@pytest.mark.parametrize("name", LIMITS, ids=list(LIMITS))
def test_limit_error_says_which_limit_by_how_much(name: str) -> None:
    data, kwargs, opcode, limit, value, maximum = LIMITS[name]
    err = _strict_error(data, **kwargs)
    assert isinstance(err, LimitError)
    assert (err.opcode, err.limit, err.value, err.maximum) == (
        opcode,
        limit,
        value,
        maximum,
    )
    assert f"{limit}={maximum}" in err.message


def test_hash_work_limit_error_fields() -> None:
    keys = b"(" + b"h\x01N" * 300 + b"u"
    data = proto(2) + _shared_tuples(2, 100) + b"}" + keys + STOP
    err = _strict_error(data, max_items=10**6)
    assert isinstance(err, LimitError)
    assert (err.opcode, err.limit, err.maximum) == ("SETITEMS", "max_items", 10**6)
    assert isinstance(err.value, int)
    assert err.value > 10**6


def test_limits_object_sets_the_scan_limits() -> None:
    """``limits=`` (what the loader passes) takes precedence over the two
    keywords."""
    from safenpz import Limits

    data = proto(2) + MARK * 5 + b"t" * 5 + STOP
    assert scan_pickle(data, limits=Limits(max_depth=5)).safe
    with pytest.raises(LimitError, match="max_depth=4"):
        scan_pickle(data, limits=Limits(max_depth=4))
    with pytest.raises(LimitError, match="max_depth=4"):
        scan_pickle(data, max_depth=100, limits=Limits(max_depth=4))
    assert scan_pickle(data, max_depth=4, limits=Limits(max_depth=5)).safe
    lists = pickle.dumps([[] for _ in range(50)], protocol=2)
    with pytest.raises(LimitError, match="max_items=10"):
        scan_pickle(lists, limits=Limits(max_items=10))
