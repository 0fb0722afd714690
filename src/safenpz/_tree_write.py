"""Writing a tree: plain data to a node table and leaf arrays (the format is
specified in :mod:`safenpz._tree`).

:func:`encode` first counts the value's expanded size (:func:`_measure`,
memoised per object) and refuses one that is too big, then walks it once,
preorder, with an explicit stack. :func:`check_storable_dtype` is the one
test of what ``np.save`` keeps exactly, shared with :func:`safenpz.save`.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np
from numpy.lib import format as npformat

from ._exceptions import LimitError, UnstorableError, Where
from ._tree import (
    INT64_MAX,
    INT64_MIN,
    KIND,
    NUMBER_DTYPES,
    table_excess,
    table_problem,
)

__all__ = [
    "MAX_SAVE_COPY_BYTES",
    "MAX_SAVE_NODES",
    "MAX_SAVE_TEXT",
    "check_storable_dtype",
    "encode",
    "is_tree_value",
]

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
    dt: np.dtype[Any], where: Where, what: str = "it", *, exact_type: bool = True
) -> None:
    """Raise :class:`~safenpz.UnstorableError` unless ``np.save``/``np.load``
    keep `dt` exactly.

    The check is NumPy's own round trip: the ``.npy`` header descr that
    ``np.save`` writes (``dtype_to_descr``), read back as ``np.load`` reads it
    (``descr_to_dtype``), must give the same dtype, metadata, alignment,
    titles and offsets included (and, with `exact_type`, the same scalar
    type: ``np.record`` comes back as ``np.void``).

    The error carries `where` (the array's name as ``member``) and names
    `what` is refused (``"it"``, or a path into the value).

    Examples
    --------
    >>> check_storable_dtype(np.dtype(">i4"), Where(member="x"))
    >>> check_storable_dtype(np.dtype("i4", metadata={"unit": "m"}), Where(member="x"))
    Traceback (most recent call last):
    ...
    safenpz.UnstorableError: member 'x': cannot store it pickle-free: NumPy's .npy ...
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
            f"cannot store {what} pickle-free: {problem}; convert it to a "
            "plain dtype first (e.g. arr.astype(np.dtype(arr.dtype.descr)))"
        )
        raise UnstorableError(msg, where=where)


def is_tree_value(value: Any) -> bool:
    """Whether `value` is plain data that only a tree can store exactly.

    True for Python scalars, strings, bytes and containers and for NumPy
    scalars and dtypes; arrays are dispatched by :func:`safenpz.save` itself.
    """
    tp = type(value)
    if tp is np.ndarray:
        return False
    return tp in _ENCODERS or isinstance(value, np.generic | np.dtype)


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
    def __init__(self, where: Where) -> None:
        self.where = where
        self.nodes: list[list[Any]] = []
        self.leaves: list[np.ndarray[Any, Any]] = []

    def fail(self, path: _Path, msg: str) -> NoReturn:
        text = f"cannot store it pickle-free: {_render(path)} {msg}"
        raise UnstorableError(text, where=self.where)

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
        if NUMBER_DTYPES.get(dt.char) == dt:
            sized = f"{dt.kind}{dt.itemsize}"
            code = sized if NUMBER_DTYPES[sized].type is type(item) else dt.char
            raw = np.asarray(item).astype(dt.newbyteorder("<")).tobytes()
            return ["np.number", code, raw.hex()]
        check_storable_dtype(dt, self.where, _render(path))
        return ["scalar", self.leaf(np.asarray(item))]

    def dtype(self, dt: np.dtype[Any], path: _Path) -> list[Any]:
        check_storable_dtype(dt, self.where, _render(path))  # refuses sub-arrays too
        return ["dtype", self.leaf(np.empty(0, dt))]

    def array(
        self, arr: np.ndarray[Any, Any], path: _Path
    ) -> tuple[list[Any], list[Any], _Step]:
        if arr.dtype != object:
            check_storable_dtype(arr.dtype, self.where, _render(path))
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
    if INT64_MIN <= x <= INT64_MAX:
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
    if isinstance(item, np.generic) and NUMBER_DTYPES.get(item.dtype.char) == (
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


def _too_big(
    where: Where, what: str, hint: str, excess: tuple[str, int, int]
) -> NoReturn:
    limit, value, maximum = excess
    msg = (
        f"cannot store it pickle-free: the value {what} once shared "
        "references are expanded (a tree stores each reference as a copy). "
        f"Nothing was written; {hint}"
    )
    raise LimitError(msg, where=where, limit=limit, value=value, maximum=maximum)


def _check_size(size: _Size, where: Where) -> None:
    nodes, text, _ = size
    if nodes > MAX_SAVE_NODES:
        _too_big(
            where,
            f"has more than {MAX_SAVE_NODES:,} nodes",
            "store large numeric content as arrays or RaggedArrays, or split "
            "the value into several names",
            ("MAX_SAVE_NODES", nodes, MAX_SAVE_NODES),
        )
    if text > MAX_SAVE_TEXT:
        _too_big(
            where,
            f"holds more than {MAX_SAVE_TEXT:,} characters of strings and bytes",
            "store large strings or bytes as arrays (np.frombuffer), or split "
            "the value into several names",
            ("MAX_SAVE_TEXT", text, MAX_SAVE_TEXT),
        )


def _measure(value: Any, name: str) -> _Size:
    """Refuse `value` (to be stored as `name`) if its tree would be too big,
    before building any of it.

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
    where = Where(member=name)
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
                    "cannot store it pickle-free: the value contains itself (a "
                    "container holds a reference to itself or to a container "
                    "around it)"
                )
                raise UnstorableError(msg, where=where)
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
            ("MAX_SAVE_COPY_BYTES", copies, MAX_SAVE_COPY_BYTES),
        )
    return sizes[id(value)]


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
    where = Where(member=name)
    _measure(value, name)
    enc = _Encoder(where)
    enc.run(value)
    text = json.dumps(enc.nodes, separators=(",", ":"), allow_nan=False)
    excess = table_excess(text)
    if excess is not None:
        msg = (
            f"cannot store it pickle-free: its node table would take "
            f"{table_problem(text)}, more than safenpz.load reads. Nothing was "
            "written; store large numeric content as arrays or RaggedArrays, "
            "or split the value into several names"
        )
        limit, count, maximum = excess
        raise LimitError(msg, where=where, limit=limit, value=count, maximum=maximum)
    members = {f"{name}.tree": np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}
    for i, arr in enumerate(enc.leaves):
        members[f"{name}.{i}"] = arr
    return {"kind": KIND, "leaves": len(enc.leaves)}, members
