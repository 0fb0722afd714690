"""What :func:`safenpz.scan_pickle` reports about one pickle stream.

A :class:`PickleReport` lists the protocol, every global the stream names
(:class:`GlobalRef`, allowed or not), how many times each opcode occurs, how
many containers the stream creates and, in report mode (``strict=False``),
every :class:`Problem` found. ``safenpz scan`` prints it; the loader only
needs its verdict.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["GlobalRef", "PickleReport", "Problem", "ProblemKind"]

#: What kind of refusal a problem is: ``"unsafe"`` (:class:`~safenpz.UnsafeFileError`),
#: ``"format"`` (:class:`~safenpz.FormatError`) or ``"limit"``
#: (:class:`~safenpz.LimitError`).
ProblemKind = Literal["unsafe", "format", "limit"]


@dataclass(frozen=True)
class GlobalRef:
    """A global named by a pickle.

    Attributes
    ----------
    module, name : str
        What the file asks for (``"?"`` when computed, not a literal).
    opcode : str
        ``"GLOBAL"`` or ``"STACK_GLOBAL"``.
    offset : int
        Byte offset of the opcode in the pickle stream.
    allowed : bool
        Whether it is in safenpz's closed table.
    """

    module: str
    name: str
    opcode: str
    offset: int
    allowed: bool


@dataclass(frozen=True)
class Problem:
    """A reason the stream is refused."""

    kind: ProblemKind
    opcode: str
    offset: int
    message: str


@dataclass
class PickleReport:
    """What :func:`scan_pickle` found in one stream."""

    protocol: int = 0
    globals: list[GlobalRef] = field(default_factory=list)
    opcodes: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    containers: int = 0
    length: int = 0
    #: The type of what the pickle returns, as :func:`safenpz.load` gives it
    #: (``"ndarray"``, ``"dict"``, ``"float64"`` ...), once ``STOP`` is read.
    result: str | None = None
    #: The shape and the dtype (a :class:`numpy.dtype`) of the array the
    #: pickle returns, when it returns one.
    shape: tuple[int, ...] | None = None
    dtype: Any = None

    @property
    def safe(self) -> bool:
        """True when no problem was found."""
        return not self.problems
