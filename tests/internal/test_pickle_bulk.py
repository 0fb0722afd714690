"""The scanner's bulk path changes nothing (white-box, differential).

Every stream here is scanned by the per-opcode loop alone and with the bulk
path forced on (:func:`bulk_harness.same`): the reports or errors, and the
state left behind, must be identical. The corpora are those the scanner's
other tests use (hostile and malformed streams, the attack catalogue, the
legacy layouts, CPython's protocols, the real files, generated plain data,
byte edits), and the shapes the bulk path takes on, small.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bulk_harness import same
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attacks import ATTACKS
from hostile import HOSTILE, MALFORMED
from legacy import LAYOUTS, dumps
from strategies import (
    byte_edits,
    int_row_arrays,
    legacy_arrays,
    mutate,
    plain_data,
)

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
SENTINEL = "/nonexistent/safenpz-sentinel"


def _pickle_bodies(data: bytes) -> list[bytes]:
    """The pickles in a file: a bare pickle, a ``.npy`` object array's
    stream, or those of an ``.npz``'s members (malformed containers: none)."""
    if data[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                return [b for n in zf.namelist() for b in _pickle_bodies(zf.read(n))]
        except Exception:
            return []
    if data[:6] == b"\x93NUMPY":
        try:
            f = io.BytesIO(data)
            version = np.lib.format.read_magic(f)
            np.lib.format._read_array_header(f, version)  # type: ignore[attr-defined]
            return [f.read()]
        except Exception:
            return []
    return [data]


def _objects() -> list[object]:
    """Plain data of the benchmark shapes, small."""
    words = ["alpha", "b", "", "é\n", "x" * 300, "K", "KK", "(e"]
    rows = [[i, words[i % len(words)], i / 3] for i in range(40)]
    strings = np.empty(1002, dtype=object)
    strings[:] = [words[i % len(words)] + str(i % 7) for i in range(1002)]
    return [  # batches of 1000 (and of one) where it matters
        [words[i % len(words)] for i in range(1002)],
        [{"id": i, "name": words[i % 5], "score": i / 7} for i in range(120)],
        {w + str(i): i for i, w in enumerate(words * 15)},
        rows,
        [list(range(i % 4)) for i in range(1001)],
        [[1, 2.5, None, True, False, 2**40, -3, b"by", "s"]] * 12,
        [[], {}, set(), [[]], (1,), [1, [2, [3]]]] * 8,
        OrderedDict((str(i), [i]) for i in range(30)),
        {i: str(i % 10) for i in range(1001)},
        {float(i) / 2: i for i in range(60)},
        [{1.5: "a", 2: "b"}, {(1, 2): 3}] * 10,
        {frozenset([1, 2]), 3.5, "s"},
        [*range(1001), 2**70, -(2**70)],
        np.array([["ab", 3], [[1], {"k": 2.0}]], dtype=object),
        strings,
        [b"bytes%d" % i for i in range(300)] + ["\ud800", "é" * 3],
        {str(i): str(-i) for i in range(400)},
    ]


_OBJECTS = _objects()
_BIG = {0, 2, 4, 8, 12, 14}  # batches of 1000: fewer layouts (time)
_BIG_LAYOUTS = {
    "py2-cpickle2",
    "py3-p0-intflags",
    "py3-p2-boolflags",
    "py3-p4-boolflags",
}


# --------------------------------------------------------------------------
# the corpora


@pytest.mark.parametrize("case", HOSTILE, ids=[c.id for c in HOSTILE])
def test_hostile_streams(case: Any) -> None:
    same(case.build(SENTINEL))


@pytest.mark.parametrize("case", MALFORMED, ids=[c.id for c in MALFORMED])
def test_malformed_streams(case: Any) -> None:
    same(case.data, cut=len(case.data) < 100_000, report=len(case.data) < _REPORT_MAX)


#: Streams this long are compared in strict mode only (report mode scans all
#: of a refused stream: tens of seconds for the largest attacks; report mode
#: is compared on every shorter stream of the same kinds)
_REPORT_MAX = 400_000


def _attack_pickles() -> list[tuple[str, bytes]]:
    out = []
    for attack in ATTACKS:
        try:
            data = attack.build(SENTINEL)
        except Exception:  # builds that need files of their own
            continue
        for k, body in enumerate(_pickle_bodies(data)[:4]):
            if body and len(body) < 3_000_000:
                out.append((f"{attack.id}#{k}", body))
    return out


_ATTACK_PICKLES = _attack_pickles()


@pytest.mark.parametrize(
    "body", [b for _, b in _ATTACK_PICKLES], ids=[i for i, _ in _ATTACK_PICKLES]
)
def test_attack_catalogue(body: bytes) -> None:
    same(body, cut=len(body) < 50_000, report=len(body) < _REPORT_MAX)


def _layout_cases() -> list[Any]:
    """(layout, object) pairs the layout's pickler can write; the big objects
    in four layouts only (time)."""
    out = []
    for layout in LAYOUTS:
        for k, obj in enumerate(_OBJECTS):
            if k in _BIG and layout.name not in _BIG_LAYOUTS:
                continue
            try:
                dumps(obj, layout)
            except Exception:  # not writable in this layout (sets in Python 2 ...)
                continue
            out.append(pytest.param(layout, k, id=f"{layout.name}-{k}"))
    return out


@pytest.mark.parametrize(("layout", "k"), _layout_cases())
def test_legacy_layouts(layout: Any, k: int) -> None:
    same(dumps(_OBJECTS[k], layout))


_PROTOCOL_CASES = [
    (p, k)
    for p in (0, 1, 2, 3, 4, 5)
    for k in range(len(_OBJECTS))
    if k not in _BIG or p in (0, 4, 5)
]


@pytest.mark.parametrize(("protocol", "k"), _PROTOCOL_CASES)
def test_pickle_protocols(protocol: int, k: int) -> None:
    """CPython's own pickler (the legacy layouts rebuild it, and Python 2's)."""
    same(pickle.dumps(_OBJECTS[k], protocol=protocol))


def _realdata() -> list[Path]:
    if not REALDATA.is_dir():
        return []
    return sorted(
        p for p in REALDATA.rglob("*") if p.suffix in (".npy", ".npz", ".pkl")
    )


@pytest.mark.skipif(not REALDATA.is_dir(), reason="real files not present")
@pytest.mark.parametrize("path", _realdata(), ids=lambda p: p.name)
def test_real_files(path: Path) -> None:
    for body in _pickle_bodies(path.read_bytes()):
        if body[:1] in (b"\x80", b"(", b"c", b"]", b"}"):
            same(body, cut=len(body) < 200_000)


FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@FUZZ
@given(plain_data(), st.integers(0, 5))
def test_plain_data(obj: Any, protocol: int) -> None:
    same(pickle.dumps(obj, protocol=protocol))


@FUZZ
@given(
    st.sampled_from(LAYOUTS).flatmap(
        lambda lay: st.tuples(st.just(lay), legacy_arrays(python2=lay.python == 2))
    )
)
def test_legacy_arrays(case: Any) -> None:
    layout, arr = case
    same(dumps(arr, layout))


@FUZZ
@given(int_row_arrays(), st.sampled_from(LAYOUTS))
def test_int_rows(arr: Any, layout: Any) -> None:
    same(dumps(arr, layout))


_SEEDS = [
    pickle.dumps(_OBJECTS[k], protocol=p)
    for k in (0, 1, 2, 3, 4, 5, 8, 15, 16)
    for p in (0, 2, 4)
]


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(_SEEDS), byte_edits(max_pos=200_000))
def test_byte_edits(seed: bytes, edits: Any) -> None:
    same(mutate(seed, edits))
