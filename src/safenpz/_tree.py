"""Pickle-free storage of nested plain data: the ``"tree"`` manifest kind.

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
encoding anything, :func:`encode` counts the value's expanded size, memoised
per object so the count is linear in the distinct objects, and refuses with
:class:`~safenpz.LimitError` a value of more than :data:`MAX_SAVE_NODES` nodes,
more than :data:`MAX_SAVE_TEXT` characters of strings and bytes, or more than
:data:`MAX_SAVE_COPY_BYTES` bytes of copies of shared leaf arrays; it then
checks the JSON text against the reader's limits. Encoding takes about 2 µs
per node, so a save is refused or done within seconds.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np
from numpy.lib import format as npformat

from ._exceptions import FormatError, LimitError, UnstorableError
from ._limits import MAX_SAME_HASH, Limits

__all__ = [
    "KIND",
    "MAX_SAVE_COPY_BYTES",
    "MAX_SAVE_NODES",
    "MAX_SAVE_TEXT",
    "MAX_TABLE_BYTES",
    "MAX_TABLE_VALUES",
    "check_storable_dtype",
    "check_table",
    "decode",
    "encode",
    "entry_parts",
    "is_tree_value",
]

KIND = "tree"
#: Most nodes :func:`encode` writes for one value, counted with shared
#: references expanded (they are stored as copies). Encoding takes about
#: 2 µs per node, so a refused or accepted value stays within seconds.
MAX_SAVE_NODES = 1 << 20
#: Most characters of string, bytes (base64) and big-int text :func:`encode`
#: puts into one node table, shared references expanded.
MAX_SAVE_TEXT = 32 * 2**20
#: Most bytes that copies of shared leaf arrays may add to one value (an
#: array referred to ``k`` times is written ``k`` times); distinct arrays are
#: written once each, whatever their size.
MAX_SAVE_COPY_BYTES = 256 * 2**20
#: Largest node table, in characters, that :func:`encode` writes and the
#: reader parses; checked before ``json.loads``.
MAX_TABLE_BYTES = 64 * 2**20
#: Most JSON values (counted as ``[`` plus ``,`` characters, an upper bound
#: found without parsing) in a node table that :func:`encode` writes and the
#: reader parses: parsing costs up to ~80 bytes of memory per value.
MAX_TABLE_VALUES = 6 * 2**20

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_HEX_INT = re.compile(r"-?[0-9a-f]+\Z")
_HEX_BITS = re.compile(r"[0-9a-f]{16}\Z")
#: numeric NumPy scalar types: by kind and size ("f8"), portable across
#: platforms, and by type character where the sized code names another type
#: ("q": longlong is not int64 on Linux); a closed table built from NumPy
_NUMBER_DTYPES: dict[str, np.dtype[Any]] = {}
for _char in "?bhilqBHILQefdgFDG":
    _dt = np.dtype(_char)
    _NUMBER_DTYPES.setdefault(f"{_dt.kind}{_dt.itemsize}", _dt)
    _NUMBER_DTYPES[_char] = _dt
_CONTAINERS = ("list", "tuple", "set", "frozenset", "dict", "OrderedDict")
#: Most keys (items) of one dict (set) that may share one hash value: the
#: bound the pickle scanner uses too (ints ``k * (2**61 - 1) + 1`` all hash
#: alike, and a 1 MB node table of them could keep the reader busy for minutes).
MAX_HASH_COLLISIONS = MAX_SAME_HASH


# --------------------------------------------------------------------------
# shared: what np.save keeps


def _dtype_signature(dt: np.dtype[Any]) -> tuple[Any, ...]:
    """Everything about a dtype that ``==`` may ignore."""
    fields = None
    if dt.fields is not None:
        fields = tuple(
            (key, _dtype_signature(spec[0]), *spec[1:])
            for key, spec in dt.fields.items()
        )
    sub = None
    if dt.subdtype is not None:
        sub = (_dtype_signature(dt.subdtype[0]), dt.subdtype[1])
    meta = None if dt.metadata is None else sorted(dt.metadata.items())
    return (
        dt.str,
        dt.itemsize,
        dt.alignment,
        dt.isalignedstruct,
        dt.names,
        fields,
        sub,
        meta,
    )


def check_storable_dtype(
    dt: np.dtype[Any], where: str, *, exact_type: bool = True
) -> None:
    """Raise :class:`~safenpz.UnstorableError` unless ``np.save``/``np.load``
    keep `dt` exactly.

    The check is NumPy's own round trip: the ``.npy`` header descr that
    ``np.save`` writes (``dtype_to_descr``), read back as ``np.load`` reads it
    (``descr_to_dtype``), must give the same dtype, metadata, alignment,
    titles and offsets included (and, with `exact_type`, the same scalar
    type: ``np.record`` comes back as ``np.void``).

    Examples
    --------
    >>> check_storable_dtype(np.dtype(">i4"), "x")
    >>> check_storable_dtype(np.dtype("i4", metadata={"unit": "m"}), "x")
    Traceback (most recent call last):
    ...
    safenpz.UnstorableError: cannot store x pickle-free: NumPy's .npy format ...
    """
    problem = None
    if dt.hasobject:
        problem = "it holds Python objects (dtype with object fields)"
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "metadata is not saved"
                back = npformat.descr_to_dtype(npformat.dtype_to_descr(dt))
        except (TypeError, ValueError) as err:  # pragma: no cover - defensive
            problem = f"NumPy cannot describe its dtype in a .npy header ({err})"
        else:
            if _dtype_signature(back) != _dtype_signature(dt) or (
                exact_type and back.type is not dt.type
            ):
                problem = (
                    f"NumPy's .npy format does not keep its dtype {dt!r} "
                    f"exactly (np.load would give {back!r}; dtype metadata, "
                    "align=True, record types and sub-array dtypes are lost)"
                )
    if problem is not None:
        msg = (
            f"cannot store {where} pickle-free: {problem}; convert it to a "
            "plain dtype first (e.g. arr.astype(np.dtype(arr.dtype.descr)))"
        )
        raise UnstorableError(msg)


def is_tree_value(value: Any) -> bool:
    """Whether `value` is plain data that only a tree can store exactly.

    True for Python scalars, strings, bytes and containers and for NumPy
    scalars and dtypes; arrays are dispatched by :func:`safenpz.save` itself.
    """
    tp = type(value)
    if tp is np.ndarray:
        return False
    return tp in _ENCODERS or isinstance(value, np.generic | np.dtype)


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


# --------------------------------------------------------------------------
# writing


#: an encoder: (encoder, item, path) -> (node, children, step); `step(i)`
#: names child i in error messages (None: ``[i]``)
_Enc = Callable[[Any, Any, Any], tuple[list[Any], list[Any], Any]]
_Step = Callable[[int], str] | None

# A path into the value, kept as (parent path, step, child index) links and
# rendered only for an error message
_Path = tuple[Any, _Step, int] | None


def _render(path: _Path) -> str:
    steps: list[str] = []
    while path is not None:
        path, step, i = path
        steps.append(f"[{i}]" if step is None else step(i))
    return "the value" + "".join(reversed(steps))


class _Encoder:
    def __init__(self, where: str) -> None:
        self.where = where
        self.nodes: list[list[Any]] = []
        self.leaves: list[np.ndarray[Any, Any]] = []

    def fail(self, path: _Path, msg: str) -> NoReturn:
        text = f"cannot store {self.where} pickle-free: {_render(path)} {msg}"
        raise UnstorableError(text)

    def leaf(self, arr: np.ndarray[Any, Any]) -> int:
        self.leaves.append(arr)
        return len(self.leaves) - 1

    def run(self, value: Any) -> None:
        # preorder walk with an explicit stack: a parent gets its index before
        # its children, so children always have larger indices. _measure has
        # bounded the expanded size and refused cycles before this runs.
        stack: list[tuple[Any, int, int, _Path]] = [(value, -1, 0, None)]
        nodes = self.nodes
        while stack:
            item, parent, slot, path = stack.pop()
            index = len(nodes)
            if parent >= 0:
                nodes[parent][-1][slot] = index
            node, children, step = self.node(item, path)
            nodes.append(node)
            if not children:
                continue
            if set(map(type, children)) <= _SCALAR_TYPES:  # the common case
                node[-1][:] = range(index + 1, index + 1 + len(children))
                nodes.extend(_ENCODERS[type(c)](self, c, None)[0] for c in children)
                continue
            stack.extend(
                (children[i], index, i, (path, step, i))
                for i in range(len(children) - 1, -1, -1)
            )

    def node(self, item: Any, path: _Path) -> tuple[list[Any], list[Any], _Step]:
        encoder = _ENCODERS.get(type(item))
        if encoder is not None:
            return encoder(self, item, path)
        if isinstance(item, np.dtype):
            return self.dtype(item, path), [], None
        if isinstance(item, np.generic) and type(item) is item.dtype.type:
            return self.np_scalar(item, path), [], None
        self.fail(
            path,
            f"is a {type(item).__module__}.{type(item).__qualname__}; safenpz "
            "stores plain data only (None, bool, int, float, complex, str, bytes, "
            "lists, tuples, dicts, sets, NumPy arrays and scalars)",
        )

    def np_scalar(self, item: np.generic, path: _Path) -> list[Any]:
        dt = item.dtype
        if _NUMBER_DTYPES.get(dt.char) == dt:
            sized = f"{dt.kind}{dt.itemsize}"
            code = sized if _NUMBER_DTYPES[sized].type is type(item) else dt.char
            raw = np.asarray(item).astype(dt.newbyteorder("<")).tobytes()
            return ["np.number", code, raw.hex()]
        check_storable_dtype(dt, f"{self.where} ({_render(path)})")
        return ["scalar", self.leaf(np.asarray(item))]

    def dtype(self, dt: np.dtype[Any], path: _Path) -> list[Any]:
        where = f"{self.where} ({_render(path)})"
        check_storable_dtype(dt, where)  # refuses sub-array dtypes too
        return ["dtype", self.leaf(np.empty(0, dt))]

    def array(
        self, arr: np.ndarray[Any, Any], path: _Path
    ) -> tuple[list[Any], list[Any], _Step]:
        if arr.dtype != object:
            check_storable_dtype(arr.dtype, f"{self.where} ({_render(path)})")
            return ["array", self.leaf(arr)], [], None
        order = "F" if arr.flags.f_contiguous and not arr.flags.c_contiguous else "C"
        items = arr.ravel(order="C").tolist()
        shape = arr.shape

        def step(i: int) -> str:
            return str([int(j) for j in np.unravel_index(i, shape)])

        return ["objarray", list(shape), order, [0] * len(items)], items, step


def _float_form(x: float) -> float | str:
    if math.isfinite(x):
        return x
    return struct.pack(">d", x).hex()


def _b64(data: bytes | bytearray) -> str:
    return base64.b64encode(data).decode("ascii")


def _enc_int(enc: _Encoder, x: int, path: _Path) -> tuple[list[Any], list[Any], None]:
    if _INT64_MIN <= x <= _INT64_MAX:
        return ["int", x], [], None
    return ["int", format(x, "x")], [], None


def _sequence(kind: str) -> _Enc:
    def enc(enc: _Encoder, x: Any, path: _Path) -> tuple[list[Any], list[Any], None]:
        items = list(x)
        return [kind, [0] * len(items)], items, None

    return enc


def _mapping(kind: str) -> _Enc:
    def enc(enc: _Encoder, x: Any, path: _Path) -> tuple[list[Any], list[Any], _Step]:
        children = [y for pair in x.items() for y in pair]

        def step(i: int) -> str:
            key = children[i - i % 2]
            return f" key {key!r:.40}" if i % 2 == 0 else f"[{key!r:.40}]"

        return [kind, [0] * len(children)], children, step

    return enc


def _scalar(make: Callable[[Any], list[Any]]) -> _Enc:
    return lambda e, x, p: (make(x), [], None)


_ENCODERS: dict[type, _Enc] = {
    type(None): _scalar(lambda x: ["none"]),
    bool: _scalar(lambda x: ["bool", x]),
    int: _enc_int,
    float: _scalar(lambda x: ["float", _float_form(x)]),
    complex: _scalar(lambda x: ["complex", _float_form(x.real), _float_form(x.imag)]),
    str: _scalar(lambda x: ["str", x]),
    bytes: _scalar(lambda x: ["bytes", _b64(x)]),
    bytearray: _scalar(lambda x: ["bytearray", _b64(x)]),
    np.str_: _scalar(lambda x: ["np.str_", str.__str__(x)]),
    np.bytes_: _scalar(lambda x: ["np.bytes_", _b64(bytes(x))]),
    list: _sequence("list"),
    tuple: _sequence("tuple"),
    set: _sequence("set"),
    frozenset: _sequence("frozenset"),
    dict: _mapping("dict"),
    OrderedDict: _mapping("OrderedDict"),
    np.ndarray: lambda e, x, p: e.array(x, p),
}
_SCALAR_TYPES = frozenset(_ENCODERS) - {
    list,
    tuple,
    set,
    frozenset,
    dict,
    OrderedDict,
    np.ndarray,
}


# --------------------------------------------------------------------------
# the expanded size of a value, before anything is encoded

#: (nodes, text characters, leaf bytes) of a value once shared references
#: are expanded
_Size = tuple[int, int, int]
_TEXT_CHUNK = 1 << 20


def _json_len(s: str) -> int:
    """Characters ``json.dumps(s)`` takes, measured in bounded slices (an
    escape never spans two characters of `s`)."""
    if len(s) + 2 > MAX_SAVE_TEXT:  # refused anyway; a lower bound will do
        return len(s) + 2
    return 2 + sum(
        len(json.dumps(s[i : i + _TEXT_CHUNK])) - 2
        for i in range(0, len(s), _TEXT_CHUNK)
    )


def _own_size(item: Any) -> _Size:
    """The size of a value that has no children (a scalar or a leaf)."""
    tp = type(item)
    if tp is str or tp is np.str_:
        return 1, _json_len(item), 0
    if tp is bytes or tp is bytearray or tp is np.bytes_:
        return 1, 4 * ((len(item) + 2) // 3) + 2, 0
    if tp is int:
        return 1, item.bit_length() // 4 + 4, 0
    if isinstance(item, np.generic) and _NUMBER_DTYPES.get(item.dtype.char) == (
        item.dtype
    ):
        return 1, 2 * item.nbytes, 0  # stored inline, as hex
    if isinstance(item, np.ndarray | np.generic):
        return 1, 0, item.nbytes
    return 1, 0, 0  # fixed-size scalars, dtypes, and what encode refuses


def _kids(item: Any) -> tuple[list[Any] | None, int]:
    """The children :func:`encode` gives `item` (None: it has none) and the
    text its node itself takes (an object array's shape)."""
    tp = type(item)
    if tp is list or tp is tuple or tp is set or tp is frozenset:
        return list(item), 0
    if tp is dict or tp is OrderedDict:
        return [y for pair in item.items() for y in pair], 0
    if tp is np.ndarray and item.dtype == object:
        return item.ravel().tolist(), 21 * item.ndim
    return None, 0


def _too_big(where: str, what: str, hint: str) -> NoReturn:
    msg = (
        f"cannot store {where} pickle-free: the value {what} once shared "
        "references are expanded (a tree stores each reference as a copy). "
        f"Nothing was written; {hint}"
    )
    raise LimitError(msg)


def _check_size(size: _Size, where: str) -> None:
    nodes, text, _ = size
    if nodes > MAX_SAVE_NODES:
        _too_big(
            where,
            f"has more than {MAX_SAVE_NODES:,} nodes",
            "store large numeric content as arrays or RaggedArrays, or split "
            "the value into several names",
        )
    if text > MAX_SAVE_TEXT:
        _too_big(
            where,
            f"holds more than {MAX_SAVE_TEXT:,} characters of strings and bytes",
            "store large strings or bytes as arrays (np.frombuffer), or split "
            "the value into several names",
        )


def _measure(value: Any, where: str) -> _Size:
    """Refuse `value` if its tree would be too big, before building any of it.

    Sizes are memoised per object (by ``id``; the value keeps every object
    alive), so the count takes time linear in the distinct objects and their
    references, however much shared references expand.

    Returns
    -------
    nodes, text, leaf_bytes : int
        The expanded size: the nodes :func:`encode` writes, the characters
        of strings, bytes and big ints in them, the bytes of leaf arrays.

    Raises
    ------
    LimitError
        Too many nodes (:data:`MAX_SAVE_NODES`), too much text
        (:data:`MAX_SAVE_TEXT`), or too many bytes of copied leaf arrays
        (:data:`MAX_SAVE_COPY_BYTES`).
    UnstorableError
        A container contains itself.
    """
    sizes: dict[int, _Size] = {}
    distinct_leaf_bytes = 0
    active: set[int] = set()  # containers being counted: their ancestors
    # (item, its children once expanded, the text its own node takes)
    stack: list[tuple[Any, list[Any] | None, int]] = [(value, None, 0)]
    while stack:
        item, kids, own_text = stack[-1]
        key = id(item)
        if kids is None:
            if key in sizes:
                stack.pop()
                continue
            if key in active:
                msg = (
                    f"cannot store {where} pickle-free: the value contains itself "
                    "(a container holds a reference to itself or to a container "
                    "around it)"
                )
                raise UnstorableError(msg)
            kids, own_text = _kids(item)
            if kids is None:
                sizes[key] = size = _own_size(item)
                distinct_leaf_bytes += size[2]
                _check_size(size, where)
                stack.pop()
                continue
            stack[-1] = (item, kids, own_text)
            active.add(key)
            stack.extend((kid, None, 0) for kid in kids if id(kid) not in sizes)
            continue
        stack.pop()
        active.discard(key)
        nodes, text, leaf = 1, own_text, 0
        for kid in kids:
            n, t, b = sizes[id(kid)]
            nodes += n
            text += t
            leaf += b
        sizes[key] = size = (nodes, text, leaf)
        _check_size(size, where)
    copies = sizes[id(value)][2] - distinct_leaf_bytes
    if copies > MAX_SAVE_COPY_BYTES:
        _too_big(
            where,
            f"repeats shared arrays, writing {copies:,} bytes of copies (more "
            f"than {MAX_SAVE_COPY_BYTES:,})",
            "store each array once, under its own name",
        )
    return sizes[id(value)]


def table_problem(text: str) -> str | None:
    """Why a node table is too big to write or to parse, or None.

    A pure function of the JSON text, shared by :func:`encode` and the
    reader so that everything one writes the other reads.
    """
    if len(text) > MAX_TABLE_BYTES:
        return f"{len(text):,} characters (at most {MAX_TABLE_BYTES:,})"
    values = text.count(",") + text.count("[")
    if values > MAX_TABLE_VALUES:
        return f"{values:,} JSON values (at most {MAX_TABLE_VALUES:,})"
    return None


def encode(
    value: Any, name: str
) -> tuple[dict[str, Any], dict[str, np.ndarray[Any, Any]]]:
    """Encode `value` as the tree named `name`.

    Returns
    -------
    entry : dict
        The manifest entry, ``{"kind": "tree", "leaves": n}``.
    members : dict
        Member stem → array: ``<name>.tree`` and the leaves ``<name>.<i>``.

    Raises
    ------
    UnstorableError
        Something in `value` is not plain data, an array whose dtype
        ``np.save`` would change, or a container that contains itself.
    LimitError
        `value` would be too big once shared references are expanded (see
        the module docstring); checked before anything is encoded.

    Examples
    --------
    >>> entry, members = encode({"w": np.zeros(2, np.float32), "n": 3}, "m")
    >>> entry, sorted(members)
    ({'kind': 'tree', 'leaves': 1}, ['m.0', 'm.tree'])
    >>> bytes(members["m.tree"]).decode()
    '[["dict",[1,2,3,4]],["str","w"],["array",0],["str","n"],["int",3]]'
    """
    where = repr(name)
    _measure(value, where)
    enc = _Encoder(where)
    enc.run(value)
    text = json.dumps(enc.nodes, separators=(",", ":"), allow_nan=False)
    problem = table_problem(text)
    if problem is not None:
        msg = (
            f"cannot store {where} pickle-free: its node table would take "
            f"{problem}, more than safenpz.load reads. Nothing was written; "
            "store large numeric content as arrays or RaggedArrays, or split "
            "the value into several names"
        )
        raise LimitError(msg)
    members = {f"{name}.tree": np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}
    for i, arr in enumerate(enc.leaves):
        members[f"{name}.{i}"] = arr
    return {"kind": KIND, "leaves": len(enc.leaves)}, members


# --------------------------------------------------------------------------
# reading


class _Decoder:
    def __init__(
        self,
        name: str,
        leaves: int,
        read: Callable[[str], Any],
        limits: Limits,
        where: str,
    ) -> None:
        self.name = name
        self.n_leaves = leaves
        self.read = read
        self.limits = limits
        self.where = where
        self.node_index = 0
        self.leaf_used = [False] * leaves

    def fail(self, msg: str) -> NoReturn:
        text = (
            f"{self.where}: node {self.node_index}: {msg}. The file was not "
            "written by safenpz.save or has been altered; re-create it from "
            "the original data"
        )
        raise FormatError(text)

    # -- pass 1: structure
    def parse(self, text: str) -> list[Any]:
        def no_constant(token: str) -> NoReturn:
            msg = (
                f"{self.where}: the node table holds {token}, which JSON does not allow"
            )
            raise FormatError(msg)

        try:
            nodes = json.loads(text, parse_constant=no_constant)
        except (ValueError, RecursionError) as err:
            if isinstance(err, FormatError):
                raise
            msg = f"{self.where}: the node table is not valid JSON ({err})"
            raise FormatError(msg) from err
        if not isinstance(nodes, list) or not nodes:
            msg = f"{self.where}: the node table must be a non-empty JSON array"
            raise FormatError(msg)
        self.limits.check("max_items", len(nodes), f"{self.where}: nodes")
        return nodes

    def structure(self, nodes: list[Any]) -> list[Any]:
        """Check every node; return the scalar values (containers: None)."""
        n = len(nodes)
        parent = [-1] * n
        depth = [0] * n
        values: list[Any] = [None] * n
        for i, node in enumerate(nodes):
            self.node_index = i
            if i and parent[i] < 0:
                self.fail("no node refers to it")
            if not (isinstance(node, list) and node and isinstance(node[0], str)):
                self.fail(f"a node must be a JSON array [kind, ...], not {node!r:.60}")
            kind = node[0]
            check = _SCALARS.get(kind)
            if check is not None:
                values[i] = check(self, node)
                continue
            if kind in ("array", "scalar", "dtype"):
                self.claim_leaf(node)
                continue
            children = self.children(node, kind)
            if depth[i] > self.limits.max_depth:
                self.limits.check(
                    "max_depth", depth[i], f"{self.where}: containers nested"
                )
            for c in children:
                if type(c) is not int or not i < c < n:
                    self.fail(f"child index {c!r:.30} is not a node after {i}")
                if parent[c] >= 0:
                    self.fail(f"node {c} is referred to twice (also by {parent[c]})")
                parent[c] = i
                depth[c] = depth[i] + 1
        self.node_index = n
        if not all(self.leaf_used):
            missing = self.leaf_used.index(False)
            msg = (
                f"{self.where}: member {self.name}.{missing}.npy is not referred "
                "to by any node. The file was not written by safenpz.save or "
                "has been altered"
            )
            raise FormatError(msg)
        return values

    def claim_leaf(self, node: list[Any]) -> None:
        if len(node) != 2 or type(node[1]) is not int:
            self.fail(f"{node[0]!r} takes one leaf index, got {node[1:]!r:.60}")
        leaf = node[1]
        if not 0 <= leaf < self.n_leaves:
            self.fail(
                f"leaf {leaf} does not exist (the manifest lists "
                f"{self.n_leaves} leaves)"
            )
        if self.leaf_used[leaf]:
            self.fail(f"member {self.name}.{leaf}.npy is referred to twice")
        self.leaf_used[leaf] = True

    def children(self, node: list[Any], kind: str) -> list[Any]:
        if kind in _CONTAINERS:
            if len(node) != 2 or not isinstance(node[1], list):
                self.fail(f"{kind!r} takes one list of child indices")
            if kind in ("dict", "OrderedDict") and len(node[1]) % 2:
                self.fail(f"{kind!r} needs an even number of children (key, value)")
            return node[1]
        if kind == "objarray":
            if not (
                len(node) == 4
                and isinstance(node[1], list)
                and len(node[1]) <= 64
                and all(type(d) is int and d >= 0 for d in node[1])
                and node[2] in ("C", "F")
                and isinstance(node[3], list)
            ):
                self.fail("'objarray' takes [shape, 'C' | 'F', [child indices]]")
            if math.prod(d for d in node[1] if d) >= 2**60:  # NumPy's bound
                self.fail(f"bad object array shape {tuple(node[1])} (too big)")
            if math.prod(node[1]) != len(node[3]):
                self.fail(
                    f"shape {tuple(node[1])} does not match its {len(node[3])} elements"
                )
            return node[3]
        self.fail(f"unknown node kind {kind!r:.40}")

    def check_collisions(self, kind: str, keys: list[Any]) -> None:
        """Refuse keys built to collide (hashing each key is linear; only
        inserting colliding keys is quadratic). Raises TypeError for an
        unhashable key, as building the container would."""
        if len(keys) <= MAX_HASH_COLLISIONS:
            return
        counts: dict[int, int] = {}
        for key in keys:
            h = hash(key)
            counts[h] = n = counts.get(h, 0) + 1
            if n > MAX_HASH_COLLISIONS:
                self.fail(
                    f"the {kind} has more than {MAX_HASH_COLLISIONS} keys or "
                    "items with one hash value (a hash-collision attack)"
                )

    # -- pass 1b (scan only): what can be decided without reading values
    def static_check(
        self, nodes: list[Any], values: list[Any], leaf: Callable[[int], Any]
    ) -> None:
        """Decide, without building any container or reading any leaf,
        everything :meth:`build` would refuse: leaf members of the wrong kind
        or shape (`leaf` gives a leaf's ``.npy`` header), unhashable dict
        keys and set items, hash collisions and equal scalar keys."""
        hashable = [True] * len(nodes)
        for i in range(len(nodes) - 1, -1, -1):
            self.node_index = i
            kind = nodes[i][0]
            if kind in _SCALARS:
                hashable[i] = kind != "bytearray"
                continue
            if kind in ("array", "scalar", "dtype"):
                hashable[i] = self.static_leaf(kind, nodes[i][1], leaf)
                continue
            refs = nodes[i][-1]
            if kind in ("tuple", "frozenset"):
                hashable[i] = all(hashable[c] for c in refs)
                if kind == "tuple":
                    continue
            else:  # list, set, dict, OrderedDict, objarray
                hashable[i] = False
                if kind not in ("set", "dict", "OrderedDict"):
                    continue
            keys = refs if kind in ("set", "frozenset") else refs[::2]
            for c in keys:
                if not hashable[c]:
                    self.fail(
                        f"a {kind} key or item is not hashable (node {c} is "
                        f"a {nodes[c][0]})"
                    )
            if all(nodes[c][0] in _SCALARS for c in keys):
                scalars = [values[c] for c in keys]
                self.check_collisions(kind, scalars)
                if len(set(scalars)) != len(scalars):
                    self.fail(f"the {kind} has equal keys or items")

    def static_leaf(self, kind: str, index: int, leaf: Callable[[int], Any]) -> bool:
        header = leaf(index)
        if header.dtype.hasobject:
            self.fail(f"member {self.name}.{index}.npy must be a numeric array")
        if kind == "scalar" and header.shape != ():
            self.fail(f"member {self.name}.{index}.npy of a scalar must be 0-d")
        if kind == "dtype" and header.shape != (0,):
            self.fail(f"member {self.name}.{index}.npy of a dtype must be empty 1-D")
        return kind == "dtype" or (kind == "scalar" and header.dtype.names is None)

    # -- pass 2: values, bottom-up
    def build(self, nodes: list[Any], values: list[Any]) -> Any:
        for i in range(len(nodes) - 1, -1, -1):
            self.node_index = i
            node = nodes[i]
            kind = node[0]
            if kind in _SCALARS:
                continue
            if kind in ("array", "scalar", "dtype"):
                values[i] = self.leaf_value(kind, node[1])
                continue
            refs = node[-1]
            items = [values[c] for c in refs]
            for c in refs:  # each child has exactly one parent: drop it
                values[c] = None
            values[i] = self.container(kind, node, items)
        return values[0]

    def leaf_value(self, kind: str, leaf: int) -> Any:
        arr = self.read(f"{self.name}.{leaf}")
        if type(arr) is not np.ndarray or arr.dtype.hasobject:
            self.fail(
                f"member {self.name}.{leaf}.npy must be a numeric array, "
                f"not {type(arr).__name__}"
            )
        if kind == "array":
            return arr
        if kind == "scalar":
            if arr.ndim != 0:
                self.fail(f"member {self.name}.{leaf}.npy of a scalar must be 0-d")
            return arr[()]
        if arr.shape != (0,):
            self.fail(f"member {self.name}.{leaf}.npy of a dtype must be empty 1-D")
        return arr.dtype

    def container(self, kind: str, node: list[Any], items: list[Any]) -> Any:
        if kind == "list":
            return items
        if kind == "tuple":
            return tuple(items)
        if kind == "objarray":
            flat = np.fromiter(items, dtype=object, count=len(items))
            try:
                out = flat.reshape(node[1])
            except ValueError as err:  # more dimensions than NumPy allows
                self.fail(f"bad object array shape {tuple(node[1])} ({err})")
            return np.asfortranarray(out) if node[2] == "F" else out
        keys = items if kind in ("set", "frozenset") else items[::2]
        try:
            self.check_collisions(kind, keys)
            if kind in ("set", "frozenset"):
                made: Any = set(items) if kind == "set" else frozenset(items)
                expected = len(items)
            else:
                made = dict if kind == "dict" else OrderedDict
                made = made(zip(items[::2], items[1::2], strict=True))
                expected = len(items) // 2
        except TypeError as err:
            self.fail(f"a {kind} key or item is not hashable ({err})")
        if len(made) != expected:
            self.fail(f"the {kind} has equal keys or items")
        return made


def _check_float(dec: _Decoder, x: Any) -> float:
    if type(x) is float and math.isfinite(x):
        return x
    if isinstance(x, str) and _HEX_BITS.match(x):
        value: float = struct.unpack(">d", bytes.fromhex(x))[0]
        if not math.isfinite(value):
            return value
    dec.fail(
        f"a float is a finite JSON number or the 16 hex digits of a non-finite "
        f"one, not {x!r:.40}"
    )


def _check_int(dec: _Decoder, node: list[Any]) -> int:
    x = node[1]
    if type(x) is int and _INT64_MIN <= x <= _INT64_MAX:
        return x
    if isinstance(x, str) and _HEX_INT.match(x):
        value = int(x, 16)
        if not _INT64_MIN <= value <= _INT64_MAX and x == format(value, "x"):
            return value
    dec.fail(
        "an int is a JSON integer within int64 or the canonical hex of a larger "
        f"one, not {x!r:.40}"
    )


def _check_b64(dec: _Decoder, x: Any) -> bytes:
    if isinstance(x, str):
        try:
            return base64.b64decode(x.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            pass
    dec.fail(f"bytes are stored as base64 text, not {x!r:.40}")


def _check_str(dec: _Decoder, x: Any) -> str:
    if not isinstance(x, str):
        dec.fail(f"a string node holds a JSON string, not {x!r:.40}")
    return x


def _check_number(dec: _Decoder, node: list[Any]) -> np.generic:
    dt = _NUMBER_DTYPES.get(node[1]) if isinstance(node[1], str) else None
    if dt is None:
        dec.fail(f"unknown NumPy number type {node[1]!r:.40}")
    raw = node[2]
    if not (isinstance(raw, str) and len(raw) == 2 * dt.itemsize):
        dec.fail(f"a {dt} scalar is {2 * dt.itemsize} hex digits, not {raw!r:.40}")
    try:
        data = bytes.fromhex(raw)
    except ValueError:
        dec.fail(f"a {dt} scalar is hex digits, not {raw!r:.40}")
    value: np.generic = np.frombuffer(data, dtype=dt.newbyteorder("<"))[0]
    return value


def _arity(n: int, check: Callable[[_Decoder, list[Any]], Any]) -> Any:
    def run(dec: _Decoder, node: list[Any]) -> Any:
        if len(node) != n:
            dec.fail(f"{node[0]!r} takes {n - 1} argument(s), got {len(node) - 1}")
        return check(dec, node)

    return run


def _check_bool(dec: _Decoder, node: list[Any]) -> bool:
    if type(node[1]) is not bool:
        dec.fail(f"a bool is true or false, not {node[1]!r:.40}")
    value: bool = node[1]
    return value


#: scalar node kinds → checker returning the value; a closed table
_SCALARS: dict[str, Callable[[_Decoder, list[Any]], Any]] = {
    "none": _arity(1, lambda d, n: None),
    "bool": _arity(2, _check_bool),
    "int": _arity(2, _check_int),
    "float": _arity(2, lambda d, n: _check_float(d, n[1])),
    "complex": _arity(
        3, lambda d, n: complex(_check_float(d, n[1]), _check_float(d, n[2]))
    ),
    "str": _arity(2, lambda d, n: _check_str(d, n[1])),
    "bytes": _arity(2, lambda d, n: _check_b64(d, n[1])),
    "bytearray": _arity(2, lambda d, n: bytearray(_check_b64(d, n[1]))),
    "np.str_": _arity(2, lambda d, n: np.str_(_check_str(d, n[1]))),
    "np.bytes_": _arity(2, lambda d, n: np.bytes_(_check_b64(d, n[1]))),
    "np.number": _arity(3, _check_number),
}


def decode(
    name: str,
    entry: dict[str, Any],
    read: Callable[[str], Any],
    limits: Limits,
    where: str,
) -> Any:
    """Decode the tree `name` of an archive.

    Parameters
    ----------
    name : str
        The tree's name (its members are ``<name>.tree`` and ``<name>.<i>``).
    entry : dict
        Its manifest entry, already checked by :func:`entry_parts`.
    read : callable
        Reads a member by stem (``"x.0"``) and returns what the safe reader
        decodes.
    limits : Limits
        ``max_depth`` and ``max_items`` apply.
    where : str
        Prefix of error messages.

    Raises
    ------
    FormatError, LimitError, UnsafeFileError
        A bad node table or leaf (see the module docstring); a pickled member
        is decoded by the safe reader, so it can at worst be refused.
    """
    where = f"{where}: tree {name!r}"
    dec = _Decoder(name, entry["leaves"], read, limits, where)
    text = _table_text(read(f"{name}.tree"), name, where)
    nodes = dec.parse(text)
    values = dec.structure(nodes)
    return dec.build(nodes, values)


def check_table(
    name: str,
    entry: dict[str, Any],
    table: Any,
    leaf: Callable[[int], Any],
    limits: Limits,
    where: str,
) -> None:
    """Check the tree `name` without decoding it (for ``safenpz scan``).

    Parameters
    ----------
    name, entry, limits, where
        As for :func:`decode`.
    table : numpy.ndarray
        The node table member (what ``<name>.tree.npy`` holds; numeric, so
        reading it decodes nothing).
    leaf : callable
        Leaf index → the parsed ``.npy`` header of member ``<name>.<i>.npy``.

    Raises
    ------
    FormatError, LimitError
        Whatever :func:`decode` would raise for the node table and the leaf
        headers; the leaves' own content is scanned as ordinary members.
    """
    where = f"{where}: tree {name!r}"
    dec = _Decoder(name, entry["leaves"], lambda stem: None, limits, where)
    text = _table_text(table, name, where)
    nodes = dec.parse(text)
    values = dec.structure(nodes)
    dec.static_check(nodes, values, leaf)


def _table_text(raw: Any, name: str, where: str) -> str:
    if not (type(raw) is np.ndarray and raw.dtype == np.uint8 and raw.ndim == 1):
        msg = f"{where}: member {name}.tree.npy must be a 1-D uint8 array of JSON text"
        raise FormatError(msg)
    problem = None
    if raw.size > MAX_TABLE_BYTES:
        problem = f"{raw.size:,} bytes (at most {MAX_TABLE_BYTES:,})"
    else:
        try:
            text = str(np.ascontiguousarray(raw).data, "utf-8")
        except UnicodeDecodeError as err:
            msg = f"{where}: the node table is not UTF-8 ({err})"
            raise FormatError(msg) from err
        problem = table_problem(text)
    if problem is not None:
        msg = (
            f"{where}: the node table has {problem}, more than safenpz.save "
            "ever writes (checked before parsing it). The file was not written "
            "by safenpz.save or has been altered"
        )
        raise FormatError(msg)
    return text
