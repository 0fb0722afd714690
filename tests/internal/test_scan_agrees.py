"""``scan`` agrees with ``load`` on every file (issue 8).

A differential test: many small malformed streams (:mod:`scan_cases`:
constructors called with every kind of argument, ``BUILD`` of every target
with every state, keys and set items of every kind, the item opcodes on every
target, protocol 0 text, values a final walk refuses, and mutations of valid
pickles), bare and inside ``.npy`` files whose header matches or not, and the
test corpora (the attack catalogue, the legacy layouts, the real files): the
static verdict (``scan_pickle``, ``safenpz scan``) is the one ``load``
reaches. For a pickle the outcome class must be the same (loads,
``FormatError``, ``UnsafeFileError``, ``LimitError``); for a file, the
verdict (loadable or safe / invalid / unsafe).

Since ``load`` runs the scanner first, a refusal of the scan is load's
refusal; what this catches is a stream the scan passes and the decoder (or
the ``.npy`` layer) refuses, or the int-list fast path accepting what the
scan refuses.
"""

from __future__ import annotations

import io
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from attacks import ATTACKS
from hostile import (
    NONE,
    binstr,
    npy_bytes,
    npy_header,
    py2_array,
    py2_dtype,
    py2_int_list,
    py2_object_array,
    stream,
)
from legacy import LAYOUTS, PY2, dumps
from legacy import npy_bytes as legacy_npy
from safenpz import NpzFile, SafenpzError, load, scan_bytes, scan_pickle
from safenpz._limits import Limits
from safenpz._pickle._decode import safe_loads
from scan_cases import FAMILIES, generated, mutated

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
#: The default limits, and small ones (the final walk's count and depth).
LIMITS = {"default": Limits(), "small": Limits(max_depth=3, max_items=40)}


def _outcome(call: Any) -> str:
    """``"loads"`` or the class name of the safenpz error (anything else
    escapes: a bug)."""
    try:
        call()
    except SafenpzError as err:
        return type(err).__name__
    return "loads"


def _pickle_outcomes(data: bytes, limits: Limits) -> tuple[str, str]:
    scan = _outcome(lambda: scan_pickle(data, limits=limits))
    decoded = _outcome(lambda: safe_loads(data, limits=limits))
    return scan, decoded


def _disagreements(cases: Any, limits: Limits) -> list[str]:
    return [
        f"{label}: scan {scan}, load {decoded} ({data[:120]!r})"
        for label, data in cases
        for scan, decoded in [_pickle_outcomes(data, limits)]
        if scan != decoded
    ]


@pytest.mark.parametrize("limits", list(LIMITS))
@pytest.mark.parametrize("family", list(FAMILIES))
def test_generated_pickles_agree(family: str, limits: str) -> None:
    bad = _disagreements(generated(family, 300), LIMITS[limits])
    assert not bad, "\n".join(bad[:20])


def _seeds() -> dict[str, bytes]:
    objs: dict[str, Any] = {
        "object-array": np.array([[1, 2], [3]], dtype=object),
        "float-array": np.arange(3.0),
        "structured-object": np.zeros(2, [("a", "<i4"), ("b", "O")]),
        "subarray": np.zeros(2, [("a", "<f4", (2,))]),
        "titled": np.zeros(
            1, np.dtype({"names": ["a"], "formats": ["i4"], "titles": ["T"]})
        ),
        "datetime": np.array(["2020-01-01"], "M8[D]"),
        "unicode": np.array(["ab"]),
        "scalars": [
            np.int64(1),
            np.float64(2.5),
            np.longdouble(1),
            np.datetime64(1, "s"),
        ],
        "keys": {
            np.int64(1): "a",
            (np.float64(1.0), "x"): 1,
            frozenset({1, 2}): 3,
            1.5: 2,
            1 + 2j: 3,
        },
        "sets": [{1, 2.5, (1, "a")}, frozenset({np.int32(3)})],
        "ordered-dict": OrderedDict(a=[1]),
        "bytes": [b"x", bytearray(b"y")],
        "dtypes": [np.dtype("f8"), np.dtype([("a", "u1")]), np.dtype("M8[us]")],
        "nested": {"a": [(1, 2.5), {"b": None}]},
    }
    seeds = {
        f"{k}-p{p}": pickle.dumps(v, protocol=p)
        for k, v in objs.items()
        for p in range(6)
    }
    seeds["py2"] = py2_object_array(
        [
            py2_int_list([1, 2, 2**40]),
            py2_array([2], py2_dtype(b"i8", b"<", -1, 0), binstr(bytes(16))),
            binstr(b"caf\xe9"),
            NONE,
        ]
    )
    return seeds


SEEDS = _seeds()


@pytest.mark.parametrize("limits", list(LIMITS))
@pytest.mark.parametrize("part", range(4))
def test_mutated_pickles_agree(part: int, limits: str) -> None:
    bad = _disagreements(mutated(SEEDS, 1500, seed=part), LIMITS[limits])
    assert not bad, "\n".join(bad[:20])


# --------------------------------------------------------------------------
# files: what scan says about a file, what load does with it


def _file_verdict(data: bytes, limits: Limits) -> str:
    """``load`` reading every member: ``"loadable"``, ``"unsafe"`` or
    ``"invalid"`` (the verdicts of ``safenpz scan``)."""
    try:
        obj = load(data, max_depth=limits.max_depth, max_items=limits.max_items)
        if isinstance(obj, NpzFile):
            with obj:
                for name in obj.files:
                    obj[name]
    except SafenpzError as err:
        return "unsafe" if type(err).__name__ == "UnsafeFileError" else "invalid"
    return "loadable"


def _scan_verdict(data: bytes, limits: Limits) -> str:
    verdict = scan_bytes(data, limits=limits).verdict
    return "loadable" if verdict == "safe" else verdict


def _file_disagreements(files: Any, limits: Limits = LIMITS["default"]) -> list[str]:
    bad = []
    for label, data in files:
        scan, loaded = _scan_verdict(data, limits), _file_verdict(data, limits)
        if scan != loaded:
            bad.append(f"{label}: scan {scan}, load {loaded}")
    return bad


_HEADERS = {
    "object-2": npy_header(shape=(2,)),
    "object-1": npy_header(shape=(1,)),
    "object-0d": npy_header(shape=()),
    "float64-2": npy_header(descr="<f8", shape=(2,)),
    "structured": npy_header(descr=[("a", "<i4"), ("b", "|O")], shape=(2,)),  # type: ignore[arg-type]
}


def _npy_cases(count: int) -> list[tuple[str, bytes]]:
    bodies = [
        *generated("stored", count),
        *generated("build", count),
        *mutated(SEEDS, count, seed=9),
        *((k, v) for k, v in SEEDS.items()),
    ]
    return [
        (f"{head} + {label}", header + body)
        for i, (label, body) in enumerate(bodies)
        for head, header in [list(_HEADERS.items())[i % len(_HEADERS)]]
    ]


@pytest.mark.parametrize("limits", list(LIMITS))
def test_npy_files_agree(limits: str) -> None:
    """The pickle after an object ``.npy`` header, matching it or not."""
    bad = _file_disagreements(_npy_cases(150), LIMITS[limits])
    assert not bad, "\n".join(bad[:20])


def test_npy_header_against_the_pickled_array() -> None:
    """An object array of the header's shape and dtype loads; another shape,
    another dtype, or no array at all is refused by scan and load alike,
    with load's message."""
    arr = np.array([[1, 2], [3]], dtype=object)
    body = pickle.dumps(arr, protocol=2)
    assert _scan_verdict(npy_bytes(body, shape=(2,)), Limits()) == "loadable"
    cases = {
        "shape": npy_bytes(body, shape=(3,)),
        "dtype": npy_bytes(pickle.dumps(np.arange(2.0), 2), shape=(2,)),
        "dict": npy_bytes(pickle.dumps({"a": 1}, 2), shape=(2,)),
    }
    for name, data in cases.items():
        report = scan_bytes(data, name="x.npy")
        assert report.verdict == "invalid", name
        with pytest.raises(SafenpzError) as info:
            load(data)
        assert report.members[0].error == info.value.args[0].replace(
            "<bytes>", "x.npy"
        ), name


def test_attack_catalogue_agrees() -> None:
    """Every loaded attack of the catalogue (tests/attacks.py)."""
    files = [
        (a.id, a.build("/nonexistent/sentinel"))
        for a in ATTACKS
        if a.action == "load" and not a.id.startswith(("issue8-save", "review8/tree"))
    ]
    assert len(files) > 200
    bad = _file_disagreements(files)
    assert not bad, "\n".join(bad)


def _legacy_values() -> list[Any]:
    rows = np.empty(3, dtype=object)
    rows[:] = [[1, 2], [3], []]
    mixed = np.empty(5, dtype=object)
    mixed[:] = [None, "a", b"b", (1, 2.5), {"k": [np.arange(3)]}]
    return [rows, mixed, np.arange(6.0).reshape(2, 3)]


def test_legacy_layouts_agree() -> None:
    """Every layout the legacy writer knows (Python 2 cPickle, Python 3
    protocols 0-5, int and bool dtype flags) loads, and scan says so."""
    files = [
        (f"{layout.name}-{i}", legacy_npy(value, layout))
        for layout in LAYOUTS
        for i, value in enumerate(_legacy_values())
        if layout is not PY2 or i != 1
    ]
    files += [
        (f"pickle-{layout.name}", dumps(_legacy_values()[1], layout))
        for layout in LAYOUTS[1:]
    ]
    assert not _file_disagreements(files)
    assert all(_file_verdict(data, Limits()) == "loadable" for _, data in files)


@pytest.mark.skipif(not REALDATA.is_dir(), reason="the shared real files are absent")
def test_real_files_agree() -> None:
    files = sorted(
        p for p in REALDATA.rglob("*") if p.suffix in (".npy", ".npz", ".pkl")
    )
    assert files
    bad = _file_disagreements(
        (str(p.relative_to(REALDATA)), p.read_bytes()) for p in files
    )
    assert not bad, "\n".join(bad)


# --------------------------------------------------------------------------
# NumPy scalars as keys: counted by their value, and real label maps load


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize(
    "make",
    [
        lambda i: np.int64(i),
        lambda i: np.float64(i / 7),
        lambda i: np.int32(i),
        lambda i: (np.int64(i), "label"),
        lambda i: np.str_(f"w{i}"),
    ],
    ids=["int64", "float64", "int32", "tuple-int64-str", "str_"],
)
def test_label_maps_with_numpy_scalar_keys_load(make: Any, protocol: int) -> None:
    """``{np.int64(i): 'cat'}``-like label maps with thousands of classes."""
    label_map = {make(i): f"class-{i}" for i in range(5000)}
    data = pickle.dumps(label_map, protocol=protocol)
    assert scan_pickle(data).safe
    got = safe_loads(data)
    assert got == label_map
    buf = io.BytesIO()
    np.save(buf, np.array(label_map, dtype=object), allow_pickle=True)
    assert _scan_verdict(buf.getvalue(), Limits()) == "loadable"
    assert load(buf.getvalue()).item() == label_map


# --------------------------------------------------------------------------
# long streams: what a scan in whole-array steps must see too


def _strings(n: int, bad: bytes | None = None) -> bytes:
    """A list of `n` memoised short strings (protocol 4), `bad` in the middle."""
    items = [b"\x8c\x05w%04d\x94" % (i % 10_000) for i in range(n)]
    if bad is not None:
        items[n // 2] = bad
    return b"](" + b"".join(items) + b"e"


def _text_ints(n: int, bad: bytes) -> bytes:
    """A protocol 0 list of `n` ``INT`` literals, `bad` in the middle."""
    items = [b"I%d\na" % i for i in range(n)]
    items[n // 2] = bad + b"a"
    return b"(lp0\n" + b"".join(items)


LONG: dict[str, tuple[bytes, Limits]] = {
    "invalid-utf-8-among-20k-strings": (
        stream(_strings(20_000, b"\x8c\x02\xff\xfe\x94"), 4),
        Limits(),
    ),
    "20k-strings-fine": (stream(_strings(20_000), 4), Limits()),
    "INT-08-among-20k-text-ints": (_text_ints(20_000, b"I08\n") + b".", Limits()),
    "FLOAT-1e999-among-20k-text-ints": (
        _text_ints(20_000, b"F1e999\n") + b".",
        Limits(),
    ),
    "20k-strings-over-max_items": (stream(_strings(20_000), 4), Limits(max_items=5000)),
    "20k-string-keys-over-max_items": (
        stream(
            b"}(" + b"".join(b"\x8c\x05k%04dK\x01" % i for i in range(9999)) + b"u", 4
        ),
        Limits(max_items=5000),
    ),
    "object-array-of-20k-strings-short-by-one": (
        stream(
            py2_array([20_001], py2_dtype(b"O8", b"|", -1, 63), _strings(20_000)),
            2,
        ),
        Limits(),
    ),
    "appends-of-20k-strings-to-a-tuple": (
        stream(b"(t" + _strings(20_000)[1:], 4),
        Limits(),
    ),
    "setitems-of-10k-string-keys-to-a-list": (
        stream(
            b"](" + b"".join(b"\x8c\x05k%04dK\x01" % i for i in range(9999)) + b"u", 4
        ),
        Limits(),
    ),
}


@pytest.mark.parametrize("case", list(LONG), ids=list(LONG))
def test_long_streams_agree(case: str) -> None:
    """Streams long enough for a scan in whole-array steps (over 64 KB),
    where the one bad literal, the count or the target is in the middle of a
    long run of plain data."""
    data, limits = LONG[case]
    assert len(data) > 64_000
    scan, decoded = _pickle_outcomes(data, limits)
    assert scan == decoded, (scan, decoded)
    if case.endswith("-fine"):
        assert scan == "loads"
    else:
        assert scan in ("FormatError", "LimitError")
