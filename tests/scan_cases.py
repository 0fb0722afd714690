"""Generated streams for the scan-agrees-with-load tests (issue 8).

Small malformed pickles, built as mutations of valid ones: every allowed
constructor called with arguments of every kind (numbers at the edges, text,
bytes, containers, finished and unfinished dtypes and arrays, globals, ...),
``BUILD`` of every kind of target with every kind of state (and the dtype and
ndarray states NumPy writes, one part at a time replaced), keys and set items
of every kind, the item opcodes on every kind of target, protocol 0 text, and
values a final walk would refuse. :func:`generated` yields ``(label, bytes)``
pairs, deterministically from a seed. Nothing here imports safenpz: the
streams are bytes, the verdicts the tests' business.
"""

from __future__ import annotations

import pickletools
import random
import struct
from collections.abc import Callable, Iterator

from hostile import (
    BUILD,
    EMPTY_DICT,
    EMPTY_TUPLE,
    MARK,
    NEWFALSE,
    NEWTRUE,
    NONE,
    REDUCE,
    binstr,
    bstr,
    call,
    glob,
    intop,
    lst,
    stream,
    tup,
    ustr,
)

__all__ = ["FAMILIES", "GLOBALS", "POOL", "STATES", "generated", "mutated", "unframed"]

GLOBALS: dict[str, bytes] = {
    "reconstruct": glob("numpy.core.multiarray", "_reconstruct"),
    "scalar": glob("numpy._core.multiarray", "scalar"),
    "frombuffer": glob("numpy._core.numeric", "_frombuffer"),
    "ndarray": glob("numpy", "ndarray"),
    "dtype": glob("numpy", "dtype"),
    "encode": glob("_codecs", "encode"),
    "bytes": glob("builtins", "bytes"),
    "bytearray": glob("__builtin__", "bytearray"),
    "set": glob("builtins", "set"),
    "frozenset": glob("builtins", "frozenset"),
    "complex": glob("builtins", "complex"),
    "odict": glob("collections", "OrderedDict"),
}
_FLAGS = NEWFALSE + NEWTRUE


def _float(x: float) -> bytes:
    return b"G" + struct.pack(">d", x)


def _long4(value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8b" + struct.pack("<i", len(raw)) + raw


def dstate(
    endian: bytes = ustr("<"),
    version: bytes = intop(3),
    subdescr: bytes = NONE,
    names: bytes = NONE,
    fields: bytes = NONE,
    elsize: bytes = intop(-1),
    extra: tuple[bytes, ...] = (),
) -> bytes:
    """A dtype BUILD state."""
    return tup(
        version, endian, subdescr, names, fields, elsize, intop(-1), intop(0), *extra
    )


def dtype(code: str = "f8", state: bytes | None = None) -> bytes:
    """``numpy.dtype(code, False, True)`` + ``BUILD state``."""
    return call(GLOBALS["dtype"], ustr(code), _FLAGS) + (state or dstate()) + BUILD


def new_array() -> bytes:
    return call(GLOBALS["reconstruct"], GLOBALS["ndarray"], tup(intop(0)), bstr(b"b"))


def astate(
    shape: bytes = tup(intop(2)),
    dt: bytes | None = None,
    data: bytes = bstr(bytes(16)),
    version: bytes = intop(1),
    fortran: bytes = NEWFALSE,
) -> bytes:
    """An ndarray BUILD state (default: two float64 zeros)."""
    return tup(version, shape, dtype() if dt is None else dt, fortran, data)


def array(state: bytes | None = None) -> bytes:
    return new_array() + (state or astate()) + BUILD


_OBJ = dtype("O8", dstate(endian=ustr("|")))
_META = (tup(NONE, tup(bstr(b"s"), intop(1), intop(1), intop(1))),)
_STRUCT_FIELDS = EMPTY_DICT + MARK + ustr("a") + tup(dtype("i4"), intop(0)) + b"u"

#: One push each, of every kind the checks care about.
POOL: dict[str, bytes] = {
    "int0": intop(0),
    "int1": intop(1),
    "int-1": intop(-1),
    "int2": intop(2),
    "int98": intop(98),
    "int2**62": intop(2**62),
    "int10**400": _long4(10**400),
    "float": _float(1.5),
    "float0": _float(0.0),
    "none": NONE,
    "true": NEWTRUE,
    "false": NEWFALSE,
    "str-b": ustr("b"),
    "str-C": ustr("C"),
    "str-latin1": ustr("latin1"),
    "str-f8": ustr("f8"),
    "str-O8": ustr("O8"),
    "str-<": ustr("<"),
    "str-euro": ustr("\u20ac"),
    "str-long": ustr("x" * 300),
    "py2-b": binstr(b"b"),
    "py2-hi": binstr(b"\xe9"),
    "bytes-b": bstr(b"b"),
    "bytes-8": bstr(bytes(8)),
    "bytes-16": bstr(bytes(16)),
    "bytearray": b"\x96" + struct.pack("<Q", 1) + b"b",
    "tuple()": EMPTY_TUPLE,
    "tuple(0,)": tup(intop(0)),
    "tuple(2,)": tup(intop(2)),
    "tuple(1,2)": tup(intop(1), intop(2)),
    "tuple(list)": tup(b"]"),
    "tuple(global)": tup(GLOBALS["dtype"]),
    "tuple(array)": tup(array()),
    "list": b"]",
    "list(1)": lst(intop(1)),
    "list(2)": lst(intop(2)),
    "list(tuple)": lst(tup(intop(1), intop(2))),
    "dict": EMPTY_DICT,
    "dict(str)": EMPTY_DICT + ustr("k") + intop(1) + b"s",
    "set": b"\x8f",
    "frozenset": MARK + intop(1) + b"\x91",
    "complex": call(GLOBALS["complex"], _float(1.5)),
    "odict": call(GLOBALS["odict"]),
    "bytes()": call(GLOBALS["bytes"]),
    "encoded": call(GLOBALS["encode"], ustr("b"), ustr("latin1")),
    "dtype-f8": dtype(),
    "dtype-O": _OBJ,
    "dtype-V8": dtype(
        "V8",
        dstate(ustr("|"), names=tup(ustr("a")), fields=_STRUCT_FIELDS, elsize=intop(8)),
    ),
    "dtype-M8": dtype("M8", dstate(version=intop(4), extra=_META)),
    "dtype-unbuilt": call(GLOBALS["dtype"], ustr("f8"), _FLAGS),
    "array": array(),
    "array-object": array(astate(dt=_OBJ, data=lst(intop(1), intop(2)))),
    "array-unbuilt": new_array(),
    "frombuffer": call(
        GLOBALS["frombuffer"], bstr(bytes(16)), dtype(), tup(intop(2)), ustr("C")
    ),
    "scalar-f8": call(GLOBALS["scalar"], dtype(), bstr(bytes(8))),
    "scalar-V4": call(
        GLOBALS["scalar"], dtype("V4", dstate(ustr("|"))), bstr(bytes(4))
    ),
    "global-dtype": GLOBALS["dtype"],
    "global-ndarray": GLOBALS["ndarray"],
    "global-set": GLOBALS["set"],
    "text-INT": b"I5\n",
    "text-INT-octal": b"I017\n",
    "text-INT-bad": b"I08\n",
    "text-LONG-bad": b"L017\n",
    "text-FLOAT-inf": b"Finf\n",
    "text-FLOAT-bad": b"F1e999\n",
    "text-STRING": b"S'ab'\n",
    "text-STRING-bad": b"Sab\n",
    "text-UNICODE": b"Vab\n",
    "text-UNICODE-bad": b"V\\u12\n",
    "utf8-bad": b"\x8c\x01\xff",
}

#: BUILD states NumPy writes, and one part at a time replaced.
STATES: dict[str, bytes] = {
    "array-ok": astate(),
    "array-v0": tup(tup(intop(2)), dtype(), intop(0), bstr(bytes(16))),
    "array-short": astate(data=bstr(bytes(15))),
    "array-shape-list": astate(shape=lst(intop(2))),
    "array-shape-neg": astate(shape=tup(intop(-1))),
    "array-version-2": astate(version=intop(2)),
    "array-dtype-unbuilt": astate(dt=call(GLOBALS["dtype"], ustr("f8"), _FLAGS)),
    "array-fortran-float": astate(fortran=_float(0.0)),
    "array-data-str": astate(data=ustr("\x00" * 16)),
    "array-data-euro": astate(data=ustr("\u20ac" * 8)),
    "array-data-py2": astate(data=binstr(bytes(16))),
    "array-data-encoded": astate(
        data=call(GLOBALS["encode"], ustr("\x00" * 16), ustr("latin1"))
    ),
    "array-object": astate(dt=_OBJ, data=lst(intop(1), intop(2))),
    "array-object-short": astate(dt=_OBJ, data=lst(intop(1))),
    "array-object-tuple": astate(dt=_OBJ, data=tup(intop(1), intop(2))),
    "array-S0": astate(dt=dtype("S0", dstate(ustr("|"))), data=bstr(b"")),
    "dtype-ok": dstate(),
    "dtype-v1": tup(intop(1), ustr(">"), NONE, NONE, NONE, intop(-1), intop(-1)),
    "dtype-endian-x": dstate(endian=ustr("x")),
    "dtype-elsize-float": dstate(elsize=_float(8.0)),
    "dtype-names-list": dstate(names=lst(ustr("a"))),
    "dtype-sub": dstate(subdescr=tup(dtype("i4"), tup(intop(2)))),
    "dtype-sub-bad": dstate(subdescr=tup(ustr("i4"), tup(intop(2)))),
    "dtype-meta": dstate(
        version=intop(4), extra=(EMPTY_DICT + ustr("k") + lst(intop(1)) + b"s",)
    ),
    "dtype-meta-bad": dstate(
        version=intop(4), extra=(EMPTY_DICT + ustr("k") + lst(lst()) + b"s",)
    ),
    "attrs": EMPTY_DICT + ustr("x") + intop(1) + b"s",
    "slots": tup(NONE, EMPTY_DICT + ustr("x") + intop(1) + b"s"),
    "none": NONE,
}

_Case = Callable[[random.Random], tuple[str, bytes]]


def _pick(rng: random.Random) -> tuple[str, bytes]:
    key = rng.choice(sorted(POOL))
    return key, POOL[key]


def _call(rng: random.Random) -> tuple[str, bytes]:
    name = rng.choice(sorted(GLOBALS))
    args = [_pick(rng) for _ in range(rng.randrange(5))]
    label = f"call {name}({', '.join(k for k, _ in args)})"
    return label, stream(call(GLOBALS[name], *(v for _, v in args)))


def _build(rng: random.Random) -> tuple[str, bytes]:
    target, tbody = _pick(rng)
    if rng.random() < 0.5:
        state = rng.choice(sorted(STATES))
        sbody = STATES[state]
    else:
        state, sbody = _pick(rng)
    return f"build {target} <- {state}", stream(tbody + sbody + BUILD)


def _key(rng: random.Random) -> tuple[str, bytes]:
    key, body = _pick(rng)
    how = rng.choice(["setitem", "setitems", "dict", "additems", "frozenset", "set()"])
    forms = {
        "setitem": EMPTY_DICT + body + NONE + b"s",
        "setitems": EMPTY_DICT + MARK + intop(1) + NONE + body + NONE + b"u",
        "dict": MARK + body + NONE + b"d",
        "additems": b"\x8f" + MARK + body + b"\x90",
        "frozenset": MARK + body + b"\x91",
        "set()": call(GLOBALS["set"], lst(body)),
    }
    wrap = rng.choice([lambda b: b, lambda b: lst(b), lambda b: b + b"0" + NONE])
    return f"{how} key {key}", stream(wrap(forms[how]), 4)


def _tuple_key(rng: random.Random) -> tuple[str, bytes]:
    key, body = _pick(rng)
    return f"tuple key ({key},)", stream(EMPTY_DICT + tup(intop(1), body) + NONE + b"s")


def _target(rng: random.Random) -> tuple[str, bytes]:
    target, body = _pick(rng)
    op = rng.choice(
        ["append", "appends", "appends-empty", "setitem", "setitems", "additems"]
    )
    forms = {
        "append": intop(1) + b"a",
        "appends": MARK + intop(1) + intop(2) + b"e",
        "appends-empty": MARK + b"e",
        "setitem": intop(0) + intop(5) + b"s",
        "setitems": MARK + intop(0) + intop(5) + b"u",
        "additems": MARK + intop(1) + b"\x90",
    }
    return f"{op} on {target}", stream(body + forms[op], 4)


def _reduce_of(rng: random.Random) -> tuple[str, bytes]:
    fn, body = _pick(rng)
    args, abody = _pick(rng)
    return f"reduce {fn}({args})", stream(body + abody + REDUCE)


def _stored(rng: random.Random) -> tuple[str, bytes]:
    value, body = _pick(rng)
    how = rng.choice(["top", "list", "tuple", "dict-value", "popped", "object-array"])
    forms = {
        "top": body,
        "list": lst(body),
        "tuple": tup(body),
        "dict-value": EMPTY_DICT + ustr("k") + body + b"s",
        "popped": body + b"0" + NONE,
        "object-array": array(astate(dt=_OBJ, shape=tup(intop(1)), data=lst(body))),
    }
    return f"{how} holds {value}", stream(forms[how])


def _odd(rng: random.Random) -> tuple[str, bytes]:
    n = rng.randrange(6)
    items = b"".join(intop(i) for i in range(n))
    form = rng.choice([MARK + items + b"d", EMPTY_DICT + MARK + items + b"u"])
    return f"{n} items for a dict", stream(form)


def _late_append(rng: random.Random) -> tuple[str, bytes]:
    """An object array's item list, changed after BUILD."""
    data = lst(intop(1), intop(2))
    body = (
        new_array()
        + tup(intop(1), tup(intop(2)), _OBJ, NEWFALSE, data[:1] + b"q\x09" + data[1:])
        + BUILD
    )
    tail = rng.choice([b"h\x09" + intop(3) + b"a0", b"h\x09" + MARK + b"e0", b""])
    return f"late append {tail!r}", stream(body + tail)


FAMILIES: dict[str, _Case] = {
    "call": _call,
    "build": _build,
    "key": _key,
    "tuple-key": _tuple_key,
    "target": _target,
    "reduce": _reduce_of,
    "stored": _stored,
    "odd": _odd,
    "late-append": _late_append,
}


def generated(family: str, count: int, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """`count` streams of one family (:data:`FAMILIES`), deterministic."""
    rng = random.Random(f"{family}-{seed}")
    make = FAMILIES[family]
    for _ in range(count):
        yield make(rng)


# --------------------------------------------------------------------------
# mutations of valid streams


def unframed(data: bytes) -> bytes:
    """`data` without its FRAME opcodes (so pushes can change size)."""
    out, pos = bytearray(), 0
    for op, _, at in pickletools.genops(data):
        if op.name == "FRAME":
            assert at is not None
            out += data[pos:at]
            pos = at + 9
    return bytes(out + data[pos:])


def _spans(data: bytes) -> list[tuple[str, int, int]]:
    """``(opcode name, start, end)`` of every opcode of `data`."""
    ops = [(op.name, at) for op, _, at in pickletools.genops(data)]
    ends = [at for _, at in ops[1:]] + [len(data)]
    return [(name, at, end) for (name, at), end in zip(ops, ends, strict=True)]  # type: ignore[misc]


_PUSHES = {
    op.name
    for op in pickletools.opcodes
    if not op.stack_before and len(op.stack_after) == 1 and op.name != "MARK"
}


def mutated(
    seeds: dict[str, bytes], count: int, seed: int = 0
) -> Iterator[tuple[str, bytes]]:
    """`count` mutations of the `seeds` (unframed): one push replaced by a
    push of :data:`POOL`, or one opcode dropped or doubled."""
    rng = random.Random(f"mutated-{seed}")
    names = sorted(seeds)
    pool = sorted(POOL)
    for _ in range(count):
        name = rng.choice(names)
        data = unframed(seeds[name])
        spans = _spans(data)
        pushes = [s for s in spans if s[0] in _PUSHES]
        what = rng.random()
        if what < 0.7 and pushes:
            op, start, end = rng.choice(pushes)
            key = rng.choice(pool)
            yield (
                f"{name}: {op}@{start} -> {key}",
                data[:start] + POOL[key] + data[end:],
            )
        else:
            op, start, end = rng.choice(spans[1:-1] or spans)
            if what < 0.85:
                yield f"{name}: drop {op}@{start}", data[:start] + data[end:]
            else:
                yield (
                    f"{name}: double {op}@{start}",
                    data[:end] + data[start:end] + data[end:],
                )
