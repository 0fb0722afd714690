"""Runs of NumPy scalars in one step (``_pickle._scalars``): same scan as the
opcode handlers alone (white-box, differential).

Every stream is scanned twice, with the run path on and off
(``_scalars.ENABLED``); the outcome must be identical: the whole report
(opcode counts, containers, problems, result, shape, dtype), or the error
(class, message, member, opcode, offset, limit fields). The streams are what
``np.save`` writes for scalar-heavy data (Keras histories, label maps, sets
of colliding scalar keys), under small limits, in report mode, truncated,
with one byte changed anywhere in the runs, and with memo entries stored
where a run's would go.
"""

from __future__ import annotations

import pickle
import pickletools
import random
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from numpy.typing import DTypeLike

from safenpz import SafenpzError, scan_pickle
from safenpz._limits import MAX_SAME_HASH, Limits
from safenpz._pickle import _prescan, _scalars
from safenpz._pickle._decode import safe_loads


def _unframed(data: bytes) -> bytes:
    """`data` without its FRAME opcodes (so bytes can be inserted)."""
    cuts = [
        pos
        for op, _, pos in pickletools.genops(data)
        if op.name == "FRAME" and pos is not None
    ]
    out, last = [], 0
    for pos in cuts:
        out.append(data[last:pos])
        last = pos + 9
    out.append(data[last:])
    return b"".join(out)


def _outcome(data: bytes, enabled: bool, **kw: Any) -> tuple[Any, ...]:
    """Everything a scan says about `data`, with the run path on or off."""
    old = _scalars.ENABLED
    _scalars.ENABLED = enabled
    try:
        report = scan_pickle(data, member="m", **kw)
    except SafenpzError as err:
        fields = ("member", "opcode", "offset", "limit", "value", "maximum")
        where = tuple(getattr(err, f, None) for f in fields)
        return ("error", type(err).__name__, str(err), *where)
    finally:
        _scalars.ENABLED = old
    return (
        "report",
        report.protocol,
        sorted(report.opcodes.items()),
        report.problems,
        report.containers,
        report.result,
        report.shape,
        str(report.dtype),
    )


def _same(data: bytes, **kw: Any) -> tuple[Any, ...]:
    fast = _outcome(data, True, **kw)
    exact = _outcome(data, False, **kw)
    assert fast == exact
    return fast


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many units each application of the run path took."""
    taken: list[int] = []
    push, push_puts = _scalars._push, _scalars._push_puts

    def counting(sc: Any, pos: int, k: int, *rest: Any) -> None:
        taken.append(k)
        push(sc, pos, k, *rest)

    def counting_puts(sc: Any, units: list[Any], *rest: Any) -> None:
        taken.append(len(units))
        push_puts(sc, units, *rest)

    monkeypatch.setattr(_scalars, "_push", counting)
    monkeypatch.setattr(_scalars, "_push_puts", counting_puts)
    return taken


# --------------------------------------------------------------------------
# the streams


def _history(dtype: Any, n: int = 300) -> dict[str, list[Any]]:
    rng = np.random.default_rng(0)
    values = rng.random(n) * 1000
    return {
        key: [np.array(v).astype(dtype)[()] for v in values]
        for key in ("loss", "accuracy")
    }


_DTYPES: list[DTypeLike] = [
    np.float64,
    np.float32,
    np.float16,
    np.int64,
    np.uint8,
    np.bool_,
    np.complex128,
    np.longdouble,
    "datetime64[s]",
    "U3",
    "S2",
    "V4",
]


def _colliding(n: int) -> set[Any]:
    """``numpy.complex128`` values all hashing to 2**52 (tests/collisions.py)."""
    t = 2**52
    return {np.complex128(complex(float(t - 1000003 * k), float(k))) for k in range(n)}


def _streams() -> Iterator[tuple[str, bytes]]:
    for dt in _DTYPES:
        name = np.dtype(dt).str
        yield f"history {name}", pickle.dumps(_history(dt), protocol=4)
        yield f"array {name}", pickle.dumps(np.array(_history(dt)), protocol=4)
    for dt in (np.float64, np.float32, np.int64, np.complex128):
        name = np.dtype(dt).str
        yield f"history3 {name}", pickle.dumps(_history(dt), protocol=3)
    labels = {np.int64(i): f"label{i}" for i in range(300)}
    yield "labels", pickle.dumps(labels, protocol=4)
    yield "labels3", pickle.dumps(labels, protocol=3)
    yield "float keys", pickle.dumps({np.float64(i / 7): i for i in range(300)}, 4)
    yield "colliding set", pickle.dumps(_colliding(MAX_SAME_HASH + 50), protocol=4)
    yield "colliding few", pickle.dumps(_colliding(MAX_SAME_HASH - 2), protocol=4)
    yield "colliding set3", pickle.dumps(_colliding(MAX_SAME_HASH + 50), protocol=3)
    same = [np.float64(1.5)] * 50 + [np.float64(2.5)] * 50  # memo gets of scalars
    yield "shared", pickle.dumps([same, set(same), tuple(same)], protocol=4)


STREAMS = dict(_streams())
#: Streams without a run: each scalar has a dtype of its own (datetimes,
#: strings, voids), or the two bools are memo gets.
NO_RUN = {
    f"{kind} {dt}"
    for kind in ("history", "array")
    for dt in ["|b1", "<M8[s]", "<U3", "|S2", "|V4"]
}


@pytest.mark.parametrize("name", list(STREAMS))
def test_runs_scan_as_the_handlers_do(name: str, runs: list[int]) -> None:
    data = STREAMS[name]
    _same(data)
    _same(data, strict=False)
    assert bool(runs) == (name not in NO_RUN)  # the run path was taken


@pytest.mark.parametrize(
    "limits",
    [
        Limits(max_items=40),
        Limits(max_items=700),
        Limits(max_depth=1),
        Limits(max_depth=2),
        Limits(max_depth=3, max_items=300),
    ],
    ids=str,
)
def test_runs_under_small_limits(limits: Limits) -> None:
    for data in STREAMS.values():
        _same(data, limits=limits)
        _same(
            data, strict=False, max_depth=limits.max_depth, max_items=limits.max_items
        )


def test_the_container_limit_splits_a_run(runs: list[int]) -> None:
    data = STREAMS["history <f8"]
    containers = scan_pickle(data).containers
    for max_items in range(containers - 310, containers + 2):
        got = _same(data, max_items=max_items)
        assert (got[0] == "error") == (max_items < containers)
        got = _same(data, strict=False, max_items=max_items)
        assert bool(got[3]) == (max_items < containers)


def test_a_loaded_history_is_the_same(
    runs: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the load's own scan (the compiled pre-check would prove the stream)
    monkeypatch.setattr(_prescan, "ENABLED", False)
    obj = _history(np.float64, 2000)
    data = pickle.dumps(obj, protocol=4)
    got = safe_loads(data)
    assert got == obj
    assert all(type(v) is np.float64 for vs in got.values() for v in vs)
    assert sum(runs) == 4000 - 2  # all but the first of each list


@pytest.mark.parametrize(
    "name", ["history <f8", "labels", "colliding few", "history3 <f8", "labels3"]
)
def test_one_byte_changed(name: str) -> None:
    data = STREAMS[name]
    rng = random.Random(name)
    start = data.index(b"scalar")
    for _ in range(150):
        at = rng.randrange(start, len(data) - 1)
        bad = data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]
        _same(bad)
        _same(bad, strict=False)


@pytest.mark.parametrize("name", ["history <f8", "labels", "history3 <f8"])
def test_truncated(name: str) -> None:
    data = STREAMS[name]
    rng = random.Random(name)
    for end in rng.sample(range(len(data)), 60):
        _same(data[:end])
        _same(data[:end] + b".")


@pytest.mark.parametrize("index", [0, 1, 30, 31, 32, 60, 500, 10_000])
def test_memo_entries_stored_where_a_run_would_put_its_own(index: int) -> None:
    """``LONG_BINPUT index`` of a None, popped, before the data: a run whose
    memo indices meet it is left to the handlers."""
    data = _unframed(STREAMS["history <f8"])
    put = b"N" + b"r" + struct.pack("<I", index) + b"0"
    _same(data[:2] + put + data[2:])
    _same(data[:2] + put + data[2:], strict=False)


def test_units_written_by_hand() -> None:
    """Units after a non-scalar global, an unbuilt dtype, an object dtype,
    data of the wrong length, inside a MARK, and a get of a missing entry."""
    prelude = (
        b"\x8c\x15numpy.core.multiarray\x94\x8c\x06scalar\x94\x93\x94"  # 0, 1, 2
        b"\x8c\x05numpy\x94\x8c\x05dtype\x94\x93\x94"  # 3, 4, 5
        b"h\x05\x8c\x02f8\x94\x89\x88\x87\x94R\x94"  # 6, 7, 8 (unbuilt)
    )
    state = b"(K\x03\x8c\x01<\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t\x94b"
    built = prelude + state  # 8 built, 9 '<', 10 state
    obj = b"h\x05\x8c\x02O8\x94\x89\x88\x87\x94R\x94" + state.replace(b"<", b"|")

    def unit(g: int, d: int, data: bytes) -> bytes:
        return (
            b"h"
            + bytes([g, ord("h"), d])
            + b"C"
            + bytes([len(data)])
            + data
            + (b"\x94\x86\x94R\x94")
        )

    eight = [struct.pack("<d", i) for i in range(20)]
    cases = {
        "unbuilt": prelude + b"]\x94(" + b"".join(unit(2, 8, x) for x in eight),
        "built": built + b"]\x94(" + b"".join(unit(2, 8, x) for x in eight),
        "not scalar": built + b"(" + b"".join(unit(5, 8, x) for x in eight),
        "wrong length": built + b"(" + b"".join(unit(2, 8, x[:4]) for x in eight),
        "missing": built + b"(" + b"".join(unit(2, 99, x) for x in eight),
        "mixed": built
        + b"("
        + b"".join(unit(2, 8, x[: 8 - i % 3]) for i, x in enumerate(eight)),
        "object": built + b"0" + obj + b"(" + b"".join(unit(2, 17, x) for x in eight),
    }
    for name, body in cases.items():
        for end in (b"e.", b"l.", b"t.", b"\x85."):
            got = _same(b"\x80\x04" + body + end)
            if name == "built" and end == b"l.":
                assert got[0] == "report", got
            _same(b"\x80\x04" + body + end, strict=False)


def test_units_with_indexed_puts_written_by_hand(runs: list[int]) -> None:
    """Protocol 3 units (``BINPUT``/``LONG_BINPUT``) whose puts name the
    constructor's or the dtype's entry, an index beyond the stream, one
    index twice, both widths mixed."""
    data = _unframed(STREAMS["history3 <f8"])
    at = data.index(b"C\x08", data.index(b"C\x08") + 1) - 4  # the second unit
    head = data[:at]
    g, d = data[at + 1], data[at + 3]
    eight = [struct.pack("<d", i) for i in range(40)]

    def put(i: int) -> bytes:
        return b"q" + bytes([i]) if i < 256 else b"r" + struct.pack("<I", i)

    def unit(x: bytes, i: int, j: int, k: int) -> bytes:
        return (
            b"h"
            + bytes([g, ord("h"), d])
            + b"C\x08"
            + x
            + put(i)
            + b"\x86"
            + (put(j) + b"R" + put(k))
        )

    def units(puts: list[tuple[int, int, int]]) -> bytes:
        return b"".join(unit(x, *p) for x, p in zip(eight, puts, strict=False))

    fresh = [(300 + 3 * u, 301 + 3 * u, 302 + 3 * u) for u in range(40)]
    cases = {
        "fresh": fresh,
        "bytes put over g": [*fresh[:5], (g, 500, 501), *fresh[6:]],
        "tuple put over d": [*fresh[:7], (500, d, 501), *fresh[8:]],
        "scalar put over d": [*fresh[:7], (500, 501, d), *fresh[8:]],
        "beyond": [*fresh[:3], (500, 501, 10**8), *fresh[4:]],
        "twice": [(600, 600, 601)] * 40,
        "small": [(200 + u % 3, 210, 220) for u in range(40)],
    }
    for name, puts in cases.items():
        for end in (b"e000.", b"l.", b"."):
            got = _same(head + units(puts) + end)
            if name == "fresh" and end == b"e000.":
                assert got[0] == "report", got
            _same(head + units(puts) + end, strict=False)
    assert max(runs) == 40
