"""Pickle-free storage of nested plain data: the ``"tree"`` manifest kind.

This module is the format: the node table's kinds, its limits and the checks
both sides share. The writer is :mod:`safenpz._tree_write`
(:func:`~safenpz._tree_write.encode`), the reader :mod:`safenpz._tree_read`
(:func:`~safenpz._tree_read.decode`, and
:func:`~safenpz._tree_read.check_table` for ``safenpz scan``).

A value that is not a numeric array, a ragged column or a simple object array
(a dict of weight arrays, a list mixing ints and strings, an object array of
dicts, ...) is stored by :func:`safenpz.save` as a *tree*: its structure as
typed JSON, its NumPy arrays as ordinary numeric members. For a value saved
under the name ``x``:

==========================  ==================================================
member                      content
==========================  ==================================================
``x.tree.npy``              1-D ``uint8``: the UTF-8 text of the node table
``x.0.npy``, ``x.1.npy``,   the leaf arrays, numbered in the order the node
...                         table refers to them; never ``dtype=object``
``__safenpz__.npy``         manifest entry ``"x": {"kind": "tree", "leaves": n}``
==========================  ==================================================

so ``np.load(path, allow_pickle=False)`` opens every member.

The node table
--------------
A JSON array of nodes; node 0 is the value itself. Each node is a JSON array
whose first item is its *kind*, a string looked up in a closed table (below);
nothing in the file names a type, a module or a callable. Containers refer to
their children by node index. Every node except node 0 is referred to exactly
once, always by a node with a *smaller* index, so the table is a tree (no
cycles, no sharing) and the reader builds it bottom-up without recursion.
Every leaf member ``x.<i>`` (``0 <= i < leaves``) is referred to exactly once.

==================  ====================================  ===================
kind                node                                  value
==================  ====================================  ===================
``none``            ``["none"]``                          ``None``
``bool``            ``["bool", true]``                    ``bool``
``int``             ``["int", 5]``; ``["int", "-1f..."]``  ``int``: a JSON
                                                          integer within
                                                          int64, else
                                                          lower-case hex
``float``           ``["float", 1.5]``;                   ``float``: finite
                    ``["float", "7ff8000000000000"]``     as a JSON number
                                                          (exact: shortest
                                                          repr), else its 64
                                                          bits in hex (NaN
                                                          payload, sign)
``complex``         ``["complex", re, im]``               ``complex``; `re`,
                                                          `im` as ``float``
``str``             ``["str", "text"]``                   ``str``
``bytes``           ``["bytes", "base64"]``               ``bytes``
``bytearray``       ``["bytearray", "base64"]``           ``bytearray``
``np.str_``         ``["np.str_", "text"]``               ``numpy.str_``
``np.bytes_``       ``["np.bytes_", "base64"]``           ``numpy.bytes_``
``np.number``       ``["np.number", "<f8", "hex"]``       numeric NumPy scalar:
                                                          a dtype code of the
                                                          closed table
                                                          ``?bhilqBHILQefdgFDG``
                                                          (native byte order)
                                                          and its raw bytes
``list``            ``["list", [i, ...]]``                ``list``
``tuple``           ``["tuple", [i, ...]]``               ``tuple``
``set``             ``["set", [i, ...]]``                 ``set``
``frozenset``       ``["frozenset", [i, ...]]``           ``frozenset``
``dict``            ``["dict", [k0, v0, k1, v1, ...]]``   ``dict`` (in order)
``OrderedDict``     ``["OrderedDict", [k0, v0, ...]]``    ``OrderedDict``
``objarray``        ``["objarray", [2, 3], "C", [i, ...]]``  object array:
                                                          shape, memory order
                                                          (``"C"``/``"F"``),
                                                          elements in C
                                                          (row-major) order
``array``           ``["array", leaf]``                   member ``x.<leaf>``
                                                          as it is
``scalar``          ``["scalar", leaf]``                  other NumPy scalars
                                                          (datetime, void,
                                                          ...): 0-d member
                                                          ``x.<leaf>``, ``[()]``
``dtype``           ``["dtype", leaf]``                   ``numpy.dtype``: the
                                                          dtype of the empty
                                                          1-D member
==================  ====================================  ===================

Arrays keep their shape, dtype (byte order, field names, titles, offsets) and
memory order (C or Fortran; a non-contiguous view comes back C-ordered, as
NumPy's ``np.save`` writes it). What ``np.save`` cannot store exactly — dtype
``metadata``, ``align=True`` structs, ``np.record`` dtypes, structured dtypes
with object fields — is refused at save time with
:class:`~safenpz.UnstorableError` (a :class:`TypeError`), never silently
changed. Shared references are stored as copies; a container that contains
itself is refused (:class:`~safenpz.UnstorableError`).

Limits
------
The reader treats the node table as hostile: it must be a 1-D ``uint8``
member of valid UTF-8 JSON (bounded by ``max_member_bytes`` like any member);
the number of nodes is bounded by ``max_items`` and the nesting of containers
by ``max_depth`` (:class:`~safenpz.LimitError`, naming the keyword); every node
is checked (kind, arity, argument types, canonical number forms, child indices,
hashable and distinct dict keys and set items, shapes that match their element
count) and any violation is a :class:`~safenpz.FormatError` naming the tree
and the node. Before it parses anything, the reader refuses a table of more
than :data:`MAX_TABLE_BYTES` characters or :data:`MAX_TABLE_VALUES` JSON values
(counted as ``[`` and ``,`` characters), so parsing takes bounded time and
memory (:class:`~safenpz.FormatError`: the writer never writes such a table).

The writer bounds its work the same way. Shared references are stored as
copies, so a value that takes little memory can expand without bound (a list
holding 1000 references to a list holding 1000 references to ...). Before
encoding anything, :func:`~safenpz._tree_write.encode` counts the value's
expanded size, memoised per object so the count is linear in the distinct
objects, and refuses with :class:`~safenpz.LimitError` a value of more than
:data:`~safenpz._tree_write.MAX_SAVE_NODES` nodes, more than
:data:`~safenpz._tree_write.MAX_SAVE_TEXT` characters of strings and bytes,
or more than :data:`~safenpz._tree_write.MAX_SAVE_COPY_BYTES` bytes of copies
of shared leaf arrays; it then checks the JSON text against the reader's
limits. Encoding takes about 2 µs per node, so a save is refused or done
within seconds.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ._exceptions import FormatError, Where
from ._limits import MAX_SAME_HASH

__all__ = [
    "CONTAINERS",
    "HEX_BITS",
    "HEX_INT",
    "INT64_MAX",
    "INT64_MIN",
    "KIND",
    "MAX_HASH_COLLISIONS",
    "MAX_TABLE_BYTES",
    "MAX_TABLE_VALUES",
    "NUMBER_DTYPES",
    "entry_parts",
    "table_excess",
    "table_problem",
    "table_text",
]

KIND = "tree"
#: Largest node table, in characters, that the writer writes and the
#: reader parses; checked before ``json.loads``.
MAX_TABLE_BYTES = 64 * 2**20
#: Most JSON values (counted as ``[`` plus ``,`` characters, an upper bound
#: found without parsing) in a node table that the writer writes and the
#: reader parses: parsing costs up to ~80 bytes of memory per value.
MAX_TABLE_VALUES = 6 * 2**20

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: a big int's canonical text; a non-finite float's 64 bits
HEX_INT = re.compile(r"-?[0-9a-f]+\Z")
HEX_BITS = re.compile(r"[0-9a-f]{16}\Z")
#: numeric NumPy scalar types: by kind and size ("f8"), portable across
#: platforms, and by type character where the sized code names another type
#: ("q": longlong is not int64 on Linux); a closed table built from NumPy
NUMBER_DTYPES: dict[str, np.dtype[Any]] = {}
for _char in "?bhilqBHILQefdgFDG":
    _dt = np.dtype(_char)
    NUMBER_DTYPES.setdefault(f"{_dt.kind}{_dt.itemsize}", _dt)
    NUMBER_DTYPES[_char] = _dt
#: node kinds whose last argument lists child indices (``objarray`` aside)
CONTAINERS = ("list", "tuple", "set", "frozenset", "dict", "OrderedDict")
#: Most keys (items) of one dict (set) that may share one hash value: the
#: bound the pickle scanner uses too (ints ``k * (2**61 - 1) + 1`` all hash
#: alike, and a 1 MB node table of them could keep the reader busy for minutes).
MAX_HASH_COLLISIONS = MAX_SAME_HASH


def entry_parts(name: str, entry: dict[str, Any], members: int) -> list[str] | None:
    """The member stems a tree manifest entry owns, or None if it is malformed.

    A pure function of the entry and the archive's member count (nothing is
    read or decoded), so an archive scanner can use it too. An entry that
    claims more leaves than the archive has members is malformed (checked
    before any list is built, so a huge claim costs nothing).
    """
    leaves = entry.get("leaves")
    if set(entry) != {"kind", "leaves"} or type(leaves) is not int:
        return None
    if not 0 <= leaves < members:
        return None
    return [f"{name}.tree", *(f"{name}.{i}" for i in range(leaves))]


def table_excess(text: str) -> tuple[str, int, int] | None:
    """The limit a node table's JSON text exceeds, as ``(name, value,
    maximum)``, or None; a pure function shared by the writer and the
    reader, so that everything one writes the other reads."""
    if len(text) > MAX_TABLE_BYTES:
        return "MAX_TABLE_BYTES", len(text), MAX_TABLE_BYTES
    values = text.count(",") + text.count("[")
    if values > MAX_TABLE_VALUES:
        return "MAX_TABLE_VALUES", values, MAX_TABLE_VALUES
    return None


def table_problem(text: str) -> str | None:
    """Why a node table is too big to write or to parse, or None
    (:func:`table_excess` in words)."""
    excess = table_excess(text)
    if excess is None:
        return None
    limit, value, maximum = excess
    unit = "characters" if limit == "MAX_TABLE_BYTES" else "JSON values"
    return f"{value:,} {unit} (at most {maximum:,})"


def table_text(raw: Any, where: Where) -> str:
    """The JSON text of the node table member `raw`, found at `where`.

    Refuses, before anything is parsed, a member that is not 1-D ``uint8``,
    text that is not UTF-8, and a table over :data:`MAX_TABLE_BYTES` or
    :data:`MAX_TABLE_VALUES` (:class:`~safenpz.FormatError`).
    """
    if not (type(raw) is np.ndarray and raw.dtype == np.uint8 and raw.ndim == 1):
        msg = "the node table must be a 1-D uint8 array of JSON text"
        raise FormatError(msg, where=where)
    problem = None
    if raw.size > MAX_TABLE_BYTES:
        problem = f"{raw.size:,} bytes (at most {MAX_TABLE_BYTES:,})"
    else:
        try:
            text = str(np.ascontiguousarray(raw).data, "utf-8")
        except UnicodeDecodeError as err:
            msg = f"the node table is not UTF-8 ({err})"
            raise FormatError(msg, where=where) from err
        problem = table_problem(text)
    if problem is not None:
        msg = (
            f"the node table has {problem}, more than safenpz.save ever writes "
            "(checked before parsing it). The file was not written by "
            "safenpz.save or has been altered"
        )
        raise FormatError(msg, where=where)
    return text
