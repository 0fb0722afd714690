"""The exceptions safenpz raises.

Every error safenpz raises on purpose derives from :class:`SafenpzError`, and
also from the built-in exception a caller would naturally catch, so existing
``except ValueError`` / ``except OSError`` code keeps working::

    SafenpzError(Exception)
    ├── UnsafeFileError(SafenpzError, ValueError)    would run code / unknown global
    ├── FormatError(SafenpzError, ValueError)        malformed, truncated, inconsistent
    ├── LimitError(SafenpzError, ValueError)         a size/ratio/depth/count limit hit
    ├── HashMismatchError(SafenpzError, ValueError)  download does not match its hash
    ├── DownloadError(SafenpzError, OSError)         network, offline mode, cache dir
    └── UnstorableError(SafenpzError, TypeError, ValueError)
                                  save/convert cannot write a value pickle-free
                                  without changing it

Messages say what happened (with the values), why it matters and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ._preview import preview

__all__ = [
    "DownloadError",
    "FormatError",
    "HashMismatchError",
    "LimitError",
    "SafenpzError",
    "UnsafeFileError",
    "UnstorableError",
    "Where",
]


@dataclass(frozen=True)
class Where:
    """Where in the input an error was found.

    Every :class:`SafenpzError` carries one as ``.where`` (each field ``None``
    when it does not apply) and exposes its fields as ``.source``,
    ``.member``, ``.opcode`` and ``.offset``. Messages render it in one
    format::

        <source>: member '<member>': <what happened> (opcode <OP> at byte <N>)

    followed by ``. <advice>`` when the error carries advice (what to do next).

    The member name is escaped (a file controls it); the source is the
    caller's own path or a fixed label, and is shown as given.

    Examples
    --------
    >>> Where(member="x.npy", opcode="SETITEMS", offset=12).render("bad key")
    "member 'x.npy': bad key (opcode SETITEMS at byte 12)"
    >>> Where(source="data.npz").render("not a zip file")
    'data.npz: not a zip file'
    >>> Where(offset=3).render("truncated", advice="The file is damaged.")
    'truncated (at byte 3). The file is damaged.'
    """

    source: str | None = None
    member: str | None = None
    opcode: str | None = None
    offset: int | None = None

    def render(self, message: str, advice: str | None = None) -> str:
        """`message` with this location around it, in the one format, then
        `advice` (what to do next), if given, as a last sentence."""
        head = ""
        if self.source is not None:
            head = f"{self.source}: "
        if self.member is not None:
            head += f"member {preview(self.member)}: "
        tail = ""
        if self.opcode is not None and self.offset is not None:
            tail = f" (opcode {self.opcode} at byte {self.offset})"
        elif self.offset is not None:
            tail = f" (at byte {self.offset})"
        elif self.opcode is not None:
            tail = f" (opcode {self.opcode})"
        text = f"{head}{message}{tail}"
        return f"{text}. {advice}" if advice else text

    def but(self, **changes: Any) -> Where:
        """A copy with some fields replaced (``where.but(member="y.npy")``)."""
        return replace(self, **changes)


_NOWHERE = Where()


class SafenpzError(Exception):
    """Base class of every error safenpz raises deliberately.

    Parameters
    ----------
    message : str
        What happened, why it matters and what to do, without the location.
    where : Where, optional
        Where in the input it happened; rendered around `message` by
        :meth:`Where.render`. The exception's ``str`` is the rendered text.
    advice : str, optional
        What to do next, when it does not depend on the case (one sentence
        shared by many errors); rendered after the location.

    Attributes
    ----------
    message : str
        The message without the location (and without `advice`).
    advice : str or None
        The advice sentence, if any.
    where : Where
        The location (fields ``None`` when unknown or not applicable); its
        fields are also available as ``.source``, ``.member``, ``.opcode``
        and ``.offset``.
    """

    def __init__(
        self,
        message: str = "",
        *,
        where: Where | None = None,
        advice: str | None = None,
    ) -> None:
        self.message = message
        self.where = _NOWHERE if where is None else where
        self.advice = advice
        super().__init__(self.where.render(message, advice))

    def __reduce__(self) -> tuple[Any, ...]:
        # keep the location (and subclass fields) through pickling, e.g. from
        # a worker process
        return (_rebuild, (type(self), self.message, self.__dict__))

    @property
    def source(self) -> str | None:
        """The file or label the error is about, if known."""
        return self.where.source

    @property
    def member(self) -> str | None:
        """The archive member (or pickle) the error is about, if any."""
        return self.where.member

    @property
    def opcode(self) -> str | None:
        """The pickle opcode at fault, if any."""
        return self.where.opcode

    @property
    def offset(self) -> int | None:
        """The byte offset (in the member or pickle stream), if any."""
        return self.where.offset


def _rebuild(cls: type[SafenpzError], message: str, state: dict[str, Any]) -> Any:
    err = cls.__new__(cls)
    err.__dict__.update(state)
    Exception.__init__(err, err.where.render(message, state.get("advice")))
    return err


class UnsafeFileError(SafenpzError, ValueError):
    """The file asks for something safenpz will never do (call a callable,
    import a module, use a global outside safenpz's closed table).

    Attributes
    ----------
    global_name : str or None
        ``"module.name"`` of the global the file named, when that is the
        reason (as the file spelled it; escape it before printing).
    """

    def __init__(
        self,
        message: str = "",
        *,
        where: Where | None = None,
        advice: str | None = None,
        global_name: str | None = None,
    ) -> None:
        self.global_name = global_name
        super().__init__(message, where=where, advice=advice)


class FormatError(SafenpzError, ValueError):
    """The input is malformed, truncated or internally inconsistent."""


class LimitError(SafenpzError, ValueError):
    """A configurable safety limit was exceeded; the message names the keyword
    that raises it.

    Attributes
    ----------
    limit : str or None
        The limit's name: a keyword of :func:`safenpz.load` (``"max_items"``)
        or a fixed bound's name (``"MAX_SAME_HASH"``).
    value : int or float or None
        The value that exceeded it (a lower bound when counting stopped early).
    maximum : int or float or None
        The limit's value in force.
    """

    def __init__(
        self,
        message: str = "",
        *,
        where: Where | None = None,
        advice: str | None = None,
        limit: str | None = None,
        value: float | None = None,
        maximum: float | None = None,
    ) -> None:
        self.limit = limit
        self.value = value
        self.maximum = maximum
        super().__init__(message, where=where, advice=advice)


class HashMismatchError(SafenpzError, ValueError):
    """A downloaded or cached file does not have the expected hash."""


class DownloadError(SafenpzError, OSError):
    """A download failed, offline mode forbids one, or the cache directory is
    unusable."""


class UnstorableError(SafenpzError, TypeError, ValueError):
    """:func:`safenpz.save` or :func:`safenpz.convert` cannot write a value
    pickle-free without changing it (an object that is not plain data, a
    dtype the output format does not keep, a name the archive cannot hold, a
    container that contains itself); nothing was written.

    It is also a :class:`TypeError` and a :class:`ValueError`, the built-in
    errors ``save`` raised for these before, so existing handlers keep
    working."""
