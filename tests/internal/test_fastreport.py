"""The strict scan's report from the pre-check (:mod:`safenpz._pickle._fastreport`).

Whenever the compiled pass proves a stream, the report built from its facts
must equal (dataclass ``==``) the one the Python scan loop builds: protocol,
globals, opcode counts ("(plain data)" runs included), containers, length,
result, shape and dtype. The loop is the reference
(:func:`safenpz._pickle._scanner.scan_loop`).
"""

from __future__ import annotations

import pickle
import pickletools
import struct
from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_prescan import PIECES, SHAPES, _data, _npy_pickle, _object_array

from legacy import PY2, PY3_LAYOUTS, dumps
from safenpz import scan_pickle
from safenpz._limits import DEFAULT_LIMITS, Limits
from safenpz._pickle import _prescan
from safenpz._pickle._fastreport import fast_report
from safenpz._pickle._scanner import scan_loop
from strategies import byte_edits, mutate

pytestmark = pytest.mark.skipif(not _prescan.AVAILABLE, reason="no C extension")

ENCODINGS = ("latin1", "bytes", "ASCII")


def _same(
    data: bytes, limits: Limits = DEFAULT_LIMITS, encoding: str = "latin1"
) -> bool:
    """Whether `data` is proven; if so, its fast report is the loop's."""
    fast = fast_report(data, limits.max_depth, limits.max_items, encoding)
    if fast is None:
        assert not _prescan.proven(data, limits, encoding)
        return False
    assert _prescan.proven(data, limits, encoding)
    slow = scan_loop(data, limits.max_depth, limits.max_items, encoding)
    assert fast == slow
    return True


CASES = [(name, obj, p) for name, obj, protocols in SHAPES for p in protocols]


@pytest.mark.parametrize(
    ("name", "obj", "protocol"), CASES, ids=[f"{n}-p{p}" for n, _, p in CASES]
)
def test_common_shapes(name: str, obj: Any, protocol: int) -> None:
    assert _same(_npy_pickle(obj, protocol)), name


_PLAIN = [
    None,
    True,
    -(2**31),
    2**40,
    2**70,
    1.5,
    "text",
    "\u0100x",
    b"raw",
    (),
    [],
    {},
    [1, 2, 3, None, True, 4.5, 70000, -1, "a", 5, 6],
    {"a": (1, 2, [3, None, True]), "b": {"c": -5, 7: "x"}},
    ((1,), (2, 3), (4, 5, 6), (7, 8, 9, 10)),
    [[1, 2], [3, [4, [5]]]],
    np.float64(2.5),
    np.int32(-3),
    np.bool_(True),
    np.float32(2).astype(">f4"),
    np.complex128(1 + 2j),
    np.zeros((0, 3), dtype=np.int16),
    np.arange(5, dtype=np.uint8),
    np.ones((2, 2), dtype=">c16"),
    [np.zeros(2, np.float32), np.float64(1.0), {"k": np.arange(3)}],
]


@pytest.mark.parametrize("protocol", range(6))
@pytest.mark.parametrize("index", range(len(_PLAIN)))
def test_plain_pickles(index: int, protocol: int) -> None:
    data = pickle.dumps(_PLAIN[index], protocol=protocol)
    for encoding in ENCODINGS:
        _same(data, encoding=encoding)


@pytest.mark.parametrize("layout", [PY2, *PY3_LAYOUTS], ids=lambda lay: lay.name)
def test_legacy_layouts(layout: Any) -> None:
    obj = _object_array(["ab", "cd", {"k": 1, "v": [2, 3.5]}, ["x", None]])
    data = dumps(obj, layout)
    assert _same(data)
    _same(data, encoding="bytes")


_PY2_STREAMS = [
    b"\x80\x02]q\x01(U\x03abcq\x02U\x02\xe9tq\x03h\x02e.",
    b"(" + rb"S'a\nb\x00\xff\\\'\t\r'" + b"\np0\nI1\nS'\\x41'\np1\nI01\ntp2\n.",
    b"(dp0\nS'k'\np1\nL12L\nsS'z'\np2\n(lp3\nF1.5\naI00\nas.",
    b"\x80\x02}q\x00(U\x01aK\x01U\x01bT\x02\x00\x00\x00xyu.",
]


@pytest.mark.parametrize("index", range(len(_PY2_STREAMS)))
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_python2_streams(index: int, encoding: str) -> None:
    data = _PY2_STREAMS[index]
    assert _same(data, encoding=encoding) or encoding == "ASCII"


def test_long_protocol0_text_is_a_blob_to_the_scan() -> None:
    """A protocol 0 text line beyond the scan's BLOB_BYTES is of unknown
    content to the scan (not bytes, not latin-1), which refuses such a
    protocol 2- array's data: not proven (the pre-check used to prove it)."""
    data = pickle.dumps(np.arange(10000, dtype=">f8"), protocol=0)
    assert not _prescan.proven(data, DEFAULT_LIMITS, "latin1")
    assert not _same(pickle.dumps([b"y" * 70000], protocol=0))  # _codecs.encode
    assert _same(pickle.dumps(["x" * 70000, {"z" * 70000: 1}], protocol=0))
    py2 = b"(S'" + b"z" * 70000 + b"'\np0\nS'a\\nb'\np1\nd."
    assert _same(py2)
    assert _same(py2, encoding="bytes")


def test_scan_pickle_uses_the_fast_report(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _npy_pickle(_PLAIN[-1], 4)
    fast = scan_pickle(data)
    monkeypatch.setattr(_prescan, "ENABLED", False)
    assert fast_report(data, 64, 10**6, "latin1") is None
    assert scan_pickle(data) == fast
    loose = scan_pickle(data, strict=False)
    assert loose == fast


def test_a_small_limit_is_not_proven() -> None:
    data = pickle.dumps([[[[1]]]], protocol=2)
    assert _same(data)
    assert not _same(data, Limits(max_depth=3))
    assert not _same(data, Limits(max_items=4))


_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=list(HealthCheck)
)


@_SETTINGS
@given(obj=_data(), protocol=st.integers(0, 5))
def test_generated_pickles(obj: Any, protocol: int) -> None:
    data = pickle.dumps(obj, protocol=protocol)
    for encoding in ENCODINGS:
        _same(data, encoding=encoding)


@_SETTINGS
@given(obj=_data(), protocol=st.integers(0, 5), edits=byte_edits(4096))
def test_mutated_pickles(obj: Any, protocol: int, edits: Any) -> None:
    data = mutate(pickle.dumps(obj, protocol=protocol), edits)
    for encoding in ENCODINGS:
        _same(data, encoding=encoding)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    head=st.sampled_from([b"", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"]),
    body=st.lists(st.sampled_from(PIECES), min_size=1, max_size=14).map(b"".join),
    frame=st.integers(0, 64),
)
def test_programs(head: bytes, body: bytes, frame: int) -> None:
    data = head + body + b"."
    if frame and head == b"\x80\x04":
        data = head + b"\x95" + struct.pack("<Q", min(frame, len(data) - 2)) + data[2:]
    for encoding in ENCODINGS:
        for limits in (DEFAULT_LIMITS, Limits(max_depth=4, max_items=30)):
            _same(data, limits, encoding)


@pytest.mark.parametrize("plain", [b"", bytes([0x4B]), bytes([0x4B, 0x4D, 0x4E])])
@pytest.mark.parametrize("protocol", range(6))
def test_opcode_counts_are_every_opcode_executed(plain: bytes, protocol: int) -> None:
    """The raw counts are pickletools' (the BININT1/BININT2 tight loop, the
    PROTO and FRAME opcodes included), with or without batching, and the runs
    of `plain` codes are the maximal ones."""
    obj = [list(range(300)), [None, 5, 70000, 3] * 40, {"a": 1, "b": 2}, (1, 2)]
    data = pickle.dumps(obj, protocol=protocol)
    verdict = _prescan._verdict
    assert verdict is not None
    facts = verdict.report(data, 64, 10**6, 0, plain)
    assert facts is not None
    ops = [op.code.encode("latin-1")[0] for op, _, _ in pickletools.genops(data)]
    assert facts[1] == dict(Counter(ops))
    runs = sum(
        1
        for i, c in enumerate(ops)
        if c in plain and (i == 0 or ops[i - 1] not in plain)
    )
    assert facts[2] == runs
