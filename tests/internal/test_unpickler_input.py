"""The C unpickler reads the stream from memory (``_decode._Input``), white-box.

It must see exactly what it saw through ``io.BufferedReader(io.BytesIO(data))``
(the reader it had before): the same values, and for truncated or malformed
streams the same errors, whatever opcode the stream stops in. One difference
is wanted: a length claimed beyond the stream no longer makes the reader
allocate that much first (``MemoryError`` for a claim of ``2**62`` bytes);
it is the truncation it is. (The scan refuses such claims before the
unpickler runs, so :func:`safenpz.load` refuses them as before.)
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostile import MALFORMED
from safenpz._limits import Limits
from safenpz._pickle import _decode
from safenpz._pickle._context import Context
from safenpz._pickle._finish import finish

VALUES: list[Any] = [
    [1, "a", 2.5, None, b"x" * 300, (1, 2)],
    {"k": [np.float64(1.5), np.arange(3)], 2**70: {1, 2}},
    np.array([[1, 2], "s", {"d": 1}], dtype=object),
    "x" * 200_000,
    b"y" * 300_000,
]
STREAMS = [pickle.dumps(v, protocol=p) for v in VALUES for p in range(6)]


def _load(file: Any, size: int) -> tuple[str, Any]:
    """What the unpickler and the walk make of `file`: a digest, or the error."""
    ctx = Context("m", Limits(), "latin1")
    try:
        unpickler = _decode._TableUnpickler(file, ctx)
        raw = unpickler.load()
        constructors = unpickler.constructors()
        del unpickler
        value = finish(raw, ctx, constructors, scanned=False, size=size)
        return "ok", pickle.dumps(value, protocol=5)
    except Exception as err:
        return "error", (type(err), str(err))


def _outcomes(data: bytes) -> tuple[Any, Any]:
    """(the in-memory input's outcome, the buffered reader's)."""
    new = _load(_decode._Input(data), len(data))
    return new, _load(io.BufferedReader(io.BytesIO(data)), len(data))


def _same(data: bytes) -> None:
    new, old = _outcomes(data)
    assert new == old


@pytest.mark.parametrize("data", STREAMS)
def test_whole_streams_read_the_same(data: bytes) -> None:
    _same(data)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(STREAMS), st.floats(0, 1))
def test_truncated_streams_fail_the_same(data: bytes, where: float) -> None:
    _same(data[: int(len(data) * where)])


@pytest.mark.parametrize("cut", [0, 1, 2, 5])
def test_text_streams_cut_in_a_line_fail_the_same(cut: int) -> None:
    data = pickle.dumps([1, "abc", 2.5], protocol=0)
    line = data.index(b"\n", 4)
    _same(data[: line - cut])


CLAIMS = {"binunicode8-claims-2**62"}


@pytest.mark.parametrize(
    "case", [m for m in MALFORMED if m.id not in CLAIMS], ids=lambda m: m.id
)
def test_malformed_streams_fail_the_same(case: Any) -> None:
    _same(case.data)


@pytest.mark.parametrize(
    "case", [m for m in MALFORMED if m.id in CLAIMS], ids=lambda m: m.id
)
def test_a_huge_claimed_length_is_a_truncation_not_an_allocation(case: Any) -> None:
    new, old = _outcomes(case.data)
    assert old[0] == "error"  # MemoryError where 2**62 bytes cannot be had
    assert new == ("error", (pickle.UnpicklingError, "pickle data was truncated"))


def test_readinto_and_readline_read_on_from_where_the_unpickler_is() -> None:
    source = _decode._Input(b"ab\ncd")
    assert bytes(source.readline()) == b"ab\n"
    buf = bytearray(5)
    assert source.readinto(buf) == 2
    assert buf[:2] == b"cd"
    assert bytes(source.readline()) == b""
    assert bytes(source.peek()) == b""
