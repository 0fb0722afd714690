"""Run the scanner with and without its bulk path, and compare (white-box).

:func:`same` scans a stream by the per-opcode loop alone
(``_bulk.ENABLED = False``, the reference) and with the bulk path on -- its
size thresholds and its sampling removed so that it engages on small inputs
and on any opcodes, internal errors raised instead of switching it off, and
with chunks and lanes cut to a few bytes (``TINY``, or ``SMALL`` for larger
inputs) so that runs and lanes are cut everywhere. Both scans must give the
same :class:`PickleReport` (protocol, globals, opcode counts *in order*,
problems, containers) or the same exception (class and message), in the
loader's mode and in ``safenpz scan``'s, and leave the same state behind:
the memo and the memo of names, the stack and its MARKs, the two name
candidates, the hashing bookkeeping, compared value by value (containers
through :class:`_Canon`, which follows the containment graph).
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from typing import Any

from safenpz._exceptions import SafenpzError
from safenpz._pickle import _bulk, _chain, _lanes, _scanner, _values
from safenpz._pickle._scanner import scan_pickle

__all__ = [
    "MEMO",
    "OFF",
    "ON",
    "P4",
    "SMALL",
    "TINY",
    "binget",
    "binput",
    "patched",
    "run",
    "same",
    "ustr",
]

P4 = b"\x80\x04"
MEMO = b"\x94"

# --------------------------------------------------------------------------
# running both


@contextlib.contextmanager
def _settings(**values: Any) -> Iterator[None]:
    """Set module attributes for the duration (bulk and chain knobs)."""
    old: list[tuple[Any, str, Any]] = []
    try:
        for key, value in values.items():
            where, _, name = key.rpartition(".")
            mod = {"chain": _chain, "lanes": _lanes, "": _bulk}[where]
            old.append((mod, name, getattr(mod, name)))
            setattr(mod, name, value)
        yield
    finally:
        for mod, name, value in reversed(old):
            setattr(mod, name, value)


#: the bulk path on small inputs and on any opcodes, with everything cut small
ON = {
    "ENABLED": True,
    "MIN_BYTES": 0,
    "MIN_TOKENS": 1,
    "MIN_ROWS": 1,
    "STRICT": True,
    "_SAMPLE": 0,
}
TINY = {
    **ON,
    "_FIRST_CHUNK": 16,
    "_MAX_CHUNK": 96,
    "lanes._BLOCK": 8,
    "lanes._MIN_BLOCK": 4,
    "lanes._OVERLAP": 4,
    "lanes._REPAIR_OPS": 3,
    "lanes._TEXT": 3,
    "chain._RESTARTS": 2,
    "_POP_WINDOW": 3,
}
#: chunks of a few hundred bytes: runs are still cut often
SMALL = {
    **ON,
    "_FIRST_CHUNK": 128,
    "_MAX_CHUNK": 2048,
    "lanes._BLOCK": 64,
    "lanes._MIN_BLOCK": 16,
    "lanes._OVERLAP": 16,
    "_POP_WINDOW": 64,
}
OFF = {"ENABLED": False}
_TINY_BYTES = 6000  # larger inputs are cut SMALL, not TINY (time)


class _Canon:
    """Values of the abstract stack and memo, as comparable data.

    A container (any :class:`~safenpz._pickle._values.Node`) becomes
    ``("ref", k)``, `k` the order in which it was first met; what it is and
    holds is kept once in ``table[k]`` (so shared and cyclic containers
    compare by their shape)."""

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        v = _values
        self.named = {id(v.UNK): "?", id(v.LEAF): "leaf", id(v.NOVAL): "noval"}
        self.refs: dict[int, int] = {}
        self.table: list[object] = []
        self.pending: list[tuple[int, _values.Node]] = []

    def __call__(self, value: object) -> object:
        v = _values
        if id(value) in self.named:
            return self.named[id(value)]
        if value is None or isinstance(value, int | bytes | str | float):
            return value
        if isinstance(value, tuple):
            return ("tuple", tuple(self(x) for x in value))
        if isinstance(value, v.Num | v.Big | v.Barr):
            return (type(value).__name__, value.off)
        if isinstance(value, v.Run):
            count = v.run_count(self.buf, value)
            return ("run", tuple(v.run_offs(self.buf, value)[:count]))
        if isinstance(value, v.Glob):
            return ("glob", value.role, value.qualname)
        if isinstance(value, v.Node):
            return self._node(value)
        return ("other", type(value).__name__, repr(value))

    def _node(self, node: _values.Node) -> object:
        k = self.refs.get(id(node))
        if k is None:
            k = self.refs[id(node)] = len(self.table)
            self.table.append(None)
            self.pending.append((k, node))
        return ("ref", k)

    def drain(self) -> list[object]:
        """Describe every container met (and those they hold), iteratively."""
        while self.pending:
            k, node = self.pending.pop()
            self.table[k] = self._describe(node)
        return self.table

    def _describe(self, node: _values.Node) -> object:
        fields: list[object] = [type(node).__name__]
        for name in ("kind", "n", "bad", "h"):
            fields.append(getattr(node, name))
        items = node.items
        fields.append(None if items is None else [self(i) for i in items])
        fields.append([self(kid) for kid in node.kids])
        if isinstance(node, _values.Lst):
            fields += [node.frozen, node.size, node.big, self._src(node.src)]
        elif isinstance(node, _values.Tup):
            fields += [node.height, node.size, node.big, node.flags]
            fields += [self._src(node.src), [self(x) for x in node.lists]]
            fields += [self(node.aval), self(node.val)]
        elif isinstance(node, _values.Made):
            fields += [node.role, node.built, self._any(node.val), repr(node.dtype)]
            fields += [node.shape, self(node.data), self._any(node.raw)]
        return tuple(fields)

    def _any(self, value: object) -> object:
        """An abstract value, or any other value by its repr."""
        if isinstance(value, _values.Node):
            return self(value)
        return repr(value)

    def _src(self, src: list[object]) -> list[object]:
        """Items as appended: a run and its literals one by one are the same."""
        out: list[object] = []
        for item in src:
            got = self(item)
            if isinstance(got, tuple) and got[0] == "run":
                out.extend(("Num", off) for off in got[1])
            else:
                out.append(got)
        return out


def run(data: bytes, knobs: dict[str, Any], **kw: Any) -> tuple[object, object]:
    """One scan: (report or exception, final state) as data."""
    seen: dict[str, Any] = {}
    attach = _bulk.attach

    def spy(sc: Any) -> Any:
        seen["sc"] = sc
        seen["bulk"] = got = attach(sc)
        return got

    with _settings(**knobs), patched(_scanner, "attach", spy):
        try:
            rep = scan_pickle(data, **kw)
            out: object = (
                rep.protocol,
                rep.globals,
                list(rep.opcodes.items()),
                rep.problems,
                rep.containers,
                rep.length,
            )
        except SafenpzError as err:
            out = (type(err), str(err))
    if "sc" not in seen:  # refused before the loop (never happens today)
        return out, None
    if seen["bulk"] is not None:
        seen["bulk"].flush()
    return out, _state(seen["sc"], bytes(data))


def _state(sc: Any, buf: bytes) -> object:
    """The scan's state after the scan, as data."""
    canon = _Canon(buf)
    st_ = sc.st
    cost = st_.cost
    state = (
        {k: canon(v) for k, v in sorted(st_.memo.items())},
        {k: canon(v) for k, v in sorted(sc.names.items())},
        [canon(v) for v in st_.items],
        list(st_.marks),
        (canon(sc.t_a), canon(sc.t_b), sc.plain_runs, list(sc.counts)),
        (st_.unbuilt, st_.extra, sc.over_items),
        (cost.hash_work, cost.big_keys, cost.unvalued, cost.flagged),
        (sorted(map(repr, cost.seen)), sorted(cost.same.items())),
        len(cost.known),
    )
    return state, canon.drain()


@contextlib.contextmanager
def patched(mod: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(mod, name)
    setattr(mod, name, value)
    try:
        yield
    finally:
        setattr(mod, name, old)


def same(data: bytes, *, cut: bool = True, report: bool = True, **kw: Any) -> None:
    """Assert: the bulk path changes nothing, in strict mode and (`report`) in
    report mode (`cut`: also with chunks and lanes cut small)."""
    small = TINY if len(data) <= _TINY_BYTES else SMALL
    for strict in (True, False) if report else (True,):
        want = run(data, OFF, strict=strict, **kw)
        assert run(data, ON, strict=strict, **kw) == want
        if cut:
            assert run(data, small, strict=strict, **kw) == want


# --------------------------------------------------------------------------
# helpers to build streams


def ustr(s: str) -> bytes:
    raw = s.encode()
    return (
        b"\x8c" + bytes([len(raw)]) + raw
        if len(raw) < 256
        else b"X" + struct.pack("<I", len(raw)) + raw
    )


def binput(i: int) -> bytes:
    return b"q" + bytes([i]) if i < 256 else b"r" + struct.pack("<I", i)


def binget(i: int) -> bytes:
    return b"h" + bytes([i]) if i < 256 else b"j" + struct.pack("<I", i)
