"""The scanner's bulk path changes nothing but speed: the edges (white-box).

Hand-made streams where runs of literal pushes begin and end: truncation
anywhere, memo puts of every kind (mixed in a run, indices beyond the
stream, ``MEMOIZE`` onto a taken index), text that is not UTF-8, names read
by ``STACK_GLOBAL`` right after a run and through the memo, plain literals
cut at a chunk's end, frames inside runs, the default thresholds on long
streams, internal errors.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from bulk_harness import MEMO, ON, P4, binget, binput, patched, run, same, ustr

from safenpz import scan_pickle
from safenpz._exceptions import FormatError
from safenpz._pickle import _bulk


@contextmanager
def _applied() -> Iterator[list[int]]:
    """Count the runs the bulk path applies (where the loop goes on past
    the run's start)."""
    done: list[int] = []
    apply = _bulk.Bulk._apply

    def spy(self: Any, runs: Any, k: int) -> int:
        end = apply(self, runs, k)
        if end != runs.starts[k]:
            done.append(end)
        return end

    with patched(_bulk.Bulk, "_apply", spy):
        yield done


def _small_streams() -> list[bytes]:
    words = ["os", "system", "a", "bb", "numpy", "ndarray"]
    return [
        pickle.dumps(words * 3, protocol=4),
        pickle.dumps({w: i for i, w in enumerate(words)}, protocol=2),
        pickle.dumps([[i, "s", 1.5] for i in range(4)], protocol=0),
        pickle.dumps([list(range(i)) for i in range(5)], protocol=1),
        pickle.dumps([b"x", "y", b"z"] * 4, protocol=3),
    ]


@pytest.mark.parametrize("k", range(5))
def test_truncated_anywhere(k: int) -> None:
    data = _small_streams()[k]
    for end in range(len(data)):
        same(data[:end])


_W = ustr("w")
_E = "é".encode()


@pytest.mark.parametrize(
    "body",
    [
        b"](" + (_W + MEMO) * 30 + b"e",  # protocol 4's strings
        b"](" + (b"X\x01\x00\x00\x00w" + b"q\x07") * 30 + b"e",  # protocol 3's
        b"](" + (_W + b"r\x00\x01\x00\x00") * 30 + b"e",  # LONG_BINPUT
        b"](" + (b"C\x01b" + MEMO) * 30 + b"e",  # bytes
        b"](" + (_W + MEMO + _W + b"q\x03") * 15 + b"e",  # puts of two kinds
        b"](" + (_W + b"q\x03" + _W + MEMO) * 15 + b"e",
        b"]q\x05(" + (_W + MEMO) * 30 + b"e",  # MEMOIZE onto a taken index
        b"](" + (_W + b"q\xff") * 30 + b"e",  # an index beyond the stream
        b"](" + (_W + b"r\xff\xff\xff\x7f") * 30 + b"e",
        b"](" + (_W + MEMO) * 10 + b"\x8c\x01\xff" + MEMO + _W * 10 + b"e",
        b"](" + _W * 10 + b"X\x02\x00\x00\x00\xed\xa0" + _W * 10 + b"e",
        b"](" + (b"\x8c\x02" + _E + MEMO) * 20 + b"X\x03\x00\x00\x00\xed\xa0\x80e",
        b"](" + (_W + b"K\x01" + b"N\x88") * 20 + b"e",  # numbers between
        b"}(" + (_W + MEMO + b"K\x01") * 20 + b"u",  # a vocabulary
        b"}(" + (_W + MEMO + b"K\x01") * 19 + _W + b"u",  # an odd count
        b"](" + (_W + MEMO) * 20 + b"\x95\x02\x00\x00\x00\x00\x00\x00\x00"
        b"" + (_W + MEMO) * 20 + b"e",  # a frame in a run
        b"](" + (_W + MEMO) * 20 + b"\x95\xff\xff\x00\x00\x00\x00\x00\x00"
        b"" + (_W + MEMO) * 20 + b"e",  # a frame too long
        b"](" + b"K\x01" * 20 + b"\x95\x02\x00\x00\x00\x00\x00\x00\x00"
        b"" + b"K\x02" * 20 + _W + b"\x95\x00\x00\x00\x00\x00\x00\x00\x00"
        b"" + MEMO + b"e",  # numbers cut by a frame, a frame before a put
        b"](" + (_W + MEMO) * 20 + b"h\x00h\x05" + (_W + MEMO) * 20 + b"e",  # gets
        b"(" + (_W + MEMO) * 20 + b"t",  # a tuple of them
        b"}(" + (_W + MEMO) * 20 + b"\x8c\x05numpy\x8c\x05dtype\x93e",
        b"(" + (_W + MEMO) * 20 + b"\x8c\x05numpy" + MEMO + b"\x8c\x05dtype"
        b"" + MEMO + b"\x93",  # names right after a run
        b"(" + (_W + MEMO) * 20 + b"\x8c\x02os" + MEMO + b"\x8c\x06system"
        b"" + MEMO + b"\x93",  # a refused global named by a run's strings
        b"(" + (_W + MEMO) * 20 + b"h\x14h\x15\x93",  # ... through the memo
        b"(" + (_W + MEMO) * 20 + b"C\x02os\x8c\x06system\x93",
        b"(" + (_W + MEMO) * 20 + b"K\x01\x8c\x06system\x93",
        b"(" + (b"K\x01" * 20 + _W) * 3 + b"\x93",
        b"]("
        + (_W + MEMO) * 20
        + b"X\x00\x20\x00\x00"
        + b"a" * 8192
        + (MEMO + _W) * 20
        + b"e",  # long text: the loop's
        b"](" + (_W + MEMO) * 20 + b"X\x00\x20\x00\x00" + b"a" * 8191 + b"\xff"
        b"" + MEMO + (_W + MEMO) * 20 + b"e",
        b"](" + (_W + MEMO) * 20 + b"X\xff\xff\xff\xff" + (_W + MEMO) * 20,
        # memo operations of the loop while a run's entries are pending
        b"](" + (_W + MEMO) * 30 + b"e" + MEMO + b"h\x00" + MEMO,
        b"](" + (_W + MEMO) * 30 + b"e" + b"q\x1e" + b"q\x05" + MEMO,
        b"](" + (_W + MEMO) * 30 + b"e" + b"r\x1e\x00\x00\x00" + MEMO + b"0" + MEMO,
        b"](" + (_W + b"q\x00") * 30 + b"e" + MEMO + b"q\x01" + MEMO,
        b"(" + (_W + MEMO) * 30 + MEMO + MEMO + b"t" + MEMO,
        b"](" + (_W + MEMO) * 30 + b"e(" + MEMO,  # nothing to memoise
        b"](" + (_W + MEMO) * 30 + b"eq",  # a truncated index
        b"](" + (_W + MEMO) * 30 + b"er\x1e\x00",
        b"](" + (_W + MEMO) * 30 + b"e" + b"q\xff" + MEMO,  # beyond the stream
        b"](" + (_W + MEMO) * 30 + b"e" + b"p30\n" + MEMO + b"g30\n",
        b"](" + (_W + MEMO) * 30 + b"e" + _W + MEMO + b"K\x01" + MEMO,
    ],
)
def test_hand_made_runs(body: bytes) -> None:
    for data in (P4 + body + b".", P4 + body, b"]" + body + b".", b"(" + body):
        same(data)
    same(P4 + b"N" + body + b"0.")


_U = b"U\x01a0"  # a Python 2 string first (the report's order), popped


@pytest.mark.parametrize("encoding", ["latin1", "bytes", "ASCII"])
@pytest.mark.parametrize(
    "body",
    [
        b"](" + (b"U\x02ab" + b"q\x01") * 30 + b"e",  # the first one in a run
        _U + b"](" + (b"U\x02ab" + b"q\x01") * 30 + b"e",
        _U + b"](" + (b"T\x02\x00\x00\x00ab" + MEMO) * 30 + b"e",
        _U + b"](" + (b"U\x02a\xff" + b"q\x01") * 30 + b"e",  # not ASCII
        _U + b"}(" + (b"U\x02ab" + b"q\x01" + b"K\x01") * 30 + b"u",
        _U + b"(" + (b"U\x01w" + b"q\x01") * 20 + b"U\x05numpyU\x05dtype\x93",
        _U + b"(" + (b"U\x01w" + b"q\x01") * 20 + b"U\x02osU\x06system\x93",
        _U + b"(" + (b"U\x01w" + b"q\x01") * 20 + b"U\x02os\x8c\x06system\x93",
        _U + b"(" + (b"U\x01w" + b"q\x01") * 20 + b"h\x01h\x01\x93",
    ],
)
def test_python2_strings(body: bytes, encoding: str) -> None:
    for data in (b"\x80\x02" + body + b".", b"\x80\x02" + body):
        same(data, encoding=encoding)


_D = b"}" + MEMO + b"("  # a row: a dict, memoised, its items ...
_ROW = _D + _W + MEMO + b"K\x01" + b"h\x00" + _W + MEMO + b"u"


@pytest.mark.parametrize(
    "body",
    [
        b"(" + _W + MEMO + _ROW * 20 + b"e",  # rows of dicts, a key fetched
        b"(" + _W + MEMO + (b"]" + MEMO + b"(K\x01K\x02" + _W + b"h\x00e") * 20,
        b"(" + (b"]" + MEMO) * 20 + (b"}" + MEMO) * 20 + b"l",  # empty ones
        b"(" + (b"]q\x05") * 20 + b"l",  # a put index not the next one
        b"(" + _W + MEMO + _D + b"h\x00h\x07u" + _ROW * 20,  # a get never stored
        b"(" + _W + MEMO + (_D + b"h\x01K\x01u") * 20,  # a get of a row
        b"(" + _W + MEMO + (_D + _W + b"h\x05u") * 3 + _ROW * 20,  # get before put
        b"(" + _W + MEMO + (_D + b"K\x01K\x02u") * 20,  # a number as a key
        b"(" + _W + MEMO + (_D + b"h\x00K\x01K\x02u") * 20,  # an odd count
        b"(" + _W + MEMO + (_D + b"h\x00G" + b"\x00" * 8 + b"u") * 20,
        b"("
        + _W
        + MEMO
        + (b"]" + MEMO + b"(K\x01" + b"\x95\x00" + b"\x00" * 7)
        + b"e" * 20,  # a frame inside a row
        b"(" + (b"\x8c\x01\xff" + MEMO) + _ROW * 20,  # not UTF-8 (then rows)
        b"(" + _W + MEMO + (_D + b"C\x01bK\x01u") * 20,  # bytes keys
        b"(" + _W + MEMO + (_D + b"h\x00" + b"\x8c\x01\xff" + MEMO + b"u") * 20,
        b"(" + _W + MEMO + _ROW * 5 + b"0" * 3 + _ROW * 5 + b"\x85",
    ],
)
@pytest.mark.parametrize("max_items", [None, 3, 9, 100])
def test_rows(body: bytes, max_items: int | None) -> None:
    kw: dict[str, Any] = {} if max_items is None else {"max_items": max_items}
    for data in (P4 + body + b".", P4 + body, b"\x80\x02" + body + b"."):
        same(data, **kw)


def test_rows_that_never_close() -> None:
    """Long groups that are no row (a number where a key goes, no closer)
    are read once by the row expression, not once per way to split them."""
    for body in (
        b"]" + MEMO + b"(" + b"K\x01" * 50_000 + b"0",
        b"}" + MEMO + b"(" + (_W + b"K\x01") * 30_000 + b"K\x01u",
        (b"]" + MEMO + b"(" + b"K\x01" * 2000 + b"\x85") * 20,
    ):
        data = P4 + body + b"."
        for strict in (True, False):
            want = run(data, {"ENABLED": False}, strict=strict)
            assert run(data, {**ON, "_FIRST_CHUNK": 1 << 20}, strict=strict) == want


@pytest.mark.parametrize("max_depth", [1, 2, 3])
def test_rows_at_the_depth_limit(max_depth: int) -> None:
    body = b"(" + _W + MEMO + b"](" + _ROW * 20 + b"ee."
    same(P4 + body, max_depth=max_depth)


def test_the_runs_are_applied() -> None:
    """The shapes above go through the bulk path (not only the loop)."""
    for data in (
        P4 + b"](" + (_W + MEMO + b"K\x01") * 40 + b"e.",
        b"\x80\x02" + _U + b"](" + (b"U\x02ab" + b"q\x01") * 30 + b"e.",
        P4 + b"(" + _W + MEMO + _ROW * 20 + b"l.",
    ):
        with _applied() as done:
            run(data, ON)
        assert len(done) == 1


def test_frames_inside_runs() -> None:
    """Protocol 4 frames every 64 KiB cut no run (the first FRAME of a stream
    is the loop's: the report lists opcodes in the order they first appear)."""
    strings = np.empty(30_000, dtype=object)
    strings[:] = [f"w{i}" for i in range(30_000)]
    data = pickle.dumps(strings, protocol=4)
    knobs = {"ENABLED": True, "STRICT": True}
    with _applied() as done:
        assert run(data, knobs) == run(data, {"ENABLED": False})
    # one run per batch of 1000 (and per chunk end): frames cut none
    assert 30 <= len(done) <= 30 + len(data) // _bulk._FIRST_CHUNK
    body = b"](" + (_W + MEMO) * 30 + b"e."
    frame = b"\x95" + len(body).to_bytes(8, "little")
    same(P4 + frame + body)
    same(P4 + b"](" + frame[:1] + (len(body) - 2).to_bytes(8, "little") + body[2:])


@pytest.mark.parametrize("max_items", [0, 1, 99, 100, 101, 150, 10**6])
def test_empty_containers_popped(max_items: int) -> None:
    """Runs of EMPTY_* POP (a hostile member) counted in whole arrays, up to
    the container past ``max_items``, which the loop reports."""
    pairs = b"]0" * 100 + b"}0" * 30 + b"\x8f0" * 20
    for data in (
        P4 + pairs + b"N.",
        P4 + b"](" + (_W + MEMO) * 30 + b"e" + pairs + b"0" + pairs[:7] + b"N.",
        P4 + pairs + b"]" + pairs + b"0N.",
        P4 + pairs[:-1],
    ):
        same(data, max_items=max_items)


def test_a_hostile_member_with_the_default_thresholds() -> None:
    data = P4 + b"]0" * 300_000 + b"N."
    for max_items in (10, 250_000, 10**6):
        for strict in (True, False):
            kw = {"max_items": max_items, "strict": strict}
            want = run(data, {"ENABLED": False}, **kw)
            assert run(data, {"ENABLED": True, "STRICT": True}, **kw) == want


def test_plain_literals_cut_at_a_chunk_end() -> None:
    """A run of numbers that goes on past the chunk is the loop's (one stack
    item, as it would have made it)."""
    for n in (5, 17, 40, 97):
        body = P4 + b"](" + (_W + MEMO) * 3 + b"K\x01" * n + _W + b"e."
        same(body)


def test_memo_indices_and_names() -> None:
    words = [f"w{i}" for i in range(600)]  # LONG_BINPUT beyond 255
    for protocol in (1, 2, 3, 4, 5):
        data = pickle.dumps([words, words[::-1], {w: w for w in words}], protocol)
        same(data)


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_long_streams_with_the_default_thresholds(protocol: int) -> None:
    """Over ``MIN_BYTES``, as the loader scans: the sampling and the waits
    after chunks without runs (numbers, containers) then strings."""
    strings = np.empty(20_000, dtype=object)
    strings[:] = [f"word{i}" for i in range(20_000)]
    obj = [list(range(30_000)), [{"a": i} for i in range(3000)], strings]
    data = pickle.dumps(obj, protocol=protocol)
    knobs = {"ENABLED": True, "STRICT": True}
    with _applied() as done:
        assert run(data, knobs) == run(data, {"ENABLED": False})
    assert done
    bad = data.replace(b"word19999", b"word1999\xff")
    with pytest.raises(FormatError, match="not UTF-8") as err:
        scan_pickle(bad)
    at = data.index(b"word19999")
    assert err.value.where.offset == (at - 5 if data[at - 5] == ord("X") else at - 2)
    assert run(bad, knobs) == run(bad, {"ENABLED": False})


def test_an_internal_error_leaves_the_loop_alone() -> None:
    """Outside the tests an internal error switches the bulk path off, before
    anything changed: the loop alone gives the report."""
    data = P4 + b"](" + (_W + MEMO) * 40000 + b"e."
    want = run(data, {"ENABLED": False})

    def broken(*args: object) -> None:
        raise RuntimeError

    knobs = {"ENABLED": True, "STRICT": False}
    for name in ("items_of", "names_after", "find_runs", "put_indices", "chain"):
        with patched(_bulk, name, broken):
            assert run(data, knobs) == want


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_runs_of_numpy_scalars_after_runs(protocol: int) -> None:
    """The loop's ``BINGET`` handler takes runs of NumPy scalars in one step
    (:mod:`safenpz._pickle._scalars`): memo entries pending before it are
    written out first, rows and strings around it are the bulk path's."""
    words = [f"w{i}" for i in range(300)]
    obj = {
        "words": words,
        "loss": [np.float64(i) / 7 for i in range(300)],
        "rows": [{"id": i, "name": w} for i, w in enumerate(words)],
        "acc": [np.float32(i) for i in range(100)],
        "more": words[::-1],
    }
    same(pickle.dumps(obj, protocol=protocol))


def test_binunicode_with_its_put() -> None:
    body = b"".join(
        b"X" + struct.pack("<I", 3) + b"abc" + binput(i) for i in range(300)
    )
    same(P4 + b"](" + body + b"e" + binget(299) + binget(5) + b"\x86.")
