"""``REDUCE`` and ``BUILD`` in the scanner: the decoder's checks, statically.

``REDUCE`` calls an allowed global with a tuple of arguments; ``BUILD``
finishes what ``_reconstruct`` or ``numpy.dtype`` made. The decoder checks
both with the shared functions of :mod:`safenpz._pickle._rules` (and
:mod:`safenpz._pickle._dtype_rules`); the scanner calls the same functions
on the values it reads from the stream (:class:`~safenpz._pickle._static.Values`)
and refuses, at the opcode, what the decoder would refuse:

* ``REDUCE`` of anything but an allowed global, or with arguments that are
  not a tuple, or that the constructor refuses (their number, types and
  values; a dtype argument must be a dtype ``BUILD`` has finished);
* ``BUILD`` of an array or a dtype with a state the decoder refuses, or a
  second time; ``BUILD`` of a finished NumPy value (a scalar, an array from
  ``_frombuffer``); ``BUILD`` with a state other than ``None`` of anything
  else (the unpickler would set attributes: the decoder refuses them, or the
  object has none; refused here whatever the object, a conservative rule no
  pickler breaks).

Every argument the scanner reads is a literal or was made from literals by
another constructor it has checked, so it knows them all; the one thing it
decides without the decoder's objects is what the final walk will meet,
checked at ``STOP`` by :func:`check_walk`.
"""

from __future__ import annotations

from collections.abc import Callable

from ._dtype_rules import dtype_from_state
from ._hashing import stored
from ._rules import (
    Blob,
    Checked,
    Ref,
    Refused,
    array_head,
    as_bytes,
    byte_length,
    bytearray_args,
    bytes_args,
    check_arity,
    check_shape,
    complex_value,
    data_size,
    dtype_args,
    encode_args,
    frombuffer_check,
    iterable_arg,
    object_items,
    ordereddict_args,
    preview,
    reconstruct_args,
    scalar_dtype,
    scalar_size,
    structured_rows,
    unbuilt,
    zero_width,
)
from ._static import RECORDED, Values, expand, length, refused
from ._values import LEAF, Glob, Lst, Made, Node, StackError, Tup

__all__ = ["build", "check_walk", "reduce"]

#: What a ``REDUCE`` of each role makes: (values, global, args, their items).
_Maker = Callable[[Values, Glob, Tup, list[object]], Node]


def reduce(values: Values, fn: object, args: object) -> Node:
    """The value ``REDUCE`` pushes for ``fn(*args)``, refused as the decoder
    would refuse the call."""
    kids = [args] if isinstance(args, Node) else []
    if fn is LEAF:  # made by an opcode refused already (report mode goes on)
        return Node(kids, "object")
    if type(fn) is not Glob:
        msg = f"REDUCE calls a {values.kind(fn)}, which is not callable"
        raise StackError(msg)
    assert isinstance(fn, Glob)
    if fn.role == "?":  # refused already (report mode goes on)
        return Node(kids, "object")
    if type(args) is not Tup:
        msg = f"REDUCE needs a tuple of arguments, got a {values.kind(args)}"
        raise StackError(msg)
    assert isinstance(args, Tup)
    items = expand(values.buf, args.src)
    if any(_refused_already(i) for i in items):  # report mode goes on
        return Node(kids, "object")
    try:
        if fn.role == "ndarray":
            msg_0 = f"{fn.qualname} may not be called"
            raise Refused(msg_0)
        check_arity(fn.role, fn.qualname, len(items))
        return _MAKERS[fn.role](values, fn, args, items)
    except Refused as err:
        raise refused(err) from None


def _refused_already(item: object) -> bool:
    """A value of an opcode or a global refused already (report mode): no
    check of what it is given to would say more."""
    return item is LEAF or (type(item) is Glob and item.role == "?")


def _made(role: str, val: object, args: Tup) -> Made:
    """What a constructor made (`val`: its value; None: a stand-in for the
    decoder's object, made when an argument needs it)."""
    return Made(role, val, [args])


def _reconstruct(values: Values, fn: Glob, args: Tup, items: list[object]) -> Node:
    cls, shape, code = items
    is_ndarray = type(cls) is Glob and cls.role == "ndarray"
    reconstruct_args(is_ndarray, values.arg(shape), values.arg(code))
    return _made("array", None, args)


def _dtype(values: Values, fn: Glob, args: Tup, items: list[object]) -> Node:
    made = _made("dtype", None, args)
    made.raw = dtype_args(*[values.arg(i) for i in items])
    return made


def _scalar(values: Values, fn: Glob, args: Tup, items: list[object]) -> Node:
    dt = values.dtype(items[0])
    scalar_dtype(dt)
    data = items[1] if len(items) > 1 else None
    scalar_size(dt, values.size(data, "scalar data"))
    made = _made("scalar", None, args)
    made.dtype, made.raw = dt, data  # the data is read if a key needs it
    return made


def _frombuffer(values: Values, fn: Glob, args: Tup, items: list[object]) -> Node:
    size = values.size(items[0], "array buffer")
    dt = values.dtype(items[1])
    shape = check_shape(values.arg(items[2]))
    frombuffer_check(dt, shape, values.arg(items[3]), size)
    made = _made("frombuffer", None, args)
    made.dtype, made.shape, made.built = dt, shape, True
    return made


#: bytes made by a constructor are kept up to this length (beyond: a Blob,
#: their type and length, all any check needs of them).
_KEPT = 256


def _bytes_made(role: str, args: Tup, text: object) -> Made:
    """bytes (or a bytearray) made from `text` (latin-1, already allowed)."""
    what = "bytes literal" if role == "bytes" else f"{role}() text"
    if isinstance(text, Blob):
        value: object = Blob(role, byte_length(text, what))
    else:
        raw = as_bytes(text, what)
        if len(raw) > _KEPT:
            value = Blob(role, len(raw))
        else:
            value = raw if role == "bytes" else bytearray(raw)
    return _made(role, value, args)


def _encode(values: Values, fn: Glob, args: Tup, items: list[object]) -> Node:
    vals = [values.data(i) for i in items]
    encode_args(*vals)
    return _bytes_made("bytes", args, vals[0])


def _bytes(values: Values, fn: Glob, args: Tup, items: list[object]) -> Node:
    vals = tuple(values.data(i) for i in items)
    if fn.role == "bytes":
        bytes_args(vals)
    else:
        bytearray_args(vals)
    return _bytes_made(fn.role, args, vals[0] if vals else b"")


def _complex(values: Values, fn: Glob, args: Tup, items: list[object]) -> Node:
    return _made("complex", complex_value(*[values.arg(i) for i in items]), args)


def _odict(values: Values, fn: Glob, args: Tup, items: list[object]) -> Node:
    ordereddict_args(tuple(Ref(values.kind(i)) for i in items))
    return Node([args], "OrderedDict")


def _set(values: Values, fn: Glob, args: Tup, items: list[object]) -> Node:
    """``set(x)``/``frozenset(x)``: the hashing of x's items is checked by
    the stack (:meth:`~safenpz._pickle._stack.Stack.reduce`)."""
    iterable_arg(tuple(Ref(values.kind(i)) for i in items), fn.role)
    node = Node([args], fn.role)
    node.items = None
    if items:
        src = items[0].src  # type: ignore[attr-defined]
        node.n = length(values.buf, src)
        if fn.role == "frozenset" and node.n <= RECORDED:
            node.items = list(src)
    else:
        node.items = []
    return node


_MAKERS: dict[str, _Maker] = {
    "reconstruct": _reconstruct,
    "dtype": _dtype,
    "scalar": _scalar,
    "frombuffer": _frombuffer,
    "encode": _encode,
    "bytes": _bytes,
    "bytearray": _bytes,
    "complex": _complex,
    "odict": _odict,
    "set": _set,
    "frozenset": _set,
}


# --------------------------------------------------------------------------
# BUILD


def build(values: Values, target: object, state: object, max_items: int) -> None:
    """``BUILD`` of `target` with `state`, refused as the decoder would."""
    if _refused_already(target) or _refused_already(state):
        return
    if type(target) is Made:
        assert isinstance(target, Made)
        try:
            if target.role == "array":
                _build_array(values, target, state, max_items)
                return
            if target.role == "dtype":
                _build_dtype(values, target, state)
                return
            if target.role in ("scalar", "frombuffer"):
                msg = "unexpected BUILD on a finished value"
                raise Refused(msg)
        except Refused as err:
            raise refused(err) from None
    if not values.is_none(state):
        kind = values.kind(target)
        article = "an" if kind[0] in "AEIOUaeiou" else "a"
        msg = (
            f"BUILD with the state {preview(values.arg(state))} would set "
            f"attributes on {article} {kind}: only arrays and dtypes are built"
        )
        raise StackError(msg)


def _build_dtype(values: Values, made: Made, state: object) -> None:
    if made.built:
        msg = "a dtype was built twice"
        raise Refused(msg)
    assert isinstance(made.raw, str)
    made.dtype = dtype_from_state(made.raw, values.arg(state), values.resolve)
    made.built = True


def _build_array(values: Values, made: Made, state: object, max_items: int) -> None:
    if made.built:
        msg = "an array was built twice"
        raise Refused(msg)
    data = None
    if type(state) is Tup:
        assert isinstance(state, Tup)
        items = expand(values.buf, state.src)
        if len(items) in (4, 5):  # the data is read by its kind and length
            data = items[-1]
            head = tuple(values.arg(i) for i in items[:-1])
            checked, _ = array_head((*head, None), values.resolve)
        else:
            checked, _ = array_head(values.arg(state), values.resolve)
    else:
        checked, _ = array_head(values.arg(state), values.resolve)
    if checked[2].hasobject:
        _object_data(values, checked, data, max_items)
        assert isinstance(data, Lst)
        if checked[2].names is not None:
            structured_rows(checked[2], (values.walked(i) for i in data.src))
        data.frozen = True
        made.data = data
    else:
        zero_width(checked, max_items)
        data_size(checked, values.size(data, "array data"))
    made.shape, made.dtype, made.built = checked[1], checked[2], True


def _object_data(
    values: Values, checked: Checked, data: object, max_items: int
) -> None:
    """An object array's data: a list of the right length (of the right
    tuples, for a structured dtype)."""
    src = data.src if isinstance(data, Lst) else []
    size = length(values.buf, src) if isinstance(data, Lst) else None

    def rows(k: int) -> bool:
        return all(type(i) is Tup and length(values.buf, i.src) == k for i in src)

    object_items(checked, max_items, Ref(values.kind(data)), size, rows)


# --------------------------------------------------------------------------
# what the final walk meets


def _walk_kids(node: Node) -> list[Node]:
    """The containers the final walk visits below `node`: nothing below a
    value a constructor made but an object array's items (the items of its
    list: the list itself is walked only if something else holds it), a
    container's own items (its ``kids``; those of a ``set(x)`` lead to x's
    items)."""
    if type(node) is Made:
        assert isinstance(node, Made)
        return node.data.kids if node.data is not None else []
    return node.kids


def _size(values: Values, node: Node) -> int:
    """How many values the final walk counts for `node` (items put into a
    dict or set count once each, even when some keys are equal)."""
    if type(node) is Lst or type(node) is Tup:
        return length(values.buf, node.src)
    if type(node) is Made:
        assert isinstance(node, Made)
        return length(values.buf, node.data.src) if node.data is not None else 0
    return node.n // 2 if node.kind in ("dict", "OrderedDict") else node.n


def check_walk(values: Values, root: object, max_items: int, count: bool) -> None:
    """Refuse what the decoder's final walk would refuse in what `root` holds:
    a global stored as a value, a key that becomes an array, an array or a
    dtype never finished by ``BUILD``, and (`count`) more than `max_items`
    values in the containers it visits. Iterative, linear in the containers
    reachable from `root`."""
    if type(root) is Glob:
        assert isinstance(root, Glob)
        raise StackError(stored(root.qualname))
    if not isinstance(root, Node):
        return
    seen = {id(root)}
    todo: list[Node] = [root]
    total = 0
    while todo:
        node = todo.pop()
        _refuse_walked(node)
        if count:
            total += _size(values, node)
            if total > max_items:
                msg = (
                    f"the pickle holds more than max_items={max_items} values; "
                    "pass a larger max_items to load it"
                )
                raise StackError(
                    msg, "limit", limit="max_items", value=total, maximum=max_items
                )
        for kid in _walk_kids(node):
            if id(kid) not in seen:
                seen.add(id(kid))
                todo.append(kid)


def _refuse_walked(node: Node) -> None:
    """What the walk refuses on reaching `node` itself."""
    if node.bad is not None:
        raise StackError(node.bad)
    if type(node) is Made:
        assert isinstance(node, Made)
        if not node.built:
            raise refused(unbuilt("array" if node.role == "array" else "dtype"))
        if node.data is not None and node.data.bad is not None:
            raise StackError(node.data.bad)
