"""The hashing cost's short ways against its general loop (white-box,
differential).

:class:`safenpz._pickle._hashing.HashCost` takes two short ways: keys that
constructors made (NumPy scalar dict keys and set items: ``_made_keys``) and
tuples of numbers and literals only (``tuple_of``). Every stream here is
scanned with them on and off (``_MADE_ONLY`` and ``_SCALAR_ITEMS`` emptied);
the outcome must be identical: the whole report, or the error (class,
message, member, opcode, offset, limit fields). The streams hold label maps,
colliding keys (as ``tests/collisions.py`` crafts them), voids in tuples,
array values, tuples of every kind, under small limits, with one byte
changed.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from safenpz import SafenpzError, scan_pickle
from safenpz._limits import MAX_SAME_HASH, Limits
from safenpz._pickle import _hashing


def _outcome(data: bytes, short: bool, **kw: Any) -> tuple[Any, ...]:
    saved = _hashing._MADE_ONLY, _hashing._SCALAR_ITEMS
    if not short:  # no kinds equal an impossible set; no item type is allowed
        _hashing._MADE_ONLY = {object}
        _hashing._SCALAR_ITEMS = frozenset({type(None)})
    try:
        report = scan_pickle(data, member="m", **kw)
    except SafenpzError as err:
        fields = ("member", "opcode", "offset", "limit", "value", "maximum")
        where = tuple(getattr(err, f, None) for f in fields)
        return ("error", type(err).__name__, str(err), *where)
    finally:
        _hashing._MADE_ONLY, _hashing._SCALAR_ITEMS = saved
    return (
        "report",
        sorted(report.opcodes.items()),
        report.problems,
        report.containers,
        report.result,
        report.shape,
        str(report.dtype),
    )


def _same(data: bytes, **kw: Any) -> tuple[Any, ...]:
    short = _outcome(data, True, **kw)
    assert short == _outcome(data, False, **kw)
    return short


def _colliding(n: int) -> set[Any]:
    t = 2**52
    return {np.complex128(complex(float(t - 1000003 * k), float(k))) for k in range(n)}


def _streams() -> Iterator[tuple[str, bytes]]:
    labels = {np.int64(i): f"label{i}" for i in range(300)}
    for protocol in (2, 3, 4):
        yield f"labels{protocol}", pickle.dumps(labels, protocol=protocol)
    few = {np.int64(i): i for i in range(6)} | {np.float32(7): 7}
    yield "few labels", pickle.dumps(few, protocol=2)
    yield "float keys", pickle.dumps({np.float64(i / 7): i for i in range(300)}, 4)
    yield "mixed keys", pickle.dumps({np.int8(1): 1, 2: 2, np.float32(3): 3}, 4)
    yield "colliding", pickle.dumps(_colliding(MAX_SAME_HASH + 50), protocol=4)
    yield "colliding few", pickle.dumps(_colliding(MAX_SAME_HASH - 2), protocol=4)
    yield "long double keys", pickle.dumps({np.longdouble(i): i for i in range(40)}, 4)
    yield "datetime keys", pickle.dumps({np.datetime64(i, "s"): i for i in range(40)})
    void = np.zeros(2, "i4,i4")
    yield "void", pickle.dumps([(void[0],), void[1]], protocol=4)
    yield "str scalar keys", pickle.dumps({np.str_(f"k{i}"): i for i in range(40)}, 4)
    yield (
        "tuples",
        pickle.dumps(
            {(1, "a", 2.5): 1, (): 2, (b"x", None, True): 3, ((1, 2), 3): 4}, protocol=2
        ),
    )
    yield "shapes", pickle.dumps({"a": np.zeros((2, 3)), "b": np.ones(4)}, protocol=4)
    yield "big ints", pickle.dumps({(2**70, 1): 1, (2**61, -(2**62)): 2}, protocol=2)


STREAMS = dict(_streams())


@pytest.mark.parametrize("name", list(STREAMS))
def test_the_short_ways_scan_as_the_general_loop(name: str) -> None:
    _same(STREAMS[name])
    _same(STREAMS[name], strict=False)


@pytest.mark.parametrize(
    "limits",
    [Limits(max_items=100), Limits(max_depth=1), Limits(max_items=301)],
    ids=["items-100", "depth-1", "items-301"],
)
def test_the_short_ways_under_small_limits(limits: Limits) -> None:
    for data in STREAMS.values():
        _same(data, limits=limits)


@pytest.mark.parametrize("name", ["few labels", "mixed keys", "void", "tuples"])
def test_one_byte_changed(name: str) -> None:
    data = STREAMS[name]
    for pos in range(len(data)):
        for byte in (data[pos] ^ 1, 0x86):
            _same(data[:pos] + bytes([byte]) + data[pos + 1 :])
