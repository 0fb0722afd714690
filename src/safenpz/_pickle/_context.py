"""What one run of the closed-table decoder shares: its context, its stand-ins.

:class:`Context` is created once per :func:`safenpz._pickle._decode.safe_loads`
call and bound into every constructor the pickle names, so concurrent decodes
never share state. It carries the member name (for :class:`~safenpz.Where`),
the one :class:`~safenpz._limits.Limits` object of the load and the Python 2
string encoding, and raises the decoder's errors with their location.

:class:`Builder` is the base of the stand-ins the decoder hands the C
unpickler where NumPy would hand it real objects: they receive ``BUILD``'s
state, check it, and are swapped for the real value by the final walk
(:mod:`safenpz._pickle._walk`). :class:`Done` is a value that was finished
when it was made (a NumPy scalar, an array from ``_frombuffer``). Every
builder is listed in its context's :attr:`Context.made` when it is created, so
the end of the decode knows each stand-in there is
(:mod:`safenpz._pickle._finish`).

The small checks every constructor needs (:func:`as_bytes`,
:func:`as_text`, :func:`check_shape`, :func:`preview`) come from
:mod:`safenpz._pickle._rules` (shared with the static scanner).
"""

from __future__ import annotations

from typing import Any, NoReturn

import numpy as np

from .._exceptions import FormatError, LimitError, Where
from .._limits import Limits
from . import _rules
from ._rules import Refused, as_text, preview

__all__ = [
    "BARE_SCALARS",
    "Builder",
    "Context",
    "Done",
    "as_bytes",
    "as_text",
    "check_shape",
    "preview",
]


#: The NumPy scalar types the decoder hands the C unpickler as they are,
#: without a :class:`Done` around them: the numeric ones (booleans, integers,
#: floats, complex numbers of every width), immutable and hashable, which
#: the final walk keeps as leaves. Other scalars (strings, bytes, voids,
#: datetimes) stay wrapped.
BARE_SCALARS: frozenset[type] = frozenset(
    np.dtype(code).type for code in "?bBhHiIlLqQefdgFDG"
)


class Context:
    """Per-call state shared by the constructors of one decode.

    Parameters
    ----------
    member : str
        The member (or pickle) name errors are reported against.
    limits : Limits
        The limits of this load (``max_depth`` and ``max_items`` apply here).
    encoding : {"latin1", "bytes", "ASCII"}
        How Python 2 ``str`` objects are decoded.

    Attributes
    ----------
    scanned : bool
        Whether a strict scan of the stream, with these limits, passed (the
        constructors may then take the shortcuts of
        :data:`safenpz._pickle._constructors.FAST_SCANNED`).
    made : list of Builder
        Every builder created in this decode, in order (each registers itself).
    """

    __slots__ = ("encoding", "limits", "made", "member", "scanned", "where")

    def __init__(
        self, member: str, limits: Limits, encoding: str, *, scanned: bool = False
    ) -> None:
        self.member = member
        self.limits = limits
        self.encoding = encoding
        self.scanned = scanned
        self.where = Where(member=member)
        self.made: list[Builder] = []

    def fail(self, msg: str, *, opcode: str | None = None) -> NoReturn:
        """Raise :class:`~safenpz.FormatError` at this member (and `opcode`)."""
        where = self.where if opcode is None else self.where.but(opcode=opcode)
        raise FormatError(msg, where=where)

    def refused(self, err: Refused) -> NoReturn:
        """Raise the error a failed shared check (:mod:`safenpz._pickle._rules`)
        stands for: :class:`~safenpz.LimitError` when it names a limit, else
        :class:`~safenpz.FormatError`."""
        if err.limit is not None:
            self.exceed(str(err), err.limit, err.value)
        self.fail(str(err))

    def exceed(self, msg: str, limit: str, value: int | None) -> NoReturn:
        """Raise :class:`~safenpz.LimitError`: `value` exceeds the limit called
        `limit` (a field of :class:`~safenpz._limits.Limits`)."""
        maximum = getattr(self.limits, limit)
        raise LimitError(
            msg, where=self.where, limit=limit, value=value, maximum=maximum
        )


# --------------------------------------------------------------------------
# builders: stand-ins that receive BUILD's state and are swapped out at the end


class Builder:
    """A value under construction: ``BUILD`` hands it a state to check.

    Subclasses set :attr:`kind` (for messages) and override ``__setstate__``;
    :meth:`result` is the finished value, which the final walk puts where the
    builder was. Each builder registers itself in ``ctx.made``.
    """

    __slots__ = ("_built", "ctx", "value")
    kind = "value"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.value: Any = None
        self._built = False
        ctx.made.append(self)

    @property
    def finished(self) -> bool:
        """Whether :meth:`result` has its value without further work."""
        return self._built

    def result(self) -> Any:
        """The finished value; refused if ``BUILD`` never finished it."""
        if not self._built:
            self.ctx.fail(
                f"a {self.kind} was used before the pickle finished building it"
            )
        return self.value

    def __setstate__(self, state: object) -> None:
        self.ctx.fail(f"unexpected BUILD on a finished {self.kind}")

    def __reduce__(self) -> NoReturn:  # never pickled back
        msg = "internal safenpz object"
        raise TypeError(msg)


class Done(Builder):
    """A finished value (NumPy scalar, array from ``_frombuffer``).

    As a dict key or set item it hashes and compares as its value when that
    is a hashable NumPy scalar, so the unpickler merges equal keys in stream
    order, as it does for the real scalars (``{np.str_("a"): 0, "a": 1}``
    keeps the first key and the last value). Anything else (an array, a
    structured scalar) compares by identity, as any builder does.
    """

    __slots__ = ()

    def __hash__(self) -> int:
        value = self.value
        if isinstance(value, np.generic):
            try:
                return hash(value)
            except TypeError:  # a writeable structured (void) scalar
                pass
        return object.__hash__(self)

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        mine = self.value
        theirs = other.value if type(other) is Done else other
        if not (_by_value(mine) and _by_value(theirs)):
            return False
        try:
            return bool(mine == theirs)
        except (TypeError, ValueError):  # never equal, as NumPy may refuse
            return False

    # one per pickled NumPy scalar (thousands in a Keras history): the base
    # class's work, inlined
    def __init__(self, ctx: Context, value: Any) -> None:
        self.ctx = ctx
        self.value = value
        self._built = True
        ctx.made.append(self)


def _by_value(value: object) -> bool:
    """Whether a :class:`Done` holding `value` (or a key equal to one)
    compares by value: a hashable NumPy scalar, or plain data that is not a
    builder of the decoder."""
    if isinstance(value, Builder):
        return False
    if isinstance(value, np.generic):
        try:
            hash(value)
        except TypeError:
            return False
    return not isinstance(value, np.ndarray)


# --------------------------------------------------------------------------
# the checks shared with the scanner (:mod:`safenpz._pickle._rules`), raising
# the decoder's errors


def as_bytes(ctx: Context, raw: object, what: str) -> bytes:
    """:func:`safenpz._pickle._rules.as_bytes`, refused at the member."""
    try:
        return _rules.as_bytes(raw, what)
    except Refused as err:
        ctx.refused(err)


def check_shape(ctx: Context, shape: object) -> tuple[int, ...]:
    """:func:`safenpz._pickle._rules.check_shape`, refused at the member."""
    try:
        return _rules.check_shape(shape)
    except Refused as err:
        ctx.refused(err)
