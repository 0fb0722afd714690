"""The scanner's general handler: an opcode's argument, then its action.

Every opcode the fast handlers (:mod:`safenpz._pickle._handlers`) do not
read in place, or hand over because their argument does not fit, goes
through :func:`general`: it counts the opcode, reads its argument by its kind
(:mod:`safenpz._pickle._args`), refuses a forbidden opcode for the reason
the opcode table gives (``INST`` names the class it would instantiate; in
report mode the scan goes on with the opcode's stack effect), then runs the
opcode's action (:data:`Action`): ``STOP`` ends the scan, ``GLOBAL`` and
``STACK_GLOBAL`` are checked against the closed table of globals, string
literals are followed as names ``STACK_GLOBAL`` may take, memo indices are
bounded, and any other opcode applies its stack effect from the table.
"""

from __future__ import annotations

from collections.abc import Callable

from ._args import PREFIX_WIDTH, READERS, Reader
from ._calls import check_walk
from ._globals import SAFE_GLOBALS
from ._graph import check_graph
from ._hashing import is_big_int
from ._literals import COMMON, UNICODE_CODES, py2_problem, text_problem, utf8_problem
from ._opcodes import OPS, Op, code
from ._report import GlobalRef
from ._state import Handler, Scan, Stop
from ._values import LEAF, UNK, Barr, Big, Glob, Made, Num, Tup, glob_of

__all__ = [
    "MAX_TRAILING_WHITESPACE",
    "Action",
    "general",
    "general_table",
    "unknown",
]

#: What a generally read opcode does: state, opcode, offset, argument(s),
#: offset after the argument -> the next offset.
Action = Callable[[Scan, Op, int, bytes, bytes, int], int]

SHORT_BINUNICODE = code("SHORT_BINUNICODE")
STRING = code("STRING")

#: ``pickle.load`` ignores what follows ``STOP``, and hand-edited files end in
#: a newline: this much ASCII whitespace after ``STOP`` is accepted. Anything
#: else there is refused (a polyglot: another reader may see other data).
MAX_TRAILING_WHITESPACE = 16
_WHITESPACE = frozenset(b" \t\r\n\v\f")
#: The newest protocol any opcode belongs to.
_MAX_PROTOCOL = max(op.proto for op in OPS.values())


def general(op: Op, action: Action) -> Handler:
    """The handler that reads `op`'s argument, then runs `action`."""
    read: Reader = READERS[op.arg if isinstance(op.arg, str) else "fixed"]
    keep = action in _KEEP_ARG
    name = op.name

    def handler(sc: Scan, pos: int) -> int:
        sc.ops[name] += 1
        arg, arg2, end = read(sc, op, pos, keep)
        return action(sc, op, pos, arg, arg2, end)

    return handler


def unknown(sc: Scan, pos: int) -> int:
    """A byte that is no opcode."""
    c = sc.buf[pos]
    sc.malformed(f"0x{c:02x}", pos, f"unknown pickle opcode byte 0x{c:02x}")


def _forbidden(action: Action) -> Action:
    """`action` after refusing the opcode for its ``forbidden`` reason."""

    def act(sc: Scan, op: Op, pos: int, arg: bytes, arg2: bytes, end: int) -> int:
        sc.problem("unsafe", op.name, pos, str(op.forbidden))
        return action(sc, op, pos, arg, arg2, end)

    return act


def _act_effect(sc: Scan, op: Op, pos: int, arg: bytes, arg2: bytes, end: int) -> int:
    """Any other opcode: its stack effect, pushing a cheap value."""
    sc.t_a = sc.t_b = UNK
    sc.st.fixed(op.name, op.pops, LEAF if op.pushes == 1 else None)
    return end


def _check_text(sc: Scan, op: Op, pos: int, arg: bytes) -> None:
    """A protocol 0 literal the unpickler refuses is refused here."""
    if op.code != STRING and COMMON[op.code].fullmatch(arg) is not None:
        return  # the common spellings, at once
    problem = text_problem(op.code, arg, sc.encoding)
    if problem is not None:
        sc.malformed(op.name, pos, problem)


def _act_int(sc: Scan, op: Op, pos: int, arg: bytes, arg2: bytes, end: int) -> int:
    """INT, LONG, LONG1, LONG4: a number, or a big int (hash collisions)."""
    if op.arg == "nl":
        _check_text(sc, op, pos, arg)
    sc.t_a = sc.t_b = UNK
    sc.stack.append(Big(pos) if is_big_int(op.code, arg) else Num(pos))
    return end


def _act_float(sc: Scan, op: Op, pos: int, arg: bytes, arg2: bytes, end: int) -> int:
    """FLOAT (text; BINFLOAT is a plain literal)."""
    _check_text(sc, op, pos, arg)
    sc.t_a = sc.t_b = UNK
    sc.stack.append(Num(pos))
    return end


def _act_name(sc: Scan, op: Op, pos: int, arg: bytes, arg2: bytes, end: int) -> int:
    """A binary string literal: a name STACK_GLOBAL may take."""
    if op.code in UNICODE_CODES:
        problem = utf8_problem(arg, 0, len(arg))
    else:
        problem = py2_problem(arg, sc.encoding)
    if problem is not None:
        sc.malformed(op.name, pos, problem)
    sc.t_a, sc.t_b = sc.t_b, arg
    sc.stack.append(pos)
    return end


def _act_text(sc: Scan, op: Op, pos: int, arg: bytes, arg2: bytes, end: int) -> int:
    """UNICODE, STRING (protocol 0): not followed, never names."""
    _check_text(sc, op, pos, arg)
    sc.t_a, sc.t_b = sc.t_b, UNK
    sc.stack.append(pos)
    return end


def _act_bytes(sc: Scan, op: Op, pos: int, arg: bytes, arg2: bytes, end: int) -> int:
    """SHORT_BINBYTES, BINBYTES, BINBYTES8 (and BYTEARRAY8: a bytearray)."""
    sc.t_a = sc.t_b = UNK
    sc.stack.append(Barr(pos) if op.name == "BYTEARRAY8" else pos)
    return end


def _act_dup(sc: Scan, op: Op, pos: int, arg: bytes, arg2: bytes, end: int) -> int:
    sc.stack.append(sc.st.top_item("DUP"))
    sc.t_a = sc.t_b
    return end


def _text_index(sc: Scan, op: Op, pos: int, arg: bytes) -> int:
    """The memo index of PUT / GET (decimal text)."""
    if not arg.isdigit() or len(arg) > 19:
        sc.malformed(op.name, pos, f"bad memo index {arg!r}")
    return int(arg)


def _put(sc: Scan, op: Op, pos: int, idx: int) -> None:
    if idx > sc.n:
        sc.malformed(op.name, pos, f"memo index {idx} is larger than the stream")
    sc.st.put(idx, op.name)
    sc.names[idx] = sc.t_b


def _act_put(sc: Scan, op: Op, pos: int, arg: bytes, arg2: bytes, end: int) -> int:
    """BINPUT, LONG_BINPUT."""
    _put(sc, op, pos, int.from_bytes(arg, "little"))
    return end


def _act_put_text(sc: Scan, op: Op, pos: int, arg: bytes, arg2: bytes, end: int) -> int:
    """PUT."""
    _put(sc, op, pos, _text_index(sc, op, pos, arg))
    return end


def _get(sc: Scan, op: Op, idx: int) -> None:
    sc.st.get(idx, op.name)
    sc.t_a, sc.t_b = sc.t_b, sc.names.get(idx, UNK)


def _act_get(sc: Scan, op: Op, pos: int, arg: bytes, arg2: bytes, end: int) -> int:
    """BINGET, LONG_BINGET."""
    _get(sc, op, int.from_bytes(arg, "little"))
    return end


def _act_get_text(sc: Scan, op: Op, pos: int, arg: bytes, arg2: bytes, end: int) -> int:
    """GET."""
    _get(sc, op, _text_index(sc, op, pos, arg))
    return end


def _act_proto(sc: Scan, op: Op, pos: int, arg: bytes, arg2: bytes, end: int) -> int:
    sc.report.protocol = arg[0]
    if arg[0] > _MAX_PROTOCOL:
        sc.malformed(op.name, pos, f"unsupported pickle protocol {arg[0]}")
    sc.t_a = sc.t_b = UNK
    return end


def _act_stop(sc: Scan, op: Op, pos: int, arg: bytes, arg2: bytes, end: int) -> int:
    """STOP: nothing after it but some whitespace; the graph of the result."""
    result = sc.st.top(op.name)
    tail = sc.buf[end : end + MAX_TRAILING_WHITESPACE + 1]
    if len(tail) > MAX_TRAILING_WHITESPACE or not set(tail) <= _WHITESPACE:
        msg = (
            f"{sc.n - end} bytes of trailing data after STOP (only up to "
            f"{MAX_TRAILING_WHITESPACE} bytes of whitespace are "
            "accepted; other readers could see something else there)"
        )
        sc.malformed(op.name, pos, msg)
    check_graph(result, sc.max_depth)
    st = sc.st
    count = sc.n + st.extra > sc.max_items  # else the walk cannot count more
    held = type(result) is Glob or (type(result) is Tup and result.bad is not None)
    if st.unbuilt or st.cost.flagged or count or held:
        check_walk(st.values, result, sc.max_items, count)
    _describe(sc, result)
    raise Stop


def _describe(sc: Scan, result: object) -> None:
    """What the pickle returns, in the report (what a ``.npy`` header must
    promise: an array of its shape and dtype)."""
    report = sc.report
    if type(result) is Made and result.role in ("array", "frombuffer"):
        report.result = "ndarray"
        report.shape, report.dtype = result.shape, result.dtype
    elif type(result) is Made and result.role == "scalar":
        report.result = result.dtype.type.__name__
    elif type(result) is Made and result.role == "dtype":
        report.result = type(result.dtype).__name__
    else:
        report.result = sc.st.values.kind(result)


def _decode_str(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _literal(buf: bytes, value: object) -> object:
    """A name candidate: bytes, or the offset of a SHORT_BINUNICODE or
    BINUNICODE opcode (the fast handlers keep offsets, not copies)."""
    if type(value) is not int:
        return value
    if buf[value] == SHORT_BINUNICODE:
        return buf[value + 2 : value + 2 + buf[value + 1]]
    size = int.from_bytes(buf[value + 1 : value + 5], "little")
    return buf[value + 5 : value + 5 + size]


def _named(sc: Scan, op: Op, pos: int, mod: str, nam: str) -> None:
    """Record the global `mod`.`nam`; refuse it if it is not in the table."""
    ok = (mod, nam) in SAFE_GLOBALS
    sc.report.globals.append(GlobalRef(mod, nam, op.name, pos, ok))
    if mod == "?" or nam == "?":
        msg = (
            "STACK_GLOBAL with a computed module or name; "
            "only string literals are accepted"
        )
        sc.problem("unsafe", op.name, pos, msg)
    elif not ok:
        msg = f"global {mod}.{nam} is not in safenpz's table of allowed constructors"
        sc.problem("unsafe", op.name, pos, msg, global_name=f"{mod}.{nam}")


def _act_global(sc: Scan, op: Op, pos: int, arg: bytes, arg2: bytes, end: int) -> int:
    mod, nam = _decode_str(arg), _decode_str(arg2)
    _named(sc, op, pos, mod, nam)
    sc.stack.append(glob_of(mod, nam))
    sc.t_a = sc.t_b = UNK
    return end


def _act_stack_global(
    sc: Scan, op: Op, pos: int, arg: bytes, arg2: bytes, end: int
) -> int:
    a, b = _literal(sc.buf, sc.t_a), _literal(sc.buf, sc.t_b)
    mod = _decode_str(a) if isinstance(a, bytes) else "?"
    nam = _decode_str(b) if isinstance(b, bytes) else "?"
    _named(sc, op, pos, mod, nam)
    # refused above unless both names are literals, so they are on the stack
    sc.st.pop(2, op.name)
    sc.stack.append(glob_of(mod, nam))
    sc.t_a = sc.t_b = UNK
    return end


def _act_inst(sc: Scan, op: Op, pos: int, arg: bytes, arg2: bytes, end: int) -> int:
    """INST names its class as text: listed like a global, always refused."""
    mod, nam = _decode_str(arg), _decode_str(arg2)
    sc.report.globals.append(GlobalRef(mod, nam, op.name, pos, False))
    msg = f"INST would instantiate {mod}.{nam}"
    sc.problem("unsafe", op.name, pos, msg, global_name=f"{mod}.{nam}")
    sc.t_a = sc.t_b = UNK
    sc.st.close_instance(op.name)
    return end


def _act_obj(sc: Scan, op: Op, pos: int, arg: bytes, arg2: bytes, end: int) -> int:
    sc.t_a = sc.t_b = UNK
    sc.st.close_instance(op.name)
    return end


def _act_frame(sc: Scan, op: Op, pos: int, arg: bytes, arg2: bytes, end: int) -> int:
    """FRAME only groups the opcodes that follow it: they are read next (its
    length was checked against the data)."""
    return pos + 1 + PREFIX_WIDTH[str(op.arg)]


#: Actions by opcode name; the memo opcodes by their memo role
#: (:data:`_MEMO_ACTIONS`), any other opcode: :func:`_act_effect`.
_ACTIONS: dict[str, Action] = {
    "STOP": _act_stop,
    "PROTO": _act_proto,
    "FRAME": _act_frame,
    "GLOBAL": _act_global,
    "STACK_GLOBAL": _act_stack_global,
    "INST": _act_inst,
    "OBJ": _act_obj,
    "DUP": _act_dup,
    "INT": _act_int,
    "LONG": _act_int,
    "LONG1": _act_int,
    "LONG4": _act_int,
    "FLOAT": _act_float,
    "UNICODE": _act_text,
    "STRING": _act_text,
    "SHORT_BINUNICODE": _act_name,
    "BINUNICODE": _act_name,
    "BINUNICODE8": _act_name,
    "SHORT_BINSTRING": _act_name,
    "BINSTRING": _act_name,
    "SHORT_BINBYTES": _act_bytes,
    "BINBYTES": _act_bytes,
    "BINBYTES8": _act_bytes,
    "BYTEARRAY8": _act_bytes,
}
#: Memo actions by (memo role, index as decimal text).
_MEMO_ACTIONS: dict[tuple[object, bool], Action] = {
    ("put", True): _act_put_text,
    ("put", False): _act_put,
    ("get", True): _act_get_text,
    ("get", False): _act_get,
}
#: Actions that read their length-prefixed argument (others skip it).
_KEEP_ARG = frozenset({_act_int, _act_name})


def general_table(exclude: frozenset[int]) -> dict[int, Handler]:
    """The general handler of every opcode but those in `exclude` (the ones
    whose fast handler never hands over to the general reader)."""
    table: dict[int, Handler] = {}
    for op in OPS.values():
        if op.code in exclude:
            continue
        action = _ACTIONS.get(op.name) or _MEMO_ACTIONS.get(
            (op.memo, op.arg == "nl"), _act_effect
        )
        if op.forbidden and action is not _act_inst:  # INST says what it names
            action = _forbidden(action)
        table[op.code] = general(op, action)
    return table
