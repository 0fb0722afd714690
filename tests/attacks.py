"""The attack catalogue: every hostile input of the bounds harness, and the
source of the attack table in ``SECURITY.md`` (``python tests/attacks.py``
prints it; ``test_bounds.py`` checks the two agree).

Each :class:`Attack` builds the bytes of a file from a sentinel path (the file
a payload would create), says how it is fed to safenpz (``action``) and what
must happen (``expect``: the exception class and words of its message, or
``None`` when the input must load). The payloads come from
:mod:`hostile` (``HOSTILE``, ``MALFORMED``) wrapped in every container a
user meets (``.npy``, bare pickle, ``.npz`` member), plus the cases of
issue 8 (archive names, the manifest, shapes, zero-width dtypes, zip
overlap, unbounded reads, keys crafted to share one hash value:
:mod:`collisions`).
"""

from __future__ import annotations

import io
import json
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from collisions import (
    complex128_keys,
    complex_keys,
    dict_stream,
    float_tuple_keys,
    frozenset_keys,
    longdouble_keys,
    ordered_dict_pairs,
    shared_frozenset_keys,
    shared_text_arguments,
)
from hostile import (
    HOSTILE,
    MALFORMED,
    Expected,
    npy_bytes,
    npy_header,
    npz_bytes,
)
from safenpz import (
    FormatError,
    LimitError,
    UnsafeFileError,
    UnstorableError,
)

__all__ = ["ATTACKS", "Attack", "markdown_table"]

#: The bytes a bare pickle file may start with, as :func:`safenpz.load` decides
#: (tests/internal/test_sniff.py checks this is the sniffer's own set).
PICKLE_FIRST_BYTES = frozenset(b"\x80(]})cIJKLMFGNSUVXT")

Action = str  # "load" (read every member), "load-path", "load-pipe", "scan",
# "save" (load every member, then safenpz.save it), "convert" (to .npz),
# "convert-parquet"


@dataclass(frozen=True)
class Attack:
    """One hostile input and what safenpz must do with it."""

    id: str
    what: str  # one line for the table
    build: Callable[[str], bytes]
    expect: Callable[[bytes], Expected] | None  # None: must load
    action: Action = "load"


def _npy(arr: Any) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _as_bare_pickle(expect: Callable[[bytes], Expected]) -> Callable[[bytes], Expected]:
    """A bare file is taken for a pickle only when its first byte can start
    one (as load decides); any other file is not a pickle at all."""

    def outcome(data: bytes) -> Expected:
        if data[:1] and data[0] in PICKLE_FIRST_BYTES:
            return expect(data)
        return Expected(FormatError, None, None, ("not a .npy, .npz or pickle",))

    return outcome


def _hostile() -> list[Attack]:
    out = []
    for case in HOSTILE:
        what = case.id.replace("-", " ")
        out.append(
            Attack(
                f"pickle/{case.id}",
                f"bare pickle: {what}",
                case.build,
                _as_bare_pickle(case.expect),
            )
        )
        out.append(
            Attack(
                f"npy/{case.id}",
                f".npy object array: {what}",
                lambda s, c=case: npy_bytes(c.build(s)),  # type: ignore[misc]
                lambda d, c=case: c.expect(d[len(npy_header()) :]),  # type: ignore[misc]
            )
        )
        out.append(
            Attack(
                f"npz/{case.id}",
                f".npz member: {what}",
                lambda s, c=case: npz_bytes({"x.npy": npy_bytes(c.build(s))}),  # type: ignore[misc]
                lambda d, c=case: c.expect(_member_pickle(d)),  # type: ignore[misc]
            )
        )
    return out


def _member_pickle(data: bytes) -> bytes:
    """The pickle of member ``x.npy`` of the archive `data` (what the error's
    opcode offsets count from)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return zf.read("x.npy")[len(npy_header()) :]


def _malformed() -> list[Attack]:
    out = []
    for bad in MALFORMED:
        what = bad.id.replace("-", " ")
        out.append(
            Attack(
                f"pickle/{bad.id}",
                f"bare pickle: {what}",
                lambda s, b=bad: b.data,  # type: ignore[misc]
                _as_bare_pickle(bad.expect),
            )
        )
        out.append(
            Attack(
                f"npy/{bad.id}",
                f".npy object array: {what}",
                lambda s, b=bad: npy_bytes(b.data),  # type: ignore[misc]
                lambda d, b=bad: Expected(b.expect(b.data).error),  # type: ignore[misc]
            )
        )
    return out


def _header(shape_text: str, descr: str = "<i8") -> bytes:
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}"
    return npy_header(text=text)


def _overlap_by_local_extra(_: str) -> bytes:
    """Member b's local header and data hide inside member a's local extra
    field; the central directory (without that extra) looks disjoint."""
    a_data = _npy(np.arange(3))
    b_data = _npy(np.arange(4))
    b_local = (
        struct.pack(
            "<4s5H3L2H",
            b"PK\x03\x04",
            20,
            0,
            0,
            0,
            0x21,
            zlib.crc32(b_data),
            len(b_data),
            len(b_data),
            5,
            0,
        )
        + b"b.npy"
        + b_data
    )
    pad = b"\x00" * len(a_data)  # b starts where a's data would end without it
    extra = pad + b_local
    extra = struct.pack("<HH", 0xCAFE, len(extra)) + extra
    a_local = struct.pack(
        "<4s5H3L2H",
        b"PK\x03\x04",
        20,
        0,
        0,
        0,
        0x21,
        zlib.crc32(a_data),
        len(a_data),
        len(a_data),
        5,
        len(extra),
    )
    body = a_local + b"a.npy" + extra + a_data
    b_offset = 30 + 5 + len(a_data) + 4  # inside a's extra field
    central = b""
    for name, data, off in ((b"a.npy", a_data, 0), (b"b.npy", b_data, b_offset)):
        central += (
            struct.pack(
                "<4s6H3L5H2L",
                b"PK\x01\x02",
                20,
                20,
                0,
                0,
                0,
                0x21,
                zlib.crc32(data),
                len(data),
                len(data),
                len(name),
                0,
                0,
                0,
                0,
                0,
                off,
            )
            + name
        )
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 2, 2, len(central), len(body), 0)
    return body + central + end


def _x_and_x_npy(s: str) -> bytes:
    evil = next(c for c in HOSTILE if c.id == "reduce-os.system-p2")
    return npz_bytes({"x.npy": _npy(np.arange(3)), "x": npy_bytes(evil.build(s))})


def _manifest(text: str, **members: bytes) -> bytes:
    parts = {f"{k}.npy": v for k, v in members.items()}
    parts["__safenpz__.npy"] = _npy(np.array(text))
    return npz_bytes(parts)


_DOC = '{"format": "safenpz", "version": 1, "arrays": {"x": {"kind": "ragged"}}}'


def _fmt(*words: str) -> Callable[[bytes], Expected]:
    """FormatError whose message contains `words`."""
    return lambda d: Expected(FormatError, None, None, words)


def _lim(*words: str) -> Callable[[bytes], Expected]:
    """LimitError whose message contains `words`."""
    return lambda d: Expected(LimitError, None, None, words)


def _unsafe(*words: str) -> Callable[[bytes], Expected]:
    """UnsafeFileError whose message contains `words`."""
    return lambda d: Expected(UnsafeFileError, None, None, words)


def _unstorable(*words: str) -> Callable[[bytes], Expected]:
    """UnstorableError whose message contains `words`."""
    return lambda d: Expected(UnstorableError, None, None, words)


def _issue8_headers() -> list[Attack]:
    """Issue 8: .npy headers whose shapes or zero-width dtypes claim too much."""
    return [
        Attack(
            "issue8/shape-4000-digit-dimension",
            ".npy header whose shape has a 4000-digit dimension",
            lambda s: _header("(" + "9" * 4000 + ",)"),
            _fmt("bad shape", "2**63"),
        ),
        Attack(
            "issue8/shape-two-3000-digit-dimensions",
            ".npy header whose shape has two 3000-digit dimensions",
            lambda s: _header("(" + "7" * 3000 + ", " + "8" * 3000 + ")"),
            _fmt("bad shape"),
        ),
        Attack(
            "issue8/shape-0-by-2**63",
            ".npy header with shape (0, 2**63)",
            lambda s: _header(f"(0, {2**63})"),
            _fmt("bad shape", "2**63"),
        ),
        Attack(
            "issue8/shape-product-past-2**63",
            ".npy header whose dimensions multiply past 2**63",
            lambda s: _header(f"({2**40}, {2**40})"),
            _fmt("bad shape", "multiply"),
        ),
        Attack(
            "issue8/U0-times-1e9-npy",
            ".npy of dtype U0 and 10**9 elements (no data)",
            lambda s: _header("(1000000000,)", "<U0"),
            _lim("max_items"),
        ),
        Attack(
            "issue8/U0-times-1e9-npz",
            ".npz member of dtype U0 and 10**9 elements",
            lambda s: npz_bytes({"x.npy": _header("(1000000000,)", "<U0")}),
            _lim("max_items"),
        ),
        Attack(
            "issue8/S0-in-npz",
            ".npz member of dtype S0 (empty strings, no memory read)",
            lambda s: npz_bytes({"x.npy": _header("(5,)", "|S0")}),
            None,
        ),
    ]


def _issue8_archives() -> list[Attack]:
    """Issue 8: archive names, the safenpz manifest, zip overlap."""
    return [
        Attack(
            "issue8/x-and-x.npy-hostile-x",
            ".npz with benign x.npy and hostile x (np.load(f)['x'] runs x)",
            _x_and_x_npy,
            _unsafe("member 'x'", "system"),
        ),
        Attack(
            "issue8/manifest-hides-raw-member",
            "safenpz manifest entry x hiding a raw member x.npy",
            lambda s: _manifest(
                _DOC,
                **{
                    "x": _npy(np.arange(3)),
                    "x.values": _npy(np.arange(3)),
                    "x.offsets": _npy(np.array([0, 3])),
                },
            ),
            _fmt("hide"),
        ),
        Attack(
            "issue8/manifest-json-200k-deep",
            "safenpz manifest of 200,000 nested JSON arrays",
            lambda s: _manifest('{"arrays": ' + "[" * 200_000),
            _fmt("nested too deeply"),
        ),
        Attack(
            "issue8/manifest-with-non-npy-member",
            "safenpz manifest next to a member not named .npy",
            lambda s: npz_bytes(
                {
                    "__safenpz__.npy": _npy(np.array(_DOC)),
                    "x.values.npy": _npy(np.arange(3)),
                    "x.offsets.npy": _npy(np.array([0, 3])),
                    "x": _npy(np.arange(2)),
                }
            ),
            _fmt("not a .npy member"),
        ),
        Attack(
            "issue8/overlap-via-local-extra-field",
            "zip members overlapping through a local header's extra field",
            _overlap_by_local_extra,
            _fmt("overlap"),
        ),
    ]


def _issue8_reads() -> list[Attack]:
    """Issue 8: bounded reads (path, pipe, scan) and files that are not pickles."""
    small_pickle = np.array([[1, 2], [3]], dtype=object).dumps()
    return [
        Attack(
            "issue8/bare-pickle-by-path-under-2GB",
            "small bare pickle read by path under a 2 GB address-space cap",
            lambda s: small_pickle,
            None,
            "load-path",
        ),
        Attack(
            "issue8/bare-pickle-from-pipe-under-2GB",
            "small bare pickle read from a pipe under a 2 GB address-space cap",
            lambda s: small_pickle,
            None,
            "load-pipe",
        ),
        Attack(
            "issue8/scan-npy-under-2GB",
            "scan of an object .npy under a 2 GB address-space cap",
            lambda s: _npy(np.array([[1], [2, 3]], dtype=object)),
            None,
            "scan",
        ),
        Attack(
            "issue8/scan-hostile-npz-member-x",
            "scan of an .npz whose member x (next to x.npy) is hostile",
            _x_and_x_npy,
            _unsafe("system"),
            "scan",
        ),
        Attack(
            "issue8/plain-text-file",
            "a text file given to load (not a pickle, not unsafe)",
            lambda s: b"Only some text, no pickle here.\n",
            _fmt(),
        ),
        Attack(
            "issue8/nested-json-in-manifest-member-1MB",
            "safenpz manifest that inflates past its 4 MB cap",
            lambda s: npz_bytes(
                {"__safenpz__.npy": _npy(np.array(" " * (2 << 20)))},
                zipfile.ZIP_DEFLATED,
            ),
            _fmt("larger than"),
        ),
    ]


def _issue8() -> list[Attack]:
    return _issue8_headers() + _issue8_archives() + _issue8_reads()


_M61 = 2**61 - 1  # ints k * _M61 + 1 all share one hash value


def _tree(
    nodes: Sequence[Sequence[object]], leaves: dict[str, bytes] | None = None
) -> bytes:
    """An .npz holding the safenpz tree ``x`` with this node table."""
    table = np.frombuffer(json.dumps(nodes).encode(), dtype=np.uint8)
    doc = {
        "format": "safenpz",
        "version": 1,
        "arrays": {"x": {"kind": "tree", "leaves": len(leaves or {})}},
    }
    members = {"x.tree": _npy(table), **(leaves or {})}
    return _manifest(json.dumps(doc), **members)


def _int_node(i: int) -> list[object]:
    if -(2**63) <= i < 2**63:
        return ["int", i]
    return ["int", ("-" if i < 0 else "") + f"{abs(i):x}"]


def _colliding_dict(n: int) -> bytes:
    nodes: list[list[object]] = [["dict", list(range(1, 2 * n + 1))]]
    for k in range(n):
        nodes += [_int_node(1 + k * _M61), ["none"]]
    return _tree(nodes)


def _review() -> list[Attack]:
    """Adversarial review of issue 8 (safenpz trees): hash collisions, and
    node tables that scan must refuse as load does."""

    leaf_obj = {"x.0": _npy(np.array([[1], [2, 3]], dtype=object))}
    cases = [
        (
            "tree-dict-30k-colliding-int-keys",
            "tree dict of 30,000 int keys with one hash value",
            lambda s: _colliding_dict(30_000),
            ("hash-collision",),
        ),
        (
            "tree-frozenset-30k-colliding-negative-ints",
            "tree frozenset of 30,000 negative ints with one hash value",
            lambda s: _tree(
                [["frozenset", list(range(1, 30_001))]]
                + [_int_node(-1 - k * _M61) for k in range(30_000)]
            ),
            ("hash-collision",),
        ),
        (
            "tree-objarray-shape-0-by-2**62",
            "tree object array of shape (0, 2**62)",
            lambda s: _tree([["objarray", [0, 2**62], "C", []]]),
            ("bad object array shape",),
        ),
        (
            "tree-dict-with-list-key",
            "tree dict whose key is a list node",
            lambda s: _tree([["dict", [1, 2]], ["list", []], ["none"]]),
            ("not hashable",),
        ),
        (
            "tree-tuple-key-holding-a-set",
            "tree set whose item is a tuple holding a set",
            lambda s: _tree([["set", [1]], ["tuple", [2]], ["set", []]]),
            ("not hashable",),
        ),
        (
            "tree-set-of-equal-ints",
            "tree set of the equal items 1 and 1.0",
            lambda s: _tree([["set", [1, 2]], ["int", 1], ["float", 1.0]]),
            ("equal keys",),
        ),
        (
            "tree-leaf-is-object-array",
            "tree leaf member that is a (loadable) object array",
            lambda s: _tree([["array", 0]], leaf_obj),
            ("must be a numeric array",),
        ),
        (
            "tree-scalar-leaf-not-0d",
            "tree scalar leaf member of shape (2,)",
            lambda s: _tree([["scalar", 0]], {"x.0": _npy(np.zeros(2))}),
            ("must be 0-d",),
        ),
        (
            "tree-float-1e999",
            "tree float node 1e999 (JSON parses it as inf)",
            lambda s: _manifest(
                '{"format": "safenpz", "version": 1, "arrays": '
                '{"x": {"kind": "tree", "leaves": 0}}}',
                **{"x.tree": _npy(np.frombuffer(b'[["float", 1e999]]', np.uint8))},
            ),
            ("finite",),
        ),
    ]
    out = []
    for key, what, build, words in cases:
        out.append(Attack(f"review8/{key}", what, build, _fmt(*words)))
        out.append(Attack(f"review8/scan-{key}", what, build, _fmt(), "scan"))
    return out


def _object_npy(value: object) -> bytes:
    """A legacy .npy: a 1-element object array holding `value`, pickled (the
    pickle memoises shared references, so the file stays small)."""
    arr = np.empty(1, dtype=object)
    arr[0] = value
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _memo_cube(side: int, levels: int) -> list[object]:
    value: list[object] = [0] * side
    for _ in range(levels - 1):
        value = [value] * side
    return value


def _tree_table(text: str) -> bytes:
    """An .npz holding the safenpz tree ``x`` with this node table text."""
    entry = {"x": {"kind": "tree", "leaves": 0}}
    doc = json.dumps({"format": "safenpz", "version": 1, "arrays": entry})
    table = np.frombuffer(text.encode(), dtype=np.uint8)
    return _manifest(doc, **{"x.tree": _npy(table)})


def _save_expansion() -> list[Attack]:
    """Shared references that expand when stored as copies, saved and
    converted."""
    mib = b"b" * 2**20
    big = (
        "issue8-save/shared-1000^4-nested-list",
        "memo-shared 4-level nested list, 1000 references a level (1e12 nodes)",
        lambda s: _object_npy(_memo_cube(1000, 4)),
        _lim("more than 1,048,576 nodes"),
    )
    text = (
        "issue8-save/500k-refs-to-one-1MiB-string",
        "500,000 references to one 1 MiB string",
        lambda s: _object_npy(["s" * 2**20] * 500_000),
        _lim("characters of strings and bytes"),
    )
    cases = [
        big,
        text,
        (
            "issue8-save/500k-refs-to-one-1MiB-bytes",
            "500,000 references to one 1 MiB bytes object",
            lambda s: _object_npy([mib] * 500_000),
            _lim("characters of strings and bytes"),
        ),
        (
            "issue8-save/100k-refs-to-one-8MiB-array",
            "100,000 references to one 8 MiB float array",
            lambda s: _object_npy([np.zeros(2**20)] * 100_000),
            _lim("bytes of copies"),
        ),
    ]
    return [
        Attack(f"{key}-{action}", what, build, expect, action)
        for key, what, build, expect in cases
        for action in ("save", "convert")
    ]


def _save_refusals() -> list[Attack]:
    """What Parquet or .npz cannot hold is refused (or, for names, stored)."""
    return [
        Attack(
            "issue8-save/parquet-structured-dtype",
            "structured-dtype column converted to Parquet (pyarrow refuses it)",
            lambda s: _npy(np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")])),
            _unstorable("Parquet", "pyarrow refuses"),
            "convert-parquet",
        ),
        Attack(
            "issue8-save/parquet-complex-dtype",
            "complex column converted to Parquet (pyarrow refuses it)",
            lambda s: _npy(np.zeros(3, dtype=np.complex128)),
            _unstorable("Parquet", "pyarrow refuses"),
            "convert-parquet",
        ),
        Attack(
            "issue8-save/parquet-U0-shape-0-by-2**62",
            "U0 column of shape (0, 2**62) converted to Parquet",
            lambda s: _header(f"(0, {2**62})", "<U0"),
            _unstorable("Parquet", "pyarrow refuses"),
            "convert-parquet",
        ),
        Attack(
            "issue8-save/parquet-dict-column",
            "object column of dicts converted to Parquet",
            lambda s: _object_npy({"a": 1}),
            _unstorable("not a list of numeric rows"),
            "convert-parquet",
        ),
        Attack(
            "issue8-save/npz-member-named-a/b",
            "archive member named 'a/b.npy' converted to .npz",
            lambda s: npz_bytes({"a/b.npy": _npy(np.arange(3))}),
            _unstorable("'a/b'", "not allowed"),
            "convert",
        ),
        Attack(
            "issue8-save/npz-members-named-file-compress-allow_pickle",
            "archive members named file, compress, allow_pickle converted to .npz",
            lambda s: npz_bytes(
                {
                    f"{n}.npy": _npy(np.arange(3))
                    for n in ("file", "compress", "allow_pickle")
                }
            ),
            None,
            "convert",
        ),
    ]


def _save_tree_tables() -> list[Attack]:
    """A node table too large to parse, for load and for scan."""
    return [
        Attack(
            "issue8-save/tree-table-20M-empty-lists",
            "tree node table of 20 million empty JSON arrays (1.3 GB parsed)",
            lambda s: _tree_table("[" + "[]," * (20 * 2**20) + "[]]"),
            lambda d: Expected(FormatError, None, None, ("JSON values",)),
        ),
        Attack(
            "issue8-save/scan-tree-table-20M-empty-lists",
            "tree node table of 20 million empty JSON arrays (1.3 GB parsed)",
            lambda s: _tree_table("[" + "[]," * (20 * 2**20) + "[]]"),
            lambda d: Expected(FormatError, None, None, ()),
            "scan",
        ),
    ]


def _save() -> list[Attack]:
    """Adversarial review of issue 8, second part: saving or converting data
    that loaded fine must stay bounded (shared references expand when
    stored as copies) and raise only safenpz errors."""
    return _save_expansion() + _save_refusals() + _save_tree_tables()


def _hash_collisions() -> list[Attack]:
    """Issue 8: keys the scanner values only through a constructor, crafted
    to share one hash value (a dict of them is quadratic to build; each
    stream then runs ``posix.system``), and keys it does not value."""
    n = 100_000
    cases = [
        (
            "100k-colliding-complex-keys",
            f"{n:,} complex keys with one hash value",
            lambda s: dict_stream(complex_keys(n), s),
            "share one hash value",
        ),
        (
            "100k-colliding-complex128-keys",
            f"{n:,} numpy.complex128 scalar keys with one hash value",
            lambda s: dict_stream(complex128_keys(n), s),
            "share one hash value",
        ),
        (
            "100k-colliding-float64-tuple-keys",
            f"{n:,} (numpy.float64, int) tuple keys with one hash value",
            lambda s: dict_stream(float_tuple_keys(n), s),
            "share one hash value",
        ),
        (
            "100k-colliding-frozenset-keys",
            f"{n:,} frozenset keys with one hash value",
            lambda s: dict_stream(frozenset_keys(n), s),
            "share one hash value",
        ),
        (
            "5000-longdouble-keys",
            "5,000 numpy.longdouble keys (a hash the scanner does not compute)",
            lambda s: dict_stream(longdouble_keys(5000), s),
            "not computed here",
        ),
        (
            "ordereddict-of-20k-colliding-pairs",
            "OrderedDict(list of 20,000 colliding complex keys)",
            lambda s: ordered_dict_pairs(s, 20_000),
            "OrderedDict() is only allowed without arguments",
        ),
    ]
    out = []
    for key, what, build, words in cases:
        out.append(
            Attack(f"issue8-hash/{key}", f"bare pickle: {what}", build, _fmt(words))
        )
        out.append(
            Attack(
                f"issue8-hash/npy-{key}",
                f".npy object array: {what}",
                lambda s, b=build: npy_bytes(b(s)),  # type: ignore[misc]
                _fmt(words),
            )
        )
    return out + _shared_values()


def _shared_values() -> list[Attack]:
    """Issue 8: values memoised once and read at every use (the scanner's
    budget), and a memoised key hashed once."""
    n = 100_000
    out = []
    out.append(
        Attack(
            "issue8-hash/60KB-string-encoded-500k-times",
            "one memoised 60 KB string given to _codecs.encode 500,000 times",
            shared_text_arguments,
            _fmt("more values than the stream has bytes"),
        )
    )
    out.append(
        Attack(
            "issue8-hash/8000-item-frozenset-key-of-200k-dicts",
            "one memoised frozenset of 8,000 ints, the key of 200,000 dicts",
            lambda s: shared_frozenset_keys(),
            None,
        )
    )
    out.append(
        Attack(
            "issue8-hash/scan-100k-colliding-complex128-keys",
            f"{n:,} numpy.complex128 scalar keys with one hash value",
            lambda s: npy_bytes(dict_stream(complex128_keys(n), s)),
            _fmt(),
            "scan",
        )
    )
    return out


ATTACKS: list[Attack] = (
    _hostile() + _malformed() + _issue8() + _review() + _save() + _hash_collisions()
)


def _outcome(attack: Attack) -> str:
    if attack.expect is None:
        return "loads (within the bounds)"
    exp = attack.expect(attack.build("/tmp/safenpz-sentinel"))
    words = ", ".join(f"`{w}`" for w in exp.parts())
    return f"`{exp.error.__name__}`" + (f" naming {words}" if words else "")


def markdown_table() -> str:
    """The attack table of SECURITY.md."""
    lines = [
        "| # | case | input | asserted outcome |",
        "|---|---|---|---|",
    ]
    for i, attack in enumerate(ATTACKS, 1):
        action = "" if attack.action == "load" else f" ({attack.action})"
        lines.append(
            f"| {i} | `{attack.id}` | {attack.what}{action} | {_outcome(attack)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(json.dumps(len(ATTACKS)), file=sys.stderr)
    sys.stdout.write(markdown_table())
