"""The state of one scan, and how the scanner refuses a stream.

:class:`Scan` is what the opcode handlers (:mod:`safenpz._pickle._handlers`)
share; :meth:`Scan.problem` turns a refusal into the error
:func:`safenpz.scan_pickle` raises (strict mode) or into a
:class:`~safenpz._pickle._report.Problem` of the report (report mode). Every
error carries its location as a :class:`~safenpz.Where` (member, opcode,
byte offset) and ends with the advice of its kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

from .._exceptions import FormatError, LimitError, SafenpzError, UnsafeFileError, Where
from ._opcodes import BY_CODE
from ._report import PickleReport, Problem, ProblemKind
from ._stack import Stack
from ._values import UNK, StackError

__all__ = ["ADVICE", "Handler", "Scan", "Stop"]

#: What to do next, by kind of problem (the last sentence of every error).
ADVICE: dict[ProblemKind, str] = {
    "unsafe": (
        "safenpz never runs code from a file: plain data needs only NumPy's "
        "array constructors. `safenpz scan FILE` lists every global the file "
        "names; ask its author for a pickle-free copy (safenpz.save writes one)."
    ),
    "format": "The file is damaged or not a pickle NumPy wrote.",
    "limit": "If the file is trusted and really this large, pass a larger "
    "value for that keyword to safenpz.load.",
}


class Stop(Exception):
    """Internal: the scan is over (STOP, or a format problem in report mode)."""


class Scan:
    """The state of one scan, shared by the opcode handlers.

    ``t_a``, ``t_b`` (the top two) name ``STACK_GLOBAL``'s arguments: string
    literals (bytes, or the offset of a ``SHORT_BINUNICODE``/``BINUNICODE``
    opcode: read only if named), directly or through ``names`` (the memo of
    such literals); :data:`~safenpz._pickle._values.UNK` otherwise. ``st`` is
    the abstract stack (``stack`` its items, ``memo`` its memo); ``counts``
    counts, by code, the opcodes the fast handlers see and ``plain_runs`` the
    runs of plain literals (added to ``report.opcodes`` at the end).
    """

    __slots__ = (
        "buf",
        "counts",
        "encoding",
        "max_depth",
        "max_items",
        "member",
        "memo",
        "n",
        "names",
        "ops",
        "over_items",
        "plain_runs",
        "report",
        "st",
        "stack",
        "strict",
        "t_a",
        "t_b",
    )

    def __init__(
        self,
        buf: bytes,
        member: str,
        strict: bool,
        max_depth: int,
        max_items: int,
        encoding: str = "latin1",
    ) -> None:
        self.buf = buf
        self.encoding = encoding
        self.n = len(buf)
        self.member = member
        self.strict = strict
        self.max_depth = max_depth
        self.max_items = max_items
        self.report = PickleReport(length=self.n)
        self.ops = self.report.opcodes
        self.st = Stack(buf, max_depth, max_items, encoding)
        self.stack = self.st.items
        self.memo = self.st.memo
        self.names: dict[int, object] = {}
        self.t_a: object = UNK
        self.t_b: object = UNK
        self.over_items = False
        self.counts = [0] * 256
        self.plain_runs = 0

    def problem(
        self,
        kind: ProblemKind,
        op: str,
        off: int,
        msg: str,
        *,
        global_name: str | None = None,
        limit: str | None = None,
        value: int | None = None,
        maximum: int | None = None,
    ) -> None:
        """Refuse the stream (strict mode), or record the problem and go on
        (report mode; a format problem ends the scan there).

        `global_name` is the refused global (unsafe); `limit`, `value` and
        `maximum` say which limit was exceeded (limit)."""
        if self.strict:
            where = Where(member=self.member, opcode=op, offset=off)
            advice = ADVICE[kind]
            err: SafenpzError
            if kind == "unsafe":
                err = UnsafeFileError(
                    msg, where=where, advice=advice, global_name=global_name
                )
            elif kind == "limit":
                err = LimitError(
                    msg,
                    where=where,
                    advice=advice,
                    limit=limit,
                    value=value,
                    maximum=maximum,
                )
            else:
                err = FormatError(msg, where=where, advice=advice)
            raise err
        self.report.problems.append(Problem(kind, op, off, msg))
        if kind == "format":
            raise Stop

    def malformed(self, op: str, off: int, msg: str) -> NoReturn:
        """A format problem: the scan ends."""
        self.problem("format", op, off, msg)
        raise Stop  # pragma: no cover - problem() raised already

    def too_many(self, op: int, off: int) -> None:
        """The container opcode `op` at `off` went beyond ``max_items``
        (reported once)."""
        if not self.over_items:
            self.over_items = True
            limit = self.max_items
            msg = f"creates more than max_items={limit} containers"
            self.problem(
                "limit",
                BY_CODE[op].name,
                off,
                msg,
                limit="max_items",
                value=limit + 1,
                maximum=limit,
            )

    def refused(self, op: str, off: int, err: StackError) -> None:
        """Report a refusal of the stack model at opcode `op`, offset `off`."""
        self.problem(
            err.kind,
            op,
            off,
            str(err),
            limit=err.limit,
            value=err.value,
            maximum=err.maximum,
        )


#: An opcode handler: takes the state and the offset of its opcode, returns
#: where the next opcode starts.
Handler = Callable[[Scan, int], int]
