"""Tests for safenpz._pickle._decode: closed-table decoding of pickle streams.

Hostile streams (each would create a sentinel file under plain ``pickle``)
must raise the exact safenpz error and leave no sentinel; the control tests
prove, in a subprocess, that the same bytes do create it under ``pickle.loads``.
Benign streams written by the real pickler (protocols 0-5) and by Python 2 +
NumPy 1.x must decode exactly as ``pickle.loads`` decodes them.
"""

from __future__ import annotations

import contextlib
import copyreg
import gc
import pickle
import re
import struct
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostile import (
    BUILD,
    EMPTY_DICT,
    EMPTY_TUPLE,
    EXT_CODES,
    HOSTILE,
    MALFORMED,
    MARK,
    NEWFALSE,
    NEWTRUE,
    NONE,
    PY2_OBJECT_DTYPE,
    Hostile,
    Malformed,
    binstr,
    bstr,
    call,
    ext_payload,
    glob,
    intop,
    lst,
    message_pattern,
    obj_array,
    proto,
    py2_array,
    py2_dtype,
    py2_int_list,
    py2_object_array,
    run_plain_pickle,
    sglob,
    shared_row_array,
    stream,
    tup,
    ustr,
)
from identical import assert_identical
from safenpz import scan_pickle
from safenpz._exceptions import (
    FormatError,
    LimitError,
    SafenpzError,
    UnsafeFileError,
    Where,
)
from safenpz._limits import Limits
from safenpz._pickle import _array_state, _constructors, _context, _decode
from safenpz._pickle._decode import safe_loads
from strategies import byte_edits, mutate

FUZZ = settings(max_examples=300, deadline=2000)
MEMBER = "payload.pkl"

# --------------------------------------------------------------------------
# hostile streams


def _ids(cases: list[Hostile]) -> list[str]:
    return [c.id for c in cases]


@pytest.mark.parametrize("case", HOSTILE, ids=_ids(HOSTILE))
def test_hostile_stream_raises_and_runs_nothing(case: Hostile, sentinel: Path) -> None:
    data = case.build(str(sentinel))
    want = case.expect(data)
    with pytest.raises(want.error, match=want.pattern(f"member '{MEMBER}'")):
        safe_loads(data, member=MEMBER)
    assert not sentinel.exists()
    assert gc.isenabled()


RUNNABLE = [c for c in HOSTILE if c.runs]


@pytest.mark.parametrize("case", RUNNABLE, ids=_ids(RUNNABLE))
def test_control_plain_pickle_runs_the_payload(case: Hostile, sentinel: Path) -> None:
    """The payloads are real: plain pickle (in a subprocess) creates the file."""
    data = case.build(str(sentinel))
    run_plain_pickle(data, case.prelude)
    assert sentinel.exists()


@pytest.mark.parametrize("opcode", sorted(EXT_CODES), ids=sorted(EXT_CODES))
def test_extension_code_registered_for_os_system(opcode: str, sentinel: Path) -> None:
    _op, code = EXT_CODES[opcode]
    data = ext_payload(opcode, str(sentinel))
    copyreg.add_extension("os", "system", code)
    try:
        with pytest.raises(
            UnsafeFileError, match=message_pattern(MEMBER, opcode, offset=2)
        ):
            safe_loads(data, member=MEMBER)
    finally:
        copyreg.remove_extension("os", "system", code)
    assert not sentinel.exists()
    # control: with the same registration, plain pickle runs os.system
    run_plain_pickle(
        data, f"import copyreg; copyreg.add_extension('os', 'system', {code})"
    )
    assert sentinel.exists()


@pytest.mark.parametrize("case", MALFORMED, ids=[m.id for m in MALFORMED])
def test_malformed_stream_is_refused_quickly(case: Malformed, measure) -> None:
    want = case.expect(case.data)
    with measure() as m, pytest.raises(want.error, match=want.pattern(MEMBER)):
        safe_loads(case.data, member=MEMBER)
    # a hang detector, not a speed target (tracemalloc is on and CI is shared):
    # these inputs take well under a second alone
    assert m.seconds < 30
    # nothing allocated after what a header claims (100k-deep inputs are ~200 KB,
    # their decoded containers a few tens of MB at most)
    assert m.peak_bytes < 64 * 2**20
    assert gc.isenabled()


@pytest.mark.parametrize(
    "data",
    [
        stream(b"K\x01r\xff\xff\xff\xff"),
        stream(b"\x8d" + struct.pack("<Q", 2**62) + b"abc", 4),
        stream(b"\x8e" + struct.pack("<Q", 2**40) + b"abc", 4),
        proto(4) + b"\x95" + struct.pack("<Q", 10**9) + b"K\x01.",
    ],
    ids=[
        "long_binput-0xffffffff",
        "binunicode8-2**62",
        "binbytes8-2**40",
        "frame-claims-1GB",
    ],
)
def test_claimed_sizes_allocate_nothing(data: bytes, measure) -> None:
    with measure() as m, pytest.raises(FormatError):
        safe_loads(data)
    assert m.seconds < 30  # a hang detector on a shared machine, not a timing target
    assert m.peak_bytes < 2**20


# --------------------------------------------------------------------------
# the constructors: immutable, validating, never returned as values


def test_build_cannot_set_attributes_through_dict_state() -> None:
    for attr in ("__code__", "__defaults__", "__dict__", "_fn"):
        data = stream(
            glob("numpy", "dtype") + EMPTY_DICT + ustr(attr) + intop(1) + b"s" + BUILD
        )
        with pytest.raises(FormatError, match=MEMBER):
            safe_loads(data, member=MEMBER)


@pytest.mark.parametrize("attr", ["_fn", "__class__"])
def test_build_cannot_set_attributes_through_slot_state(attr: str) -> None:
    data = stream(
        glob("numpy", "dtype")
        + NONE
        + EMPTY_DICT
        + ustr(attr)
        + glob("numpy", "ndarray")
        + b"s\x86"
        + BUILD
    )
    with pytest.raises(FormatError, match=message_pattern(f"'{MEMBER}'", attr)):
        safe_loads(data, member=MEMBER)


@pytest.mark.parametrize(
    "body",
    [
        glob("numpy", "dtype"),
        glob("numpy", "ndarray"),
        lst(glob("builtins", "set")),
        EMPTY_DICT + ustr("k") + glob("numpy._core.multiarray", "_reconstruct") + b"s",
        tup(glob("_codecs", "encode")),
        EMPTY_DICT + glob("builtins", "complex") + intop(1) + b"s",
    ],
    ids=["top-level", "ndarray", "in-list", "dict-value", "in-tuple", "dict-key"],
)
def test_global_stored_as_a_value_is_refused(body: bytes) -> None:
    with pytest.raises(FormatError, match=MEMBER):
        safe_loads(stream(body), member=MEMBER)


def test_global_stored_as_object_array_element_is_refused() -> None:
    data = py2_object_array([glob("numpy", "dtype")])
    with pytest.raises(FormatError, match="as a value"):
        safe_loads(data)


def test_ndarray_may_not_be_called() -> None:
    data = stream(call(glob("numpy", "ndarray"), tup(intop(3))))
    with pytest.raises(FormatError, match="may not be called"):
        safe_loads(data)


@pytest.mark.parametrize(
    "cls",
    [
        glob("numpy", "dtype"),
        glob("builtins", "set"),
        glob("collections", "OrderedDict"),
    ],
    ids=["numpy.dtype", "builtins.set", "collections.OrderedDict"],
)
def test_reconstruct_only_builds_ndarray(cls: bytes) -> None:
    data = stream(
        call(
            glob("numpy.core.multiarray", "_reconstruct"),
            cls,
            tup(intop(0)),
            bstr(b"b"),
        )
    )
    with pytest.raises(
        FormatError, match=r"_reconstruct may only build numpy\.ndarray"
    ):
        safe_loads(data)


def test_scalar_with_object_dtype_is_refused() -> None:
    data = stream(
        call(
            glob("numpy._core.multiarray", "scalar"),
            PY2_OBJECT_DTYPE,
            bstr(b"\x00" * 8),
        )
    )
    with pytest.raises(FormatError, match="object-dtype NumPy scalars"):
        safe_loads(data)


def test_frombuffer_with_object_dtype_is_refused() -> None:
    data = stream(
        call(
            glob("numpy._core.numeric", "_frombuffer"),
            bstr(b"\x00" * 8),
            PY2_OBJECT_DTYPE,
            tup(intop(1)),
            ustr("C"),
        )
    )
    with pytest.raises(FormatError, match="_frombuffer"):
        safe_loads(data)


@pytest.mark.parametrize(
    "args",
    [
        (intop(10**9),),
        (ustr("x" * 10), ustr("rot13")),
        (ustr("abc"), ustr("utf-16")),
        (bstr(b"abc"),),
    ],
    ids=["bytes(10**9)", "rot13", "utf-16", "bytes(bytes)"],
)
def test_bytes_constructor_is_restricted(args: tuple[bytes, ...], measure) -> None:
    with measure() as m, pytest.raises(FormatError, match="bytes"):
        safe_loads(stream(call(glob("builtins", "bytes"), *args)))
    assert m.peak_bytes < 2**20


def test_bytearray_cannot_allocate_from_a_count(measure) -> None:
    with measure() as m, pytest.raises(FormatError, match="bytearray"):
        safe_loads(stream(call(glob("builtins", "bytearray"), intop(10**9))))
    assert m.peak_bytes < 2**20


@pytest.mark.parametrize(
    ("fn", "args", "match"),
    [
        (glob("_codecs", "encode"), (ustr("abc"), ustr("zlib_codec")), "latin1"),
        (glob("builtins", "complex"), (ustr("1+2j"),), "complex"),
        (glob("builtins", "set"), (lst(lst()),), "hashable"),
        (glob("builtins", "frozenset"), (ustr("abc"),), "frozenset"),
        (glob("collections", "OrderedDict"), (lst(),), "OrderedDict"),
        (glob("numpy", "dtype"), (ustr("i8; import os"),), "dtype"),
        (glob("numpy", "dtype"), (intop(5),), "dtype"),
    ],
    ids=[
        "encode-zlib",
        "complex-from-str",
        "set-of-lists",
        "frozenset-of-str",
        "ordereddict-args",
        "dtype-bad-code",
        "dtype-int",
    ],
)
def test_constructors_validate_their_arguments(
    fn: bytes, args: tuple[bytes, ...], match: str
) -> None:
    with pytest.raises(FormatError, match=match):
        safe_loads(stream(call(fn, *args)))


def _i8() -> bytes:
    return py2_dtype(b"i8", b"<", -1, 0)


@pytest.mark.parametrize(
    ("array", "error", "match"),
    [
        (py2_array([3], _i8(), binstr(b"\x00" * 23)), FormatError, "24 bytes"),
        (py2_array([2**40, 2**40], _i8(), binstr(b"")), FormatError, "needs"),
        (py2_array([-1], _i8(), binstr(b"")), FormatError, "non-negative"),
        (py2_array([3], PY2_OBJECT_DTYPE, lst(intop(1))), FormatError, "3 items"),
        (py2_array([2], PY2_OBJECT_DTYPE, binstr(b"xx")), FormatError, "list"),
        (py2_array([10**9], PY2_OBJECT_DTYPE, lst()), LimitError, "max_items"),
        (
            py2_array([1], py2_dtype(b"q9", b"<", -1, 0), binstr(b"")),
            FormatError,
            "dtype",
        ),
        (
            py2_array([1], py2_dtype(b"i8", b"!", -1, 0), binstr(b"")),
            FormatError,
            "dtype",
        ),
    ],
    ids=[
        "data-short",
        "shape-overflow",
        "negative-dim",
        "object-list-short",
        "object-data-not-list",
        "object-count-over-max_items",
        "bad-dtype-code",
        "bad-byteorder",
    ],
)
def test_array_state_is_validated(
    array: bytes, error: type[SafenpzError], match: str, measure
) -> None:
    with measure() as m, pytest.raises(error, match=match):
        safe_loads(stream(array), limits=Limits(max_items=10**6))
    assert m.peak_bytes < 8 * 2**20


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_structured_dtype_with_object_fields_of_plain_data_loads(
    protocol: int,
) -> None:
    arr = np.array(
        [(1, "x", [1, 2]), (2, None, {"k": (1.5,)})],
        dtype=[("a", "<i4"), ("b", "O"), ("c", "O")],
    )
    data = pickle.dumps(arr, protocol=protocol)
    assert_identical(safe_loads(data), pickle.loads(data))


def test_structured_object_field_holding_a_global_is_refused() -> None:
    arr = np.array([(1, range)], dtype=[("a", "<i4"), ("b", "O")])
    with pytest.raises(UnsafeFileError, match=r"xrange"):
        safe_loads(pickle.dumps(arr, protocol=2))


def test_persistent_load_is_never_called() -> None:
    with pytest.raises(UnsafeFileError, match="PERSID"):
        safe_loads(b"P0\n.")


def test_dtype_code_injection_never_reaches_numpy() -> None:
    """``numpy.dtype`` gets a short type code only; a string NumPy would
    evaluate (``"np.dtype(...)"``-like or with commas) is refused."""
    for code in (b"i8,i8" * 10, b"i8,i8", b"(i8, 3)", b"{'names': ['a']}", b"i8\n"):
        data = stream(py2_array([0], py2_dtype(code, b"<", -1, 0), binstr(b"")))
        with pytest.raises(FormatError, match="dtype"):
            safe_loads(data)


def test_gc_is_restored_after_an_error() -> None:
    assert gc.isenabled()
    with pytest.raises(FormatError):
        safe_loads(stream(b"h\x05"))
    assert gc.isenabled()
    gc.disable()
    try:
        with pytest.raises(FormatError):
            safe_loads(stream(b"h\x05"))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_encoding_must_be_one_numpy_supports() -> None:
    with pytest.raises(ValueError, match="encoding"):
        safe_loads(pickle.dumps(1), encoding="utf-8")


def test_limits_are_keywords() -> None:
    data = pickle.dumps([[[[1]]]], protocol=2)
    with pytest.raises(LimitError, match="max_depth"):
        safe_loads(data, limits=Limits(max_depth=2))
    assert safe_loads(data, limits=Limits(max_depth=4)) == [[[[1]]]]
    data = pickle.dumps(list(range(100)), protocol=2)
    with pytest.raises(LimitError, match="max_items"):
        safe_loads(data, limits=Limits(max_items=50))
    assert safe_loads(data, limits=Limits(max_items=100)) == list(range(100))


# --------------------------------------------------------------------------
# round trips: everything the pickler writes for plain data


def _plain_data() -> dict[str, Any]:
    return {
        "none": None,
        "bools": [True, False],
        "ints": [0, 1, -1, 255, 256, 65535, 2**31, -(2**31) - 1, 2**63, 2**100],
        "floats": [0.0, -0.0, 1.5, float("inf"), float("-inf"), float("nan")],
        "complex": [1 + 2j, complex(-0.0, float("inf")), 0j],
        "str": ["", "a", "héllo", "🙂", "x" * 1000, "line\nbreak"],
        "bytes": [b"", b"\x00\xff", b"z" * 300],
        "bytearray": bytearray(b"\x00ab"),
        "tuples": [(), (1,), (1, 2), (1, 2, 3), (1, (2, (3, ())))],
        "dict": {"a": 1, 2: "b", (1, 2): None, None: [1], 1.5: {"x": {}}},
        "set": {1, "a", (2, 3), None},
        "frozenset": frozenset({1, frozenset({2})}),
        "nested-lists": [[[[[[[[1]]]]]]], [], [[]]],
        "shared-refs": [[1, 2]] * 3,
        "int-array": np.arange(-3, 3, dtype=np.int64),
        "all-int-dtypes": [np.arange(3, dtype=t) for t in "bBhHiIlLqQ"],
        "float-dtypes": [
            np.array([1.5, np.nan, -0.0], dtype=t) for t in ("f2", "f4", "f8", "g")
        ],
        "complex-dtypes": [np.array([1 + 2j], dtype=t) for t in ("c8", "c16")],
        "bool-array": np.array([True, False]),
        "unicode-array": np.array(["", "ab", "héllo"]),
        "bytes-array": np.array([b"", b"ab\x00"], dtype="S4"),
        "datetime64": np.array(["2020-01-01", "NaT", "1970-01-01T00:00:01"], "M8[ns]"),
        "datetime64-D": np.array(["2020-01-01"], "M8[D]"),
        "timedelta64": np.array([5, -1], dtype="m8[s]"),
        "structured": np.zeros(
            3, dtype=[("a", "<i4"), ("b", "<f8", (2,)), ("c", "S3")]
        ),
        "fortran-2d": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        "0-d": np.array(3.5),
        "empty": np.zeros((0,)),
        "empty-3d": np.zeros((2, 0, 3), dtype=np.int16),
        "scalars": [
            np.int8(-5),
            np.uint64(2**64 - 1),
            np.float16(1.5),
            np.float32(np.nan),
            np.float64(-0.0),
            np.longdouble(1.25),
            np.complex64(1j),
            np.bool_(True),
            np.str_("hé"),
            np.bytes_(b"x\x00y"),
            np.datetime64("2020-01-01"),
            np.timedelta64(5, "s"),
        ],
        "dtypes": [np.dtype("i4"), np.dtype([("a", "u1")]), np.dtype("M8[us]")],
        "object-ragged": obj_array([[1, 2], [3], []]),
        "object-mixed": obj_array([None, "a", b"b", 1.5, 2, (3,), {"k": [4]}, {5}]),
        "object-2d": np.array([[1, "a"], [None, 2.5]], dtype=object),
        "object-0d": obj_array([{"a": [1]}], ()),
        "object-empty": np.empty((0,), dtype=object),
        "object-empty-2d": np.empty((2, 0), dtype=object),
        "object-of-arrays": obj_array([np.arange(3), np.zeros((2, 2), "f4"), None]),
        "object-of-object-arrays": obj_array([obj_array([[1], [2, 3]]), np.arange(2)]),
        "object-3d": np.array([[[1, 2], [3, 4]], [[5, 6], [7, 8]]], dtype=object),
        "object-of-scalars": obj_array([np.int64(1), np.float32(2.5), np.str_("s")]),
    }


PLAIN = _plain_data()
PROTOCOLS = list(range(pickle.HIGHEST_PROTOCOL + 1))


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=[f"p{p}" for p in PROTOCOLS])
@pytest.mark.parametrize("obj", list(PLAIN.values()), ids=list(PLAIN))
def test_round_trip_matches_pickle(obj: Any, protocol: int) -> None:
    data = pickle.dumps(obj, protocol=protocol)
    assert_identical(safe_loads(data), pickle.loads(data))


@pytest.mark.parametrize("protocol", [0, 3, 5], ids=["p0", "p3", "p5"])
def test_fortran_object_array_keeps_element_positions(protocol: int) -> None:
    """``ndarray.__reduce__`` lists object elements in C order even for a
    Fortran-ordered array; decoding must not reshape them in F order."""
    arr = np.asfortranarray(np.array([[1, "a"], [None, 2.5]], dtype=object))
    got = safe_loads(pickle.dumps(arr, protocol=protocol))
    assert got[0, 1] == "a"
    assert got[1, 0] is None
    assert_identical(got, arr)


@pytest.mark.parametrize("protocol", [2, 5], ids=["p2", "p5"])
@pytest.mark.parametrize(
    "obj",
    [
        {np.int64(1): "a"},
        {(np.float64(1.0), "x"): 1},
        {np.int32(7)},
        frozenset({np.str_("s")}),
        obj_array([{np.int64(2): [np.float32(1.5)]}]),
    ],
    ids=[
        "numpy-scalar-dict-key",
        "numpy-scalar-in-tuple-key",
        "set-of-numpy-scalars",
        "frozenset-of-numpy-scalars",
        "object-array-of-dict-with-scalar-key",
    ],
)
def test_numpy_scalars_as_keys_and_set_items(obj: Any, protocol: int) -> None:
    """NumPy scalars are plain data wherever Python allows them, including
    dict keys and set items (and no internal safenpz object may leak)."""
    data = pickle.dumps(obj, protocol=protocol)
    got = safe_loads(data)
    assert "safenpz" not in repr(got)
    assert_identical(got, pickle.loads(data))


def test_ordereddict_comes_back_as_an_ordereddict() -> None:
    """As np.load gives it: ``collections.OrderedDict`` is plain data."""
    od = OrderedDict([("b", 1), ("a", [np.int64(2), OrderedDict(z=None)])])
    for protocol in PROTOCOLS:
        data = pickle.dumps(od, protocol=protocol)
        got = safe_loads(data)
        assert type(got) is OrderedDict
        assert_identical(got, pickle.loads(data))


def test_attributes_set_on_an_ordereddict_are_refused() -> None:
    # OrderedDict() then BUILD {'x': 1}: np.load would set an attribute
    data = b"\x80\x02ccollections\nOrderedDict\n)R}X\x01\x00\x00\x00xK\x01sb."
    with pytest.raises(FormatError, match="attributes on an OrderedDict"):
        safe_loads(data)


def test_both_numpy_spellings_are_accepted() -> None:
    arr = np.array([[1, 2], [3]], dtype=object)
    data = pickle.dumps(arr, protocol=2)
    spellings = [b"numpy.core.multiarray", b"numpy._core.multiarray"]
    for spelling in spellings:
        other = spellings[1 - spellings.index(spelling)]
        legacy = data.replace(other, spelling)
        assert spelling in legacy
        assert_identical(safe_loads(legacy), arr)


def test_dtype_used_before_build_is_refused() -> None:
    data = stream(
        sglob("numpy.core.multiarray", "scalar")
        + tup(call(sglob("numpy", "dtype"), ustr("f8"), b"\x89\x88"), bstr(b"\0" * 8)),
        4,
    )
    # the dtype was never BUILD: a scalar of it is refused, never half-made
    with pytest.raises(FormatError):
        safe_loads(data)


# --------------------------------------------------------------------------
# Python 2 + NumPy 1.x streams (hand-built the way they were written)


def _py2_stream() -> tuple[bytes, list[Any]]:
    i8 = py2_dtype(b"i8", b"<", -1, 0)
    f8 = py2_dtype(b"f8", b"<", -1, 0)
    ints = np.array([1, 200, -5], dtype="<i8")
    floats = np.array([[1.5, -2.0], [3.0, 4.0]])
    items = [
        py2_int_list([1, 2, 2**40, -3]),
        py2_int_list([]),
        py2_array([3], i8, binstr(ints.tobytes())),
        py2_array([2, 2], f8, binstr(floats.tobytes())),
        binstr(b"caf\xe9"),
        b"X\x02\x00\x00\x00\xc3\xa9",  # a Python 2 unicode
        NONE,
    ]
    want = [[1, 2, 2**40, -3], [], ints, floats, "café", "é", None]
    return py2_object_array(items), want


def test_python2_object_array_loads_with_latin1() -> None:
    data, items = _py2_stream()
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in data
    assert b"U\x01b" in data
    got = safe_loads(data, encoding="latin1")
    assert_identical(got, obj_array(items))
    assert_identical(got, pickle.loads(data, encoding="latin1"))


def test_python2_object_array_loads_with_encoding_bytes() -> None:
    """``encoding="bytes"`` is accepted (as by ``np.load``): Python 2 str
    items come back as bytes and the array machinery still works."""
    data, _ = _py2_stream()
    want = pickle.loads(data, encoding="bytes")
    assert want[4] == b"caf\xe9"
    assert_identical(safe_loads(data, encoding="bytes"), want)


def test_python2_int_lists_with_large_longs() -> None:
    rows = [[0, 2**31, -(2**31) - 1], [2**62, -(2**63)], [2**64]]
    data = py2_object_array([py2_int_list(r) for r in rows])
    assert_identical(safe_loads(data), obj_array(rows))


# --------------------------------------------------------------------------
# properties


def test_unknown_protocol_of_the_future_is_refused() -> None:
    with pytest.raises(FormatError, match="protocol"):
        safe_loads(b"\x80\x06N.")


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_safenpz_errors(data: bytes) -> None:
    with contextlib.suppress(SafenpzError):
        safe_loads(data)
    assert gc.isenabled()


SEEDS = [
    pickle.dumps(obj_array([[1, 2], [3], []]), protocol=p) for p in range(2, 6)
] + [
    pickle.dumps(PLAIN["object-mixed"], protocol=0),
    pickle.dumps(PLAIN["structured"], protocol=3),
    pickle.dumps(PLAIN["scalars"], protocol=5),
    pickle.dumps({"a": [1.5, b"x", (None,)], "s": {1, 2}}, protocol=1),
    _py2_stream()[0],
]


EDITS = byte_edits(10_000)


@FUZZ
@given(st.sampled_from(SEEDS), EDITS)
def test_mutated_pickles_raise_only_safenpz_errors(
    seed: bytes, edits: list[tuple[str, int, int]]
) -> None:
    data = mutate(seed, edits)
    try:
        got = safe_loads(data)
    except SafenpzError:
        return
    assert "safenpz" not in repr(got)


# --------------------------------------------------------------------------
# validation branches: one hand-assembled stream per refusal
#
# Each bad stream differs from a valid baseline (decoded in
# test_validation_baselines_decode) in one place, so the refusal is the
# branch named by the test id and not an earlier one.

_NDARRAY = glob("numpy", "ndarray")
_RECONSTRUCT = glob("numpy._core.multiarray", "_reconstruct")
_SCALAR = glob("numpy._core.multiarray", "scalar")
_FROMBUFFER = glob("numpy._core.numeric", "_frombuffer")
_DTYPE = glob("numpy", "dtype")
_FLAGS = NEWFALSE + NEWTRUE  # numpy.dtype(code, align=False, copy=True)
_I8_ZEROS = bstr(bytes(16))  # data of two int64 zeros


def _float(x: float) -> bytes:
    """``BINFLOAT x``."""
    return b"G" + struct.pack(">d", x)


def _dict(*pairs: tuple[bytes, bytes]) -> bytes:
    """``EMPTY_DICT MARK k v ... SETITEMS``."""
    return EMPTY_DICT + MARK + b"".join(k + v for k, v in pairs) + b"u"


def _dstate(
    *,
    version: bytes = intop(3),
    endian: bytes = ustr("<"),
    subdescr: bytes = NONE,
    names: bytes = NONE,
    fields: bytes = NONE,
    elsize: bytes = intop(-1),
    metadata: tuple[bytes, ...] = (),
) -> bytes:
    """A dtype ``BUILD`` state: ``(version, endian, subdescr, names, fields,
    elsize, alignment, flags[, metadata])``."""
    return tup(
        version, endian, subdescr, names, fields, elsize, intop(-1), intop(0), *metadata
    )


def _dt(code: str = "i8", state: bytes | None = None) -> bytes:
    """``numpy.dtype(code, False, True)`` built with `state` (default: plain
    little-endian)."""
    return call(_DTYPE, ustr(code), _FLAGS) + (state or _dstate()) + BUILD


def _meta(unit: bytes = bstr(b"s"), num: bytes = intop(1)) -> tuple[bytes]:
    """Datetime metadata ``(None, (unit, num, 1, 1))`` as NumPy pickles it."""
    return (tup(NONE, tup(unit, num, intop(1), intop(1))),)


def _struct(
    fields: bytes = _dict((ustr("a"), tup(_dt("i4"), intop(0)))),
    names: bytes = tup(ustr("a")),
) -> bytes:
    """A structured ``V8`` dtype (default: one ``i4`` field ``a`` at 0)."""
    state = _dstate(endian=ustr("|"), names=names, fields=fields, elsize=intop(8))
    return _dt("V8", state)


def _subarray(subdescr: bytes = tup(_dt("i4"), tup(intop(2)))) -> bytes:
    """A sub-array ``V8`` dtype (default: ``(i4, (2,))``)."""
    return _dt("V8", _dstate(endian=ustr("|"), subdescr=subdescr, elsize=intop(8)))


def _new_array(shape: bytes = tup(intop(0)), code: bytes = bstr(b"b")) -> bytes:
    """``_reconstruct(ndarray, shape, code)`` (not yet built)."""
    return call(_RECONSTRUCT, _NDARRAY, shape, code)


def _astate(
    *,
    version: bytes = intop(1),
    shape: bytes = tup(intop(2)),
    dtype: bytes | None = None,
    fortran: bytes = NEWFALSE,
    data: bytes = _I8_ZEROS,
) -> bytes:
    """An ndarray ``BUILD`` state ``(version, shape, dtype, fortran, data)``."""
    return tup(version, shape, _dt() if dtype is None else dtype, fortran, data)


def _arr(state: bytes | None = None) -> bytes:
    """A whole ndarray: ``_reconstruct`` + ``BUILD state`` (default: two
    int64 zeros)."""
    return _new_array() + (state or _astate()) + BUILD


def _frombuffer(
    data: bytes = _I8_ZEROS, shape: bytes = tup(intop(2)), order: str = "C"
) -> bytes:
    return call(_FROMBUFFER, data, _dt(), shape, ustr(order))


BASELINES: dict[str, tuple[bytes, Any]] = {
    "array": (_arr(), np.zeros(2, "<i8")),
    "array-state-version-0": (  # four items, no version; fortran as an int
        _new_array() + tup(tup(intop(2)), _dt(), intop(0), _I8_ZEROS) + BUILD,
        np.zeros(2, "<i8"),
    ),
    "dtype-state-version-1": (  # NumPy < 1.1: seven items, no flags
        _dt("f8", tup(intop(1), ustr(">"), NONE, NONE, NONE, intop(-1), intop(-1))),
        np.dtype(">f8"),
    ),
    "datetime-dtype": (
        _dt("M8", _dstate(version=intop(4), metadata=_meta())),
        np.dtype("<M8[s]"),
    ),
    "datetime-dtype-10s": (
        _dt("M8", _dstate(version=intop(4), metadata=_meta(num=intop(10)))),
        np.dtype("<M8[10s]"),
    ),
    "structured-dtype": (
        _struct(),
        np.dtype({"names": ["a"], "formats": ["<i4"], "itemsize": 8}),
    ),
    "structured-dtype-titled": (
        _struct(_dict((ustr("a"), tup(_dt("i4"), intop(0), ustr("T"))))),
        np.dtype({"names": ["a"], "formats": ["<i4"], "titles": ["T"], "itemsize": 8}),
    ),
    "subarray-dtype": (_subarray(), np.dtype(("<i4", (2,)))),
    "scalar": (call(_SCALAR, _dt("f8"), bstr(struct.pack("<d", 1.5))), np.float64(1.5)),
    "frombuffer": (_frombuffer(), np.zeros(2, "<i8")),
    "bytes-from-latin1": (
        call(glob("builtins", "bytes"), ustr("\xe9"), ustr("latin1")),
        b"\xe9",
    ),
    "bytes-empty": (call(glob("__builtin__", "bytes")), b""),
    "bytearray-empty": (call(glob("builtins", "bytearray")), bytearray()),
    "bytearray-of-bytes": (
        call(glob("builtins", "bytearray"), bstr(b"ab")),
        bytearray(b"ab"),
    ),
    "bytearray-from-latin1": (
        call(glob("__builtin__", "bytearray"), ustr("\xe9"), ustr("latin-1")),
        bytearray(b"\xe9"),
    ),
    "set-empty": (call(glob("builtins", "set")), set()),
    "frozenset-empty": (call(glob("builtins", "frozenset")), frozenset()),
    "frozenset-of-tuple": (
        call(glob("builtins", "frozenset"), tup(tup(intop(1), intop(2)))),
        frozenset({(1, 2)}),
    ),
    "complex-default": (call(glob("builtins", "complex")), 0j),
    "complex-int-float": (
        call(glob("builtins", "complex"), intop(1), _float(2.5)),
        1 + 2.5j,
    ),
}


@pytest.mark.parametrize(
    ("body", "want"), list(BASELINES.values()), ids=list(BASELINES)
)
def test_validation_baselines_decode(body: bytes, want: Any) -> None:
    """The valid streams the refusals below are one edit away from."""
    got = safe_loads(stream(body))
    assert type(got) is type(want)
    if isinstance(want, np.ndarray):
        assert_identical(got, want)
    else:
        assert got == want


_I8 = _dt()
_OBJ = _dt("O8", _dstate(endian=ustr("|")))

# id -> (body, message the FormatError must contain after the member name)
REFUSED: dict[str, tuple[bytes, str]] = {
    # builders: BUILD at the wrong time
    "build-on-scalar": (
        call(_SCALAR, _dt("f8"), bstr(bytes(8))) + EMPTY_TUPLE + BUILD,
        "unexpected BUILD on a finished value",
    ),
    "build-on-frombuffer-array": (
        _frombuffer() + _astate() + BUILD,
        "unexpected BUILD on a finished value",
    ),
    "dtype-built-twice": (_I8 + _dstate() + BUILD, "a dtype was built twice"),
    "array-built-twice": (_arr() + _astate() + BUILD, "an array was built twice"),
    "dtype-used-before-build": (
        call(_SCALAR, call(_DTYPE, ustr("f8"), _FLAGS), bstr(bytes(8))),
        "a dtype was used before the pickle finished building it",
    ),
    # _reconstruct
    "reconstruct-shape-1": (
        _new_array(shape=tup(intop(1))) + _astate() + BUILD,
        "unexpected _reconstruct arguments (1,), b'b'",
    ),
    "reconstruct-code-c": (
        _new_array(code=bstr(b"c")) + _astate() + BUILD,
        "unexpected _reconstruct arguments (0,), b'c'",
    ),
    "reconstruct-code-int": (
        _new_array(code=intop(98)),
        "_reconstruct dtype code must be bytes, not int",
    ),
    # numpy.dtype(...)
    "dtype-code-17-chars": (
        call(_DTYPE, ustr("i" * 17), _FLAGS),
        "numpy.dtype argument must be a short type code",
    ),
    "dtype-code-non-ascii-bytes": (
        call(_DTYPE, bstr(b"\xff8"), _FLAGS),
        r"numpy.dtype argument must be a short type code, got b'\xff8'",
    ),
    "dtype-align-int-2": (
        call(_DTYPE, ustr("i8"), intop(2), NEWTRUE),
        "numpy.dtype flags must be bools or the ints 0 and 1",
    ),
    "dtype-copy-none": (
        call(_DTYPE, ustr("i8"), NEWFALSE, NONE),
        "numpy.dtype flags must be bools or the ints 0 and 1",
    ),
    # dtype BUILD state
    "dtype-state-int": (
        call(_DTYPE, ustr("i8"), _FLAGS) + intop(3) + BUILD,
        "bad dtype state 3",
    ),
    "dtype-state-holds-a-global": (
        call(_DTYPE, ustr("i8"), _FLAGS) + tup(_NDARRAY) + BUILD,
        "bad dtype state (<safenpz constructor for numpy.ndarray>,)",
    ),
    "dtype-state-10-items": (
        call(_DTYPE, ustr("i8"), _FLAGS) + tup(*[intop(3)] * 10) + BUILD,
        "bad dtype state (3, 3, 3",
    ),
    "dtype-version-5": (
        _dt(state=_dstate(version=intop(5))),
        "bad dtype state (5, '<'",
    ),
    "dtype-endian-x": (_dt(state=_dstate(endian=ustr("x"))), "bad dtype state (3, 'x'"),
    "dtype-elsize-float": (
        _dt(state=_dstate(elsize=_float(8.0))),
        "bad dtype item size",
    ),
    "dtype-elsize-bool": (_dt(state=_dstate(elsize=NEWTRUE)), "bad dtype item size"),
    # structured dtypes
    "struct-names-list": (
        _struct(names=lst(ustr("a"))),
        "bad structured dtype fields",
    ),
    "struct-fields-list": (
        _struct(fields=lst(ustr("a"))),
        "bad structured dtype fields",
    ),
    "struct-names-fields-differ": (
        _struct(names=tup(ustr("b"))),
        "bad structured dtype fields",
    ),
    "struct-name-int": (
        _struct(_dict((intop(1), tup(_I8, intop(0)))), tup(intop(1))),
        "bad structured dtype fields",
    ),
    "struct-field-not-tuple": (
        _struct(_dict((ustr("a"), intop(0)))),
        "bad field 'a' in structured dtype",
    ),
    "struct-field-4-items": (
        _struct(_dict((ustr("a"), tup(_I8, intop(0), NONE, NONE)))),
        "bad field 'a' in structured dtype",
    ),
    "struct-offset-float": (
        _struct(_dict((ustr("a"), tup(_I8, _float(0.0))))),
        "bad offset of field 'a' in structured dtype",
    ),
    "struct-field-dtype-str": (
        _struct(_dict((ustr("a"), tup(ustr("i8"), intop(0))))),
        "expected a dtype, got str",
    ),
    "struct-title-int": (
        _struct(_dict((ustr("a"), tup(_I8, intop(0), intop(7))))),
        "bad title of field 'a'",
    ),
    "struct-title-non-ascii-bytes": (
        _struct(_dict((ustr("a"), tup(_I8, intop(0), bstr(b"\xfft"))))),
        "bad title of field 'a'",
    ),
    # sub-array dtypes
    "subarray-1-item": (_subarray(tup(_dt("i4"))), "bad sub-array dtype"),
    "subarray-list": (_subarray(lst(_dt("i4"), tup(intop(2)))), "bad sub-array dtype"),
    "subarray-base-str": (
        _subarray(tup(ustr("i4"), tup(intop(2)))),
        "expected a dtype, got str",
    ),
    "subarray-shape-int": (
        _subarray(tup(_dt("i4"), intop(2))),
        "array shape must be a tuple of at most 64 ints, got 2",
    ),
    "subarray-shape-negative": (
        _subarray(tup(_dt("i4"), tup(intop(-2)))),
        "array shape must hold non-negative ints, got (-2,)",
    ),
    # datetime dtypes
    "datetime-no-metadata": (
        _dt("M8", _dstate(version=intop(4))),
        "datetime dtype without unit metadata",
    ),
    "timedelta-metadata-none": (
        _dt("m8", _dstate(version=intop(4), metadata=(NONE,))),
        "datetime dtype without unit metadata",
    ),
    "datetime-metadata-3-tuple": (
        _dt(
            "M8",
            _dstate(
                version=intop(4),
                metadata=(tup(NONE, tup(bstr(b"s"), intop(1), intop(1))),),
            ),
        ),
        "datetime dtype without unit metadata",
    ),
    "datetime-unit-fortnight": (
        _dt("M8", _dstate(version=intop(4), metadata=_meta(bstr(b"fortnight")))),
        "bad datetime unit 'fortnight'",
    ),
    "datetime-unit-count-0": (
        _dt("M8", _dstate(version=intop(4), metadata=_meta(num=intop(0)))),
        "bad datetime unit 's'",
    ),
    "datetime-unit-count-float": (
        _dt("M8", _dstate(version=intop(4), metadata=_meta(num=_float(1.0)))),
        "bad datetime unit 's'",
    ),
    "datetime-unit-int": (
        _dt("M8", _dstate(version=intop(4), metadata=_meta(intop(1)))),
        "datetime unit must be bytes, not int",
    ),
    "datetime-unit-non-latin1-text": (
        _dt("M8", _dstate(version=intop(4), metadata=_meta(ustr("\u20ac")))),
        "datetime unit is text that is not latin-1",
    ),
    # ndarray BUILD state
    "array-state-list": (
        _new_array() + lst() + BUILD,
        "bad ndarray state of type list",
    ),
    "array-state-3-items": (
        _new_array() + tup(intop(1), tup(intop(2)), _I8) + BUILD,
        "bad ndarray state of type tuple",
    ),
    "array-state-4-items-not-version-0": (
        _new_array() + tup(intop(1), tup(intop(2)), _I8, NEWFALSE) + BUILD,
        "array shape must be a tuple",
    ),
    "array-version-2": (
        _arr(_astate(version=intop(2))),
        "unsupported ndarray pickle version 2",
    ),
    "array-shape-list": (
        _arr(_astate(shape=lst(intop(2)))),
        "array shape must be a tuple of at most 64 ints, got [2]",
    ),
    "array-shape-65-dims": (
        _arr(_astate(shape=tup(*[intop(1)] * 65), data=bstr(bytes(8)))),
        "array shape must be a tuple of at most 64 ints",
    ),
    "array-shape-float-dim": (
        _arr(_astate(shape=tup(_float(2.0)))),
        "array shape must hold non-negative ints, got (2.0,)",
    ),
    "array-dtype-str": (_arr(_astate(dtype=ustr("<i8"))), "expected a dtype, got str"),
    "array-dtype-global": (
        _arr(_astate(dtype=_DTYPE)),
        "expected a dtype, got _Constructor",
    ),
    "array-fortran-float": (
        _arr(_astate(fortran=_float(0.0))),
        "ndarray fortran flag must be a bool",
    ),
    "array-data-int": (
        _arr(_astate(data=intop(0))),
        "array data must be bytes, not int",
    ),
    "array-data-none": (
        _arr(_astate(data=NONE)),
        "array data must be bytes, not NoneType",
    ),
    "array-data-non-latin1-text": (
        _arr(_astate(data=ustr("\u20ac" * 16))),
        "array data is text that is not latin-1",
    ),
    "array-data-long": (
        _arr(_astate(data=bstr(bytes(17)))),
        "array of shape (2,) and dtype int64 needs 16 bytes, the pickle holds 17",
    ),
    "object-array-tuple-state": (
        _arr(_astate(dtype=_OBJ, data=tup(intop(1), intop(2)))),
        "object array of shape (2,) needs a list of 2 items, got tuple",
    ),
    "object-array-list-long": (
        _arr(_astate(dtype=_OBJ, data=lst(intop(1), intop(2), intop(3)))),
        "object array of shape (2,) needs a list of 2 items, got list of 3",
    ),
    # numpy scalars
    "scalar-object-dtype": (
        call(_SCALAR, _OBJ, bstr(bytes(8))),
        "object-dtype NumPy scalars are not supported",
    ),
    "scalar-4-bytes-for-f8": (
        call(_SCALAR, _dt("f8"), bstr(bytes(4))),
        "a float64 scalar needs 8 bytes, got 4",
    ),
    "scalar-no-data": (
        call(_SCALAR, _dt("f8")),
        "scalar data must be bytes, not NoneType",
    ),
    "scalar-dtype-str": (
        call(_SCALAR, ustr("f8"), bstr(bytes(8))),
        "expected a dtype, got str",
    ),
    # _frombuffer
    "frombuffer-short": (
        _frombuffer(data=bstr(bytes(8))),
        "array of shape (2,) and dtype int64 needs 16 bytes, the pickle holds 8",
    ),
    "frombuffer-order-K": (_frombuffer(order="K"), "bad _frombuffer arguments"),
    "frombuffer-object-dtype": (
        call(_FROMBUFFER, _I8_ZEROS, _OBJ, tup(intop(2)), ustr("C")),
        "bad _frombuffer arguments",
    ),
    "frombuffer-shape-list": (
        _frombuffer(shape=lst(intop(2))),
        "array shape must be a tuple of at most 64 ints, got [2]",
    ),
    "frombuffer-buffer-int": (
        call(_FROMBUFFER, intop(0), _I8, tup(intop(2)), ustr("C")),
        "array buffer must be bytes, not int",
    ),
    # _codecs.encode, bytes, bytearray
    "encode-utf-8": (
        call(glob("_codecs", "encode"), ustr("\u20ac"), ustr("utf-8")),
        "_codecs.encode is only allowed as (str, 'latin1')",
    ),
    "encode-default-encoding": (
        call(glob("_codecs", "encode"), ustr("abc")),
        "_codecs.encode is only allowed as (str, 'latin1')",
    ),
    "encode-bytes": (
        call(glob("_codecs", "encode"), bstr(b"abc"), ustr("latin1")),
        "_codecs.encode is only allowed as (str, 'latin1')",
    ),
    "encode-non-latin1-text": (
        call(glob("_codecs", "encode"), ustr("\u20ac"), ustr("latin1")),
        "bytes literal is text that is not latin-1",
    ),
    "bytes-three-args": (
        call(glob("builtins", "bytes"), ustr("a"), ustr("latin1"), ustr("strict")),
        "bytes() is only allowed with no arguments or (str, 'latin1')",
    ),
    "bytes-list": (
        call(glob("builtins", "bytes"), lst(intop(1))),
        "bytes() is only allowed with no arguments or (str, 'latin1')",
    ),
    "bytearray-list": (
        call(glob("builtins", "bytearray"), lst(intop(1))),
        "bad bytearray() arguments",
    ),
    "bytearray-utf-8": (
        call(glob("builtins", "bytearray"), ustr("a"), ustr("utf-8")),
        "bad bytearray() arguments",
    ),
    "bytearray-bytes-latin1": (
        call(glob("builtins", "bytearray"), bstr(b"a"), ustr("latin1")),
        "bad bytearray() arguments",
    ),
    # set, frozenset, complex, OrderedDict
    "set-two-lists": (
        call(glob("builtins", "set"), lst(), lst()),
        "set() takes a list or tuple",
    ),
    "set-of-dict": (
        call(glob("builtins", "set"), EMPTY_DICT),
        "set() takes a list or tuple",
    ),
    "frozenset-of-lists": (
        call(glob("builtins", "frozenset"), lst(lst())),
        "frozenset items must be hashable plain data",
    ),
    "frozenset-of-bytes": (
        call(glob("builtins", "frozenset"), bstr(b"ab")),
        "frozenset() takes a list or tuple",
    ),
    "complex-of-none": (
        call(glob("builtins", "complex"), NONE),
        "complex() takes two numbers",
    ),
    "complex-of-bytes": (
        call(glob("builtins", "complex"), intop(1), bstr(b"2")),
        "complex() takes two numbers",
    ),
    "ordereddict-of-dict": (
        call(glob("collections", "OrderedDict"), EMPTY_DICT),
        "OrderedDict() is only allowed without arguments",
    ),
    # the final walk: builders replaced by values that are not hashable
    "dict-key-array": (
        _dict((_arr(), intop(1))),
        "a dict key is not hashable plain data",
    ),
    "set-of-array": (
        call(glob("builtins", "set"), lst(_arr())),
        "a set item is not hashable plain data",
    ),
    "frozenset-of-array": (
        call(glob("builtins", "frozenset"), tup(_arr())),
        "a set item is not hashable plain data",
    ),
    "dict-key-unbuilt-dtype": (
        _dict((call(_DTYPE, ustr("i8"), _FLAGS), intop(1))),
        "a dtype was used before the pickle finished building it",
    ),
}


@pytest.mark.parametrize(("body", "match"), list(REFUSED.values()), ids=list(REFUSED))
def test_malformed_constructor_use_is_refused(body: bytes, match: str) -> None:
    with pytest.raises(
        FormatError, match=message_pattern(f"member '{MEMBER}': ", match)
    ):
        safe_loads(stream(body), member=MEMBER)
    assert gc.isenabled()


@pytest.mark.parametrize(("body", "match"), list(REFUSED.values()), ids=list(REFUSED))
def test_scanner_and_decoder_refuse_alike(
    body: bytes, match: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One validation, two users: the static scan refuses each stream with the
    decoder's message (and the opcode and its offset); the decoder alone,
    the scanner switched off, refuses it with the same message."""
    data = stream(body)
    with pytest.raises(FormatError, match=message_pattern(match, "(opcode ")):
        scan_pickle(data, member=MEMBER)
    monkeypatch.setattr(_decode, "scan_pickle", lambda *args, **kwargs: None)
    with pytest.raises(FormatError, match=message_pattern(match)):
        safe_loads(data, member=MEMBER)


def test_set_opcodes_holding_an_array_are_refused() -> None:
    """``EMPTY_SET``/``ADDITEMS`` (protocol 4) build the set without
    ``builtins.set``; the final walk still refuses the unhashable array."""
    data = stream(b"\x8f" + MARK + _arr() + b"\x90", 4)
    with pytest.raises(FormatError, match="a set item is not hashable plain data"):
        safe_loads(data)


def _nested_lists(depth: int) -> bytes:
    """``[[[...[]...]]]`` `depth` lists deep, one ``APPEND`` per level."""
    return stream(b"]" * depth + b"a" * (depth - 1))


LIMITED: dict[str, tuple[bytes, dict[str, int], str]] = {
    "nested-lists-max_depth": (_nested_lists(10), {"max_depth": 5}, "max_depth=5"),
    "nested-tuples-max_depth": (
        stream(tup(tup(tup(tup(intop(1)))))),
        {"max_depth": 2},
        "max_depth=2",
    ),
    "flat-list-max_items": (
        stream(lst(*[intop(i) for i in range(50)])),
        {"max_items": 10},
        "max_items=10",
    ),
    "dict-max_items": (
        stream(_dict(*[(intop(i), NONE) for i in range(20)])),
        {"max_items": 10},
        "max_items=10",
    ),
    # 50 rows sharing one 100-int list: 50 + 100 values (the list counts once)
    "shared-rows-max_items": (
        shared_row_array(100, 50),
        {"max_items": 149},
        "max_items=149",
    ),
    "object-array-max_items": (
        stream(
            _arr(_astate(dtype=_OBJ, shape=tup(intop(3)), data=lst(*[intop(1)] * 3)))
        ),
        {"max_items": 2},
        "max_items=2",
    ),
}


@pytest.mark.parametrize(
    ("data", "limits", "match"), list(LIMITED.values()), ids=list(LIMITED)
)
def test_limits_name_the_keyword_to_raise(
    data: bytes, limits: dict[str, Any], match: str
) -> None:
    with pytest.raises(LimitError, match=message_pattern(f"'{MEMBER}'", match)):
        safe_loads(data, member=MEMBER, limits=Limits(**limits))


def test_deep_nesting_under_a_raised_max_depth_is_a_limit_error() -> None:
    """A caller who follows the advice "pass a larger max_depth" must still get
    a safenpz error, never a bare ``RecursionError``, however deep the data."""
    depth = 4 * sys.getrecursionlimit()
    with pytest.raises(
        LimitError, match=message_pattern(f"'{MEMBER}'", "nesting too deep")
    ):
        safe_loads(
            _nested_lists(depth), member=MEMBER, limits=Limits(max_depth=10 * depth)
        )
    assert gc.isenabled()


@pytest.mark.parametrize(
    ("error", "match"),
    [(MemoryError, "decoding ran out of memory"), (RecursionError, "nesting too deep")],
    ids=["MemoryError", "RecursionError"],
)
def test_resource_errors_while_decoding_become_limit_errors(
    error: type[BaseException], match: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def exhausted(ctx: object, *args: object) -> NoReturn:
        raise error

    monkeypatch.setitem(
        _constructors.TABLE, ("builtins", "bytes"), ("builtins.bytes", exhausted)
    )
    with pytest.raises(LimitError, match=message_pattern(f"'{MEMBER}'", match)):
        safe_loads(stream(call(glob("builtins", "bytes"))), member=MEMBER)
    assert gc.isenabled()


@pytest.mark.parametrize(
    "encoding",
    ["utf-8", "latin-1", "ascii", "bytes "],
    ids=["utf-8", "latin-1-hyphenated", "ascii-lowercase", "bytes-trailing-space"],
)
def test_encoding_values_numpy_does_not_accept_are_refused(encoding: str) -> None:
    with pytest.raises(ValueError, match=f"not {encoding!r}"):
        safe_loads(pickle.dumps(1), encoding=encoding)


# --------------------------------------------------------------------------
# the decoder's own defences, with the scanner switched off


@pytest.fixture
def no_scanner(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let streams reach the decoder unchecked (to test its second line of
    defence independently of the scanner)."""
    monkeypatch.setattr(_decode, "scan_pickle", lambda *args, **kwargs: None)


@pytest.mark.usefixtures("no_scanner")
@pytest.mark.parametrize("module", ["os", "posix", "subprocess"], ids=str)
def test_find_class_refuses_globals_outside_the_table(
    module: str, sentinel: Path
) -> None:
    fn = "call" if module == "subprocess" else "system"
    arg = (
        lst(ustr("touch"), ustr(str(sentinel)))
        if fn == "call"
        else ustr(f"touch {sentinel}")
    )
    data = stream(call(glob(module, fn), arg))
    with pytest.raises(
        UnsafeFileError,
        match=message_pattern(
            f"member '{MEMBER}'", f"global {module}.{fn} is not in safenpz's table"
        ),
    ):
        safe_loads(data, member=MEMBER)
    assert not sentinel.exists()
    run_plain_pickle(data)  # control: the payload is real
    assert sentinel.exists()


@pytest.mark.usefixtures("no_scanner")
@pytest.mark.parametrize(
    "data", [b"P0\n.", stream(ustr("0") + b"Q")], ids=["PERSID", "BINPERSID"]
)
def test_persistent_load_refuses(data: bytes) -> None:
    with pytest.raises(
        UnsafeFileError,
        match=message_pattern(f"'{MEMBER}'", "persistent ids are never resolved"),
    ):
        safe_loads(data, member=MEMBER)


@pytest.mark.usefixtures("no_scanner")
def test_walk_refuses_a_memoryview() -> None:
    """``READONLY_BUFFER`` on a ``bytearray`` leaves a memoryview, a type the
    final walk does not know."""
    data = stream(b"\x96" + struct.pack("<Q", 2) + b"ab" + b"\x98", 5)
    with pytest.raises(
        FormatError, match="unexpected object of type memoryview in the pickle"
    ):
        safe_loads(data)


@pytest.mark.parametrize(
    "make",
    [
        lambda ctx: _constructors._Constructor("numpy.dtype", None, MEMBER),
        lambda ctx: _context.Done(ctx, 1),
        lambda ctx: _array_state._ArrayBuilder(ctx),
    ],
    ids=["constructor", "finished-value", "array-builder"],
)
def test_internal_objects_cannot_be_pickled(make: Any) -> None:
    obj = make(_context.Context(MEMBER, Limits(max_depth=64, max_items=100), "latin1"))
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        with pytest.raises(TypeError, match="internal safenpz object"):
            pickle.dumps(obj, protocol=protocol)


@pytest.mark.parametrize("module", ["numpy.core", "numpy._core"])
def test_numpy_1_16_0_spelling_of_the_c_module(module: str) -> None:
    """NumPy 1.16.0 pickled ``numpy.core._multiarray_umath._reconstruct`` and
    ``.scalar`` (1.16.1 went back to ``numpy.core.multiarray``)."""
    arr = np.array([[1, 2], [np.float32(3.5)]], dtype=object)
    data = pickle.dumps(arr, protocol=2)
    spelling = f"c{module}._multiarray_umath\n".encode()
    data, count = re.subn(rb"cnumpy\.(?:_)?core\.multiarray\n", spelling, data)
    assert count == 2  # _reconstruct and scalar
    assert_identical(safe_loads(data), arr)


# --------------------------------------------------------------------------
# errors carry their location and their numbers as attributes (the decoder's
# own checks: the scanner, switched off here, refuses some of these first)


@pytest.mark.usefixtures("no_scanner")
def test_limit_errors_carry_the_limit_and_the_values() -> None:
    data = stream(lst(*[intop(i) for i in range(50)]))
    with pytest.raises(LimitError) as info:
        safe_loads(data, member=MEMBER, limits=Limits(max_items=10))
    err = info.value
    assert (err.limit, err.value, err.maximum) == ("max_items", 50, 10)
    assert err.where == Where(member=MEMBER)
    assert str(err) == (
        f"member '{MEMBER}': the pickle holds more than max_items=10 values; "
        "pass a larger max_items to load it"
    )


@pytest.mark.usefixtures("no_scanner")
def test_depth_and_object_array_limits_carry_their_values() -> None:
    with pytest.raises(LimitError) as info:
        safe_loads(_nested_lists(10), member=MEMBER, limits=Limits(max_depth=5))
    assert (info.value.limit, info.value.value, info.value.maximum) == (
        "max_depth",
        6,
        5,
    )
    assert info.value.member == MEMBER
    array = _arr(_astate(dtype=_OBJ, shape=tup(intop(3)), data=lst(*[intop(1)] * 3)))
    with pytest.raises(LimitError) as info:
        safe_loads(stream(array), member=MEMBER, limits=Limits(max_items=2))
    assert (info.value.limit, info.value.value, info.value.maximum) == (
        "max_items",
        3,
        2,
    )
    assert str(info.value).startswith(f"member '{MEMBER}': object array of 3 ")


@pytest.mark.usefixtures("no_scanner")
def test_format_errors_carry_the_member() -> None:
    with pytest.raises(FormatError) as info:
        safe_loads(stream(_arr(_astate(dtype=_DTYPE))), member=MEMBER)
    assert info.value.where == Where(member=MEMBER)
    assert str(info.value) == f"member '{MEMBER}': expected a dtype, got _Constructor"


@pytest.mark.usefixtures("no_scanner")
def test_a_build_on_an_ordered_dict_names_the_opcode() -> None:
    data = b"\x80\x02ccollections\nOrderedDict\n)R}X\x01\x00\x00\x00xK\x01sb."
    with pytest.raises(FormatError) as info:
        safe_loads(data, member=MEMBER)
    assert info.value.where == Where(member=MEMBER, opcode="BUILD")
    assert str(info.value) == (
        f"member '{MEMBER}': the pickle sets attributes on an OrderedDict "
        "(opcode BUILD)"
    )


@pytest.mark.usefixtures("no_scanner")
def test_find_class_errors_carry_the_global_name() -> None:
    with pytest.raises(UnsafeFileError) as info:
        safe_loads(stream(call(glob("os", "system"), ustr("true"))), member=MEMBER)
    assert info.value.global_name == "os.system"
    assert info.value.member == MEMBER
    assert str(info.value) == (
        f"member '{MEMBER}': global os.system is not in safenpz's table of "
        "allowed constructors"
    )
    with pytest.raises(UnsafeFileError) as info:
        safe_loads(b"P0\n.", member=MEMBER)
    assert (info.value.member, info.value.global_name) == (MEMBER, None)


@pytest.mark.usefixtures("no_scanner")
def test_malformed_streams_carry_the_member() -> None:
    with pytest.raises(FormatError, match="the pickle is malformed") as info:
        safe_loads(stream(b"a"), member=MEMBER)  # APPEND on an empty stack
    assert info.value.where == Where(member=MEMBER)
    assert isinstance(info.value.__cause__, pickle.UnpicklingError)
