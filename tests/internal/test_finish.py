"""The three ways to the final walk's result agree (white-box).

:func:`safenpz._pickle._finish.finish` gives the result of the exact walk
(:class:`~safenpz._pickle._walk.Walker`) without it when it can: by proof
(:func:`~safenpz._pickle._finish.nothing_to_walk`) or in bulk
(:func:`~safenpz._pickle._walk_bulk.bulk_walk`). Each stream here is decoded
three times, once per way, and wherever a shortcut answers, its answer must be
identical to the exact walk's (which must then succeed). Every shortcut must
also answer for the shapes it exists for, so the tests cannot pass by never
taking it.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile import HOSTILE, MALFORMED, Hostile, Malformed, glob, intop, lst, stream
from identical import assert_identical
from safenpz._exceptions import FormatError, LimitError, SafenpzError
from safenpz._limits import Limits
from safenpz._pickle import _decode, _walk_bulk
from safenpz._pickle._constructors import TABLE
from safenpz._pickle._context import Context
from safenpz._pickle._finish import PROVEN, finish, nothing_to_walk
from safenpz._pickle._scanner import scan_pickle
from safenpz._pickle._walk import Walker
from safenpz._pickle._walk_bulk import BAIL, BUILDER_TYPES, bulk_walk
from strategies import byte_edits, mutate, plain_data

MEMBER = "x.npy"
NO_RESULT = object()


def _unpickled(data: bytes, limits: Limits) -> tuple[Any, Context, dict[Any, Any]]:
    """What the C unpickler returns (the unpickler gone), its context and the
    constructors it was handed."""
    ctx = Context(MEMBER, limits, "latin1")
    unpickler = _decode._TableUnpickler(_decode._Input(data), ctx)
    raw = unpickler.load()
    constructors = unpickler.constructors()
    del unpickler
    return raw, ctx, constructors


def _outcome(fn: Any) -> tuple[str, Any]:
    """("ok", value), or ("error", (type, message)) for any exception."""
    try:
        return "ok", fn()
    except Exception as err:
        return "error", (type(err).__name__, str(err))


def _exact(data: bytes, limits: Limits) -> tuple[str, Any]:
    def run() -> Any:
        raw, ctx, _ = _unpickled(data, limits)
        return Walker(ctx).walk(raw, 0)

    return _outcome(run)


def _bulk(data: bytes, limits: Limits) -> Any:
    """The bulk walk's result, :data:`BAIL`, or NO_RESULT if unpickling fails."""
    try:
        raw, ctx, _ = _unpickled(data, limits)
    except Exception:
        return NO_RESULT
    return bulk_walk(raw, ctx, 8 * len(data) + 4096)


def _proved(data: bytes, limits: Limits) -> Any:
    """The result without a walk, or NO_RESULT if the proof does not apply."""
    try:
        scan_pickle(data, member=MEMBER, limits=limits)
        raw, ctx, constructors = _unpickled(data, limits)
    except Exception:
        return NO_RESULT
    if not nothing_to_walk(raw, ctx, constructors, len(data)):
        return NO_RESULT
    return raw.result() if type(raw) in BUILDER_TYPES else raw


def check(data: bytes, limits: Limits | None = None) -> dict[str, bool]:
    """Decode `data` the three ways; the shortcuts that answer agree with the
    exact walk. Returns which shortcuts answered."""
    limits = Limits() if limits is None else limits
    kind, exact = _exact(data, limits)
    bulk = _bulk(data, limits)
    proved = _proved(data, limits)
    for got in (bulk, proved):
        if got is BAIL or got is NO_RESULT:
            continue
        assert kind == "ok", f"a shortcut answered where the walk refuses: {exact}"
        assert_identical(got, exact)
    return {"bulk": bulk is not BAIL, "proof": proved is not NO_RESULT}


def _arr(items: list[Any], shape: tuple[int, ...] | None = None) -> np.ndarray:
    arr = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        arr[i] = item
    return arr if shape is None else arr.reshape(shape)


def _history() -> dict[str, list[Any]]:
    return {k: [np.float64(i / 7) for i in range(50)] for k in ("loss", "acc")}


# --------------------------------------------------------------------------
# the shapes each shortcut exists for: it answers, and agrees


SHAPES: dict[str, tuple[Any, set[str]]] = {
    "strings": (_arr([f"w{i}" for i in range(100)]), {"bulk", "proof"}),
    "dicts": (_arr([{"id": i, "s": i / 3} for i in range(50)]), {"bulk", "proof"}),
    "rows": (_arr([[i, str(i), i / 3] for i in range(50)]), {"bulk", "proof"}),
    "vocab": (_arr([{f"w{i}": i for i in range(100)}], ()), {"bulk", "proof"}),
    "bare-list": ([[1, "a"], (2.5, None), {"k": b"v"}], {"bulk", "proof"}),
    "history": (_arr([_history()], ()), {"bulk"}),
    "weights": (_arr([{"w": np.ones((3, 2)), "b": np.zeros(2)}], ()), {"bulk"}),
    "ragged-arrays": (_arr([np.arange(i) for i in range(5)]), {"bulk"}),
    "nested-arrays": (_arr([_arr([np.int8(1), [np.float32(2)]])]), {"bulk"}),
    "dtype-value": ([np.dtype("f4"), {"t": np.dtype(">i2")}], {"bulk"}),
    "ordered": (OrderedDict(a=1, b=[2]), {"bulk"}),
    # set() before protocol 4 (amplifies), EMPTY_SET from it on (native)
    "sets": ({1, (2, 3), frozenset({4})}, {"bulk"}),
    "set-of-ints": (set(range(5)), {"bulk"}),
    # builders where the exact walk rebuilds: tuples, sets, keys
    "scalar-in-tuple": ((np.float64(1), 2), set()),
    "scalar-in-set": ({np.int64(3)}, set()),
    "scalar-key": ({np.int16(3): "x"}, set()),
}


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("name", list(SHAPES))
def test_each_shortcut_answers_for_its_shapes(name: str, protocol: int) -> None:
    value, expected = SHAPES[name]
    if name.startswith("set") and protocol >= 4:
        expected = expected | {"proof"}
    data = pickle.dumps(value, protocol=protocol)
    answered = check(data)
    assert {k for k, v in answered.items() if v} == expected
    assert_identical(_decode.safe_loads(data), pickle.loads(data))


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(plain_data(), st.sampled_from([0, 1, 2, 3, 4, 5]))
def test_shortcuts_agree_with_the_walk_on_plain_data(value: Any, protocol: int) -> None:
    check(pickle.dumps(value, protocol=protocol))


SEEDS = [pickle.dumps(v, protocol=p) for v, _ in SHAPES.values() for p in (2, 4)]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SEEDS), byte_edits(2_000))
def test_shortcuts_agree_with_the_walk_on_edited_streams(
    seed: bytes, edits: Any
) -> None:
    """Streams the scan passes (the decoder's input), edited at random."""
    data = mutate(seed, edits)
    try:
        scan_pickle(data, member=MEMBER)
    except SafenpzError:
        return
    check(data)


@pytest.mark.parametrize("case", MALFORMED, ids=[m.id for m in MALFORMED])
def test_shortcuts_agree_with_the_walk_on_malformed_streams(case: Malformed) -> None:
    check(case.data)


@pytest.mark.parametrize("case", HOSTILE, ids=[c.id for c in HOSTILE])
def test_shortcuts_agree_with_the_walk_on_hostile_streams(
    case: Hostile, sentinel: Any
) -> None:
    """Through the closed table only (it refuses every global outside it)."""
    check(case.build(str(sentinel)))
    assert not sentinel.exists()


# --------------------------------------------------------------------------
# shared objects: visited once by the walk, each time reached in bulk


def test_shared_objects_stay_shared() -> None:
    row = [1, 2]
    scalar = np.float64(0.5)
    arr = np.arange(3)
    value = [row, row, {"r": row}, scalar, scalar, arr, [arr], _arr([row, scalar])]
    data = pickle.dumps(value, protocol=4)
    assert check(data) == {"bulk": True, "proof": False}
    got = _decode.safe_loads(data)
    assert got[0] is got[1] is got[2]["r"]
    assert got[3] is got[4]
    assert got[5] is got[6][0]
    assert got[7][0] is got[0]
    assert got[7][1] is got[3]


def test_shared_doubling_is_left_to_the_walk() -> None:
    """2**40 paths through 40 shared lists: the bulk walk stops at its
    budget, the exact walk visits each list once."""
    x: list[Any] = [np.float64(1)]
    for _ in range(40):
        x = [x, x]
    data = pickle.dumps(x, protocol=4)
    assert check(data) == {"bulk": False, "proof": False}
    assert _decode.safe_loads(data, limits=Limits(max_depth=64))[0][0] is not None


# --------------------------------------------------------------------------
# what the walk refuses, the shortcuts leave to it


def _cycle() -> bytes:
    data: list[Any] = []
    data.append(data)
    return pickle.dumps(data, protocol=2)


REFUSED: dict[str, tuple[bytes, Limits, type[SafenpzError]]] = {
    "cycle": (_cycle(), Limits(), FormatError),
    "too-deep": (pickle.dumps([[[[[[1]]]]]]), Limits(max_depth=4), LimitError),
    "too-deep-scalar": (
        pickle.dumps([[[[[np.int8(1)]]]]]),
        Limits(max_depth=4),
        LimitError,
    ),
    "too-many": (pickle.dumps([[1, 2], [3, 4]]), Limits(max_items=5), LimitError),
    "too-many-in-array": (
        pickle.dumps(_arr([[1, 2], {3: 4}])),
        Limits(max_items=4),
        LimitError,
    ),
    "constructor-value": (stream(lst(glob("numpy", "dtype"))), Limits(), FormatError),
    "constructor-key": (
        stream(b"}" + glob("numpy", "dtype") + intop(1) + b"s"),
        Limits(),
        FormatError,
    ),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refusals_are_the_walks(name: str) -> None:
    data, limits, error = REFUSED[name]
    assert check(data, limits) == {"bulk": False, "proof": False}
    with pytest.raises(error):
        _decode.safe_loads(data, member=MEMBER, limits=limits)


@pytest.mark.parametrize(
    ("value", "limits"),
    [
        ([[[[1]]]], Limits(max_depth=3)),
        ([[1, 2], [3, 4]], Limits(max_items=6)),
        (_arr([[1, 2], {3: 4}]), Limits(max_items=5)),
        ([[[[np.int8(1)]]]], Limits(max_depth=4)),
    ],
    ids=["depth", "items", "array-items", "scalar-depth"],
)
def test_limits_reached_exactly_are_accepted(value: Any, limits: Limits) -> None:
    """By the walk and in bulk (the scan, which counts a ``REDUCE`` and a
    ``BUILD`` as levels too, may refuse first)."""
    data = pickle.dumps(value, protocol=4)
    assert check(data, limits)["bulk"]
    assert _exact(data, limits)[0] == "ok"


def test_the_proof_needs_max_depth_within_the_bulk_levels() -> None:
    """Beyond MAX_LEVELS the exact walk decides (it recurses): no shortcut."""
    data = pickle.dumps([[1]])
    deep = Limits(max_depth=_walk_bulk.MAX_LEVELS + 1)
    assert check(data, deep) == {"bulk": True, "proof": False}


def test_the_proof_needs_the_stream_within_max_items() -> None:
    """Items are bounded by the stream's bytes only: a longer stream is walked."""
    data = pickle.dumps(["a", "b"])
    assert check(data, Limits(max_items=len(data) - 1)) == {
        "bulk": True,
        "proof": False,
    }
    assert check(data, Limits(max_items=len(data)))["proof"]


def test_a_constructor_in_the_memo_only_is_not_in_the_value() -> None:
    """Stored and never fetched: the memo goes with the unpickler."""
    data = stream(glob("numpy", "dtype") + b"q\x00" + b"0" + lst(intop(1)))
    assert check(data) == {"bulk": True, "proof": True}


def test_every_global_is_proven_or_walked_on_purpose() -> None:
    """A global added to the table is walked until it is added to PROVEN
    (its values must be leaves or registered builders)."""
    assert {name for _, name in TABLE} - PROVEN == {"set", "frozenset", "OrderedDict"}
    assert {name for _, name in TABLE} >= PROVEN


def test_finish_takes_the_builders_and_the_constructors() -> None:
    """Nothing keeps the builders alive after the decode (they hold its
    context: a cycle while they are listed there)."""
    for value in (_arr(["a"]), _history()):
        data = pickle.dumps(value, protocol=4)
        raw, ctx, constructors = _unpickled(data, Limits())
        assert ctx.made
        assert constructors
        finish(raw, ctx, constructors, scanned=True, size=len(data))
        assert ctx.made == []
        assert constructors == {}
