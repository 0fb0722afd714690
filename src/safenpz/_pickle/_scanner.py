"""Static pickle scanner: walks the opcode stream, never executes it.

The scanner is the first line of defence of :func:`safenpz.load` and the engine
of ``safenpz scan``. It reads a pickle stream opcode by opcode (without
building any object) and checks, before anything is decoded:

* every opcode is known, and none of the never-allowed ones appears (the
  ``forbidden`` column of :mod:`safenpz._pickle._opcodes`): ``PERSID``/
  ``BINPERSID`` (persistent ids), ``EXT1/2/4`` (extension registry, whose
  cache can hold real callables), ``INST``/``OBJ``/``NEWOBJ``/``NEWOBJ_EX``
  (instantiate arbitrary classes), ``NEXT_BUFFER``/``READONLY_BUFFER``
  (out-of-band buffers);
* every global (``GLOBAL`` or ``STACK_GLOBAL``) names an entry of safenpz's
  closed table :data:`~safenpz._pickle._globals.SAFE_GLOBALS`;
  ``STACK_GLOBAL`` must take its two names from string literals (directly or
  through the memo), never from a computed value;
* length-prefixed arguments fit in the data, memo indices are bounded by the
  stream length (CPython sizes its memo array by the largest index), frames
  fit, the MARK nesting stays under ``max_depth``, the number of containers
  under ``max_items``, and nothing but a few bytes of whitespace
  (:data:`MAX_TRAILING_WHITESPACE`) follows ``STOP`` (an empty ``FRAME``
  there is refused like any other byte);
* an abstract stack (:mod:`safenpz._pickle._stack`) shows that no opcode pops
  what is not there, and that hashing the dict keys and set items is bounded
  (:mod:`safenpz._pickle._hashing`: tuple height and expanded size, big-int
  keys, crafted hash collisions);
* a containment graph (:mod:`safenpz._pickle._graph`) shows, at ``STOP``,
  that no container reachable from the result contains itself and that at
  most ``max_depth + 1`` containers lie inside one another;
* what the decoder checks about values is checked here too, with the
  decoder's own functions (:mod:`safenpz._pickle._rules`,
  :mod:`safenpz._pickle._dtype_rules`) on the values read from the literals
  (:mod:`safenpz._pickle._static`): every constructor's arguments and every
  ``BUILD`` state (:mod:`safenpz._pickle._calls`), keys that cannot be hashed,
  protocol 0 text and UTF-8 the unpickler rejects
  (:mod:`safenpz._pickle._literals`), and at ``STOP`` what the final walk
  would refuse in the result (a global stored as a value, a key that becomes
  an array, an array or dtype never built, more than ``max_items`` values).

Every argument of a constructor is a literal, or was made from literals by a
constructor already checked, so the scanner knows them all. Where it decides
without the decoder's objects it is stricter, with rules no pickler breaks:
``APPEND`` only to a list (not to an object array's item list once built),
``SETITEM`` only to a dict or an OrderedDict, ``ADDITEMS`` only to a set,
``BUILD`` with a state only on an array or a dtype, objects of a structured
array only in plain object fields, dict and set items counted as put in
(equal keys included) against ``max_items``; text and bytes longer than
64 KiB are known by their type and length; the values read for arguments
are bounded by a few per byte of the stream. A refusal is always at the
opcode where the unpickler or the decoder would fail (``STOP`` for the final
walk), so ``safenpz scan`` and :func:`safenpz.load` reach one verdict.

Problems are reported with the opcode name and its byte offset in the stream
(as attributes of the error: ``.member``, ``.opcode``, ``.offset``).

The loop (:func:`_run`) dispatches each opcode byte to a small handler
(:data:`~safenpz._pickle._handlers.DISPATCH`). For speed, runs of plain
fixed-width literal pushes (small ints, floats, ``None``, booleans) are
skipped by one compiled regular expression and kept as one stack item
(:func:`~safenpz._pickle._handlers.plain`), runs of
``APPEND``/``SETITEM``/``POP`` are applied in one step, and the string and
memo opcodes picklers write most are read in place; the rest go through the
general handler (:mod:`safenpz._pickle._general`). Long runs of literal
pushes (the strings of an object array, the words and numbers of a
vocabulary) are applied in whole-array steps by the bulk path
(:mod:`safenpz._pickle._bulk`), which leaves every refusal to the loop.
"""

from __future__ import annotations

import gc

from .._limits import DEFAULT_LIMITS, Limits
from . import _prescan
from ._bulk import attach
from ._fastreport import fast_report
from ._general import MAX_TRAILING_WHITESPACE
from ._handlers import DISPATCH, TALLY_ORDER
from ._opcodes import BY_CODE
from ._report import PickleReport
from ._state import Scan, Stop
from ._values import StackError

__all__ = ["MAX_TRAILING_WHITESPACE", "scan_loop", "scan_pickle"]


def scan_pickle(
    data: bytes | bytearray | memoryview,
    *,
    member: str = "<pickle>",
    strict: bool = True,
    max_depth: int = DEFAULT_LIMITS.max_depth,
    max_items: int = DEFAULT_LIMITS.max_items,
    limits: Limits | None = None,
    encoding: str = "latin1",
) -> PickleReport:
    """Check a pickle stream statically, without executing any of it.

    Parameters
    ----------
    data : bytes-like
        The complete pickle stream (for a ``.npy`` member: the bytes after the
        header).
    member : str
        Name used in error messages.
    strict : bool
        Raise at the first problem (the loader's mode). With ``strict=False``
        problems are collected in the report and scanning continues where the
        stream still makes sense (the ``safenpz scan`` mode).
    max_depth, max_items : int
        Limits on MARK and tuple nesting, on the number of containers the
        stream would create and on the values hashing its dict keys and set
        items would visit (defaults: :data:`safenpz._limits.DEFAULT_LIMITS`,
        the defaults of :func:`safenpz.load`).
    limits : Limits, optional
        The limits of the load this scan belongs to. When given, its
        ``max_depth`` and ``max_items`` are used and the two keywords above
        are ignored.
    encoding : {"latin1", "bytes", "ASCII"}
        What the load makes of Python 2 strings (as :func:`safenpz.load`'s
        keyword): the constructors' checks see them as it will.

    Returns
    -------
    PickleReport

    Raises
    ------
    UnsafeFileError
        A forbidden opcode or a global outside the closed table
        (``strict=True`` only); ``global_name`` names the global.
    FormatError
        Unknown opcode, truncated argument, bad memo index, trailing data,
        stack underflow, too many big-int dict keys or colliding keys, or
        anything the decoder would refuse about values (constructor
        arguments, ``BUILD`` states, unhashable keys, text, what the final
        walk refuses).
    LimitError
        ``max_depth`` or ``max_items`` exceeded (``limit``, ``value`` and
        ``maximum`` say which, by how much), also by the values the final
        walk would count.

    Notes
    -----
    Every error carries the member, the opcode and its byte offset as
    ``.member``, ``.opcode`` and ``.offset``; its text is
    ``member '<member>': <message> (opcode <OP> at byte <N>). <advice>``.

    Examples
    --------
    >>> import pickle
    >>> scan_pickle(pickle.dumps([1, 2, 3], protocol=2)).safe
    True
    >>> scan_pickle(b"cos\\nsystem\\n.", strict=False).problems[0].kind
    'unsafe'
    """
    if limits is not None:
        max_depth, max_items = limits.max_depth, limits.max_items
    buf = data if isinstance(data, bytes) else bytes(data)
    if strict:  # proven by the pre-check: the report from its facts
        fast = fast_report(buf, max_depth, max_items, encoding)
        if fast is not None:
            if _prescan.CROSS_CHECK:
                _same(fast, scan_loop(buf, max_depth, max_items, encoding, member))
            return fast
    return scan_loop(buf, max_depth, max_items, encoding, member, strict)


def scan_loop(
    buf: bytes,
    max_depth: int,
    max_items: int,
    encoding: str,
    member: str = "<pickle>",
    strict: bool = True,
) -> PickleReport:
    """:func:`scan_pickle` without the pre-check: the Python scan loop."""
    sc = Scan(buf, member, strict, max_depth, max_items, encoding)
    _scan(sc)
    return sc.report


_prescan.SCAN = scan_loop  # the reference of the pre-check's cross-check


def _same(fast: PickleReport, slow: PickleReport) -> None:
    """Raise AssertionError if the fast report is not the loop's."""
    if fast != slow:
        msg = f"the fast report differs from the scan's: {fast} != {slow}"
        raise AssertionError(msg)


def _scan(sc: Scan) -> None:
    """:func:`_run` with the cyclic garbage collector paused (a scan makes
    many small objects, all freed when it ends), then :func:`_tally`."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        _run(sc)
    except Stop:
        pass
    finally:
        if collecting:
            gc.enable()
        _tally(sc)


def _run(sc: Scan) -> None:
    """The scan loop: each opcode goes to its handler in
    :data:`~safenpz._pickle._handlers.DISPATCH`, which returns where the next
    opcode starts, until ``STOP`` (or a problem) ends the scan. The bulk path
    (:mod:`safenpz._pickle._bulk`) is called whenever the loop reaches the
    position it asked for: it applies long runs of literal pushes to the
    state in whole-array steps and moves the loop past them."""
    buf, n, dispatch = sc.buf, sc.n, DISPATCH
    pos = start = 0
    bulk = attach(sc)
    hook_at = n + 1 if bulk is None else 0
    try:
        while True:
            while pos >= hook_at:  # returns hook_at > pos, or moves pos on
                assert bulk is not None
                pos, hook_at = bulk.step(pos)
            if pos >= n:
                sc.malformed("?", pos, "the pickle ends without STOP")
            start = pos
            pos = dispatch[buf[pos]](sc, pos)
    except StackError as err:  # at the opcode that started at `start`
        sc.refused(BY_CODE[buf[start]].name, start + err.delta, err)
    except MemoryError:  # reading a value the stream claims (as decoding would)
        msg = "the scan ran out of memory reading a value of the stream"
        sc.problem("limit", BY_CODE[buf[start]].name, start, msg)


def _tally(sc: Scan) -> None:
    """Add the fast handlers' counts to ``report.opcodes``."""
    ops, counts = sc.ops, sc.counts
    if sc.plain_runs:
        ops["(plain data)"] += sc.plain_runs
    for c in TALLY_ORDER:
        if counts[c]:
            ops[BY_CODE[c].name] += counts[c]
