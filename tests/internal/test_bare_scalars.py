"""Numeric NumPy scalars handed back bare after a scan (white-box, differential).

When the strict scan of a stream passed, the decoder's ``scalar`` constructor
returns numeric NumPy scalars as they are
(:func:`safenpz._pickle._constructors._bare_scalar`) instead of wrapping each
in a :class:`~safenpz._pickle._context.Done` that the final walk unwraps.
Each stream here is decoded both ways: by :func:`safe_loads` (the scan passes,
bare scalars) and by the decoder alone with its scan switched off (every
scalar wrapped, unwrapped by the walk). The outcome must be identical: the
same value (types, bits, key order, shared objects still shared), or the
same error (class and message). The bare path must also be taken, so the
tests cannot pass by never taking it.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pytest

from identical import assert_identical
from safenpz import scan_pickle
from safenpz._exceptions import SafenpzError
from safenpz._limits import Limits
from safenpz._pickle import _decode
from safenpz._pickle._constructors import _ScannedScalar
from safenpz._pickle._context import BARE_SCALARS, Context, Done

_NUMERIC = "?bBhHiIlLqQefdgFDG"


class _Pairs(list[tuple[Any, Any]]):
    """Written as a dict of these pairs, equal keys included."""


_PurePickler: Any = pickle._Pickler  # the pure-Python pickler (its dispatch)


class _PairsPickler(_PurePickler):
    dispatch: ClassVar[dict[type, Any]] = dict(_PurePickler.dispatch)

    def save_pairs(self: Any, obj: _Pairs) -> None:
        self.write(pickle.EMPTY_DICT)
        self.memoize(obj)
        self._batch_setitems(iter(obj))

    dispatch[_Pairs] = save_pairs


def _history(code: str, n: int) -> dict[str, list[Any]]:
    dt = np.dtype(code)
    vals = np.arange(n).astype(dt)
    return {"loss": list(vals), "acc": list(vals[::-1])}


def _values() -> Iterator[tuple[str, Any]]:
    for code in _NUMERIC:
        yield f"history-{code}", _history(code, 40)
    yield "history->f8", {"loss": list(np.arange(30, dtype=">f8"))}
    yield "label-map", {np.int64(i): f"label{i}" for i in range(300)}
    yield "label-map-values", {f"k{i}": np.int64(i) for i in range(300)}
    # equal keys: the first key object stays, the last value wins
    keys = [np.int64(1), np.int32(1), 1, np.float64(1.0), True, np.float64(2)]
    yield "equal-keys", _Pairs((k, i) for i, k in enumerate(keys))
    yield "equal-keys-first-int", _Pairs([(1, "a"), (np.int64(1), "b")])
    yield "nan-and-zeros", [np.float64("nan"), np.float64(-0.0), np.float32(0.0)]
    yield "scalar-tuple", (np.float64(1), np.int8(2), (np.uint16(3),))
    yield "scalar-set", {np.int64(3), np.int64(4), 5}
    yield "scalar-frozenset", frozenset({np.float32(1.5), np.int16(2)})
    yield "tuple-keys", {(np.int64(1), np.int64(2)): 1, (np.int64(3),): 2}
    yield "complex", [np.complex64(1 + 2j), np.complex128(-1j)]
    yield "long-double", [np.longdouble(1) / 3, np.clongdouble(2)]
    yield "wrapped-kinds", [np.str_("s"), np.bytes_(b"b"), np.datetime64(1, "D")]
    yield "void", [np.zeros(1, "i4,f8")[0]]
    obj = np.empty(3, dtype=object)
    obj[:] = [np.float64(1), np.int64(2), [np.uint8(3)]]
    yield "object-array", obj
    shared = [np.float64(2.5)]
    yield "shared", {"a": shared, "b": shared, "c": [shared, shared]}


def _dumped(value: Any, protocol: int) -> bytes:
    buf = io.BytesIO()
    _PairsPickler(buf, protocol=protocol).dump(value)
    return buf.getvalue()


#: Equal keys, wrapped (a scalar) and plain (``1``, ``True``) in turn: both
#: paths must give pickle's (and np.load's) ``{np.int64(1): 4}`` (the first
#: key, the last value). The wrapped path merges them because a
#: :class:`Done` hashes and compares as its scalar.
EQUAL_KEYS = {
    _dumped(_Pairs((k, i) for i, k in enumerate(keys)), protocol)
    for keys in [[np.int64(1), np.int32(1), 1, np.float64(1.0), True, np.float64(2)]]
    for protocol in (2, 3, 4)
}

CASES = [
    pytest.param(_dumped(value, protocol), id=f"{name}-p{protocol}")
    for name, value in _values()
    for protocol in (2, 3, 4)
]


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except SafenpzError as err:
        return "error", (type(err).__name__, str(err))


def _decoder_alone(
    data: bytes, limits: Limits, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, Any]:
    with monkeypatch.context() as patch:
        patch.setattr(_decode, "scan_pickle", lambda *args, **kwargs: None)
        return _outcome(lambda: _decode.safe_loads(data, limits=limits))


def _same(got: tuple[str, Any], want: tuple[str, Any]) -> None:
    assert got[0] == want[0], (got, want)
    if got[0] == "ok":
        assert_identical(got[1], want[1])
        # shared objects stay shared, as the walk keeps them
        assert pickle.dumps(got[1], protocol=4) == pickle.dumps(want[1], protocol=4)
    else:
        assert got == want


@pytest.mark.parametrize("data", CASES)
def test_bare_scalars_give_the_walks_result(
    data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = Limits()
    got = _outcome(lambda: _decode.safe_loads(data, limits=limits))
    assert got[0] == "ok"
    assert_identical(got[1], pickle.loads(data))
    _same(got, _decoder_alone(data, limits, monkeypatch))
    if b"builtins" not in data:  # the pairs became a dict
        assert type(got[1]) is not _Pairs


def test_equal_keys_merge_as_pickle_merges_on_both_paths(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Equal keys, bare or wrapped: the first key and the last value."""
    for data in EQUAL_KEYS:
        want = pickle.loads(data)
        assert want == {np.int64(1): 4, np.float64(2): 5}
        assert_identical(_decode.safe_loads(data), want)
        outcome = _decoder_alone(data, Limits(), monkeypatch)
        assert outcome[0] == "ok"
        assert_identical(outcome[1], want)


@pytest.mark.parametrize(
    "limits",
    [Limits(max_items=50), Limits(max_depth=2), Limits(max_items=300)],
    ids=["items-50", "depth-2", "items-300"],
)
@pytest.mark.parametrize("data", CASES[::5])
def test_bare_scalars_under_small_limits(
    data: bytes, limits: Limits, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the scan passes, the result is the walk's; where it refuses, it
    refuses before the decoder runs (the load's verdict is the scan's)."""
    got = _outcome(lambda: _decode.safe_loads(data, limits=limits))
    if got[0] == "ok":
        _same(got, _decoder_alone(data, limits, monkeypatch))


def _unpickled(data: bytes, *, scanned: bool) -> Any:
    """What the C unpickler returns with the constructors of a decode that
    was (or was not) scanned; the scan itself is not run."""
    ctx = Context("m", Limits(), "latin1", scanned=scanned)
    return _decode._TableUnpickler(_decode._Input(data), ctx).load()


def test_the_bare_path_is_taken() -> None:
    data = _dumped([np.float64(1), np.float32(2), np.float64(3), np.str_("s")], 4)
    bare = _unpickled(data, scanned=True)
    assert [type(x) for x in bare[:3]] == [np.float64, np.float32, np.float64]
    assert type(bare[3]) is Done
    wrapped = _unpickled(data, scanned=False)
    assert {type(x) for x in wrapped} == {Done}
    unpickler = _decode._TableUnpickler(
        _decode._Input(data), Context("m", Limits(), "latin1", scanned=True)
    )
    unpickler.load()
    kinds = {type(c) for c in unpickler.constructors().values()}
    assert _ScannedScalar in kinds


def _edits(data: bytes) -> Iterator[bytes]:
    for pos in range(len(data)):
        for byte in {data[pos] ^ 1, 4, 8, 0x62}:
            yield data[:pos] + bytes([byte]) + data[pos + 1 :]


EDITED = [
    pytest.param(_dumped(value, protocol), id=f"{name}-p{protocol}")
    for name, value in [
        ("mixed", [np.float64(1), np.float32(2), np.float64(3), np.int8(4)]),
        ("keys", {np.int64(1): np.uint16(2), np.int64(3): 4.0}),
    ]
    for protocol in (2, 4)
]


@pytest.mark.parametrize("data", EDITED)
def test_edited_streams_the_scan_passes_decode_alike(
    data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One byte changed anywhere (a data length, a dtype, an opcode): where
    the scan passes, the bare path gives the decoder alone's outcome."""
    limits = Limits()
    passed = 0
    for edited in _edits(data):
        try:
            scan_pickle(edited, limits=limits)
        except SafenpzError:
            continue
        passed += 1
        got = _outcome(lambda e=edited: _decode.safe_loads(e, limits=limits))
        want = _decoder_alone(edited, limits, monkeypatch)
        _same(got, want)
    assert passed > 10


def test_the_bare_types_are_the_numeric_scalars() -> None:
    assert {np.dtype(code).type for code in _NUMERIC} == BARE_SCALARS
    assert all(issubclass(tp, np.number | np.bool_) for tp in BARE_SCALARS)
