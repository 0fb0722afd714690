"""Reading a tree: a node table and its leaves back to plain data (the format
is specified in :mod:`safenpz._tree`).

The node table is hostile input. :func:`decode` reads it in passes over the
node list, none recursive: the structure (kinds, arity, argument types, child
indices, each node referred to once by an earlier node, depth, scalar
values), then the containers and leaves bottom-up. :func:`check_table` (for
``safenpz scan``) runs the first pass and then decides statically what the
second would refuse, reading no leaf.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np

from ._exceptions import FormatError, Where
from ._limits import Limits
from ._tree import (
    CONTAINERS,
    HEX_BITS,
    HEX_INT,
    INT64_MAX,
    INT64_MIN,
    MAX_HASH_COLLISIONS,
    NUMBER_DTYPES,
    table_text,
)

__all__ = ["check_table", "decode"]


class _Decoder:
    def __init__(
        self,
        name: str,
        leaves: int,
        read: Callable[[str], Any],
        limits: Limits,
        where: Where,
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
            f"node {self.node_index}: {msg}. The file was not written by "
            "safenpz.save or has been altered; re-create it from the original "
            "data"
        )
        raise FormatError(text, where=self.where)

    # -- pass 1: structure
    def parse(self, text: str) -> list[Any]:
        def no_constant(token: str) -> NoReturn:
            msg = f"the node table holds {token}, which JSON does not allow"
            raise FormatError(msg, where=self.where)

        try:
            nodes = json.loads(text, parse_constant=no_constant)
        except (ValueError, RecursionError) as err:
            if isinstance(err, FormatError):
                raise
            msg = f"the node table is not valid JSON ({err})"
            raise FormatError(msg, where=self.where) from err
        if not isinstance(nodes, list) or not nodes:
            msg = "the node table must be a non-empty JSON array"
            raise FormatError(msg, where=self.where)
        self.limits.check("max_items", len(nodes), self.where, what="nodes")
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
                    "max_depth", depth[i], self.where, what="containers nested"
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
                f"member {self.name}.{missing}.npy is not referred to by any "
                "node. The file was not written by safenpz.save or has been "
                "altered"
            )
            raise FormatError(msg, where=self.where)
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
        if kind in CONTAINERS:
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
    if isinstance(x, str) and HEX_BITS.match(x):
        value: float = struct.unpack(">d", bytes.fromhex(x))[0]
        if not math.isfinite(value):
            return value
    dec.fail(
        f"a float is a finite JSON number or the 16 hex digits of a non-finite "
        f"one, not {x!r:.40}"
    )


def _check_int(dec: _Decoder, node: list[Any]) -> int:
    x = node[1]
    if type(x) is int and INT64_MIN <= x <= INT64_MAX:
        return x
    if isinstance(x, str) and HEX_INT.match(x):
        value = int(x, 16)
        if not INT64_MIN <= value <= INT64_MAX and x == format(value, "x"):
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
    dt = NUMBER_DTYPES.get(node[1]) if isinstance(node[1], str) else None
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
    where: Where,
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
    where : Where
        The archive (``source``); errors about the node table carry it with
        ``member`` ``<name>.tree.npy``.

    Raises
    ------
    FormatError, LimitError, UnsafeFileError
        A bad node table or leaf (see the module docstring); a pickled member
        is decoded by the safe reader, so it can at worst be refused.
    """
    where = where.but(member=f"{name}.tree.npy")
    dec = _Decoder(name, entry["leaves"], read, limits, where)
    text = table_text(read(f"{name}.tree"), where)
    nodes = dec.parse(text)
    values = dec.structure(nodes)
    return dec.build(nodes, values)


def check_table(
    name: str,
    entry: dict[str, Any],
    table: Any,
    leaf: Callable[[int], Any],
    limits: Limits,
    where: Where,
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
    where = where.but(member=f"{name}.tree.npy")
    dec = _Decoder(name, entry["leaves"], lambda stem: None, limits, where)
    text = table_text(table, where)
    nodes = dec.parse(text)
    values = dec.structure(nodes)
    dec.static_check(nodes, values, leaf)
