"""Bounded, escaped previews of untrusted values for messages and output.

Everything a file controls (member names, global names, header text, decoded
objects) reaches error messages and the terminal only through :func:`preview`,
which

* never formats more than a bounded part of the value (``repr`` of a huge
  container or ``str`` of a huge int would take unbounded time and memory:
  only the first `limit` characters, items or bytes are looked at);
* escapes every character that is not printable (``\\x1b``, ``\\r``, bidi
  overrides ...), so no terminal escape sequence from a file reaches a
  screen.

Examples
--------
>>> preview("x\\x1b[2J")
"'x\\\\x1b[2J'"
>>> preview("a" * 100, limit=5)
"'aaaaa'... (100 characters)"
>>> preview(10**5000)
'<int of 16610 bits>'
>>> preview(list(range(10**6)), limit=3)
'[0, 1, 2, ...] (1000000 items)'
"""

from __future__ import annotations

from typing import Any

__all__ = ["escape", "preview", "shape_problem"]

_INT_DIGITS = 60


def escape(text: str, *, limit: int = 4096) -> str:
    """`text` with every non-printable character escaped (no quotes), at most
    `limit` characters of it.

    >>> escape("ok\\x1b]0;SAFE\\x07")
    'ok\\\\x1b]0;SAFE\\\\x07'
    """
    head = text[:limit]
    out = head if head.isprintable() else repr(head)[1:-1]
    if len(text) > limit:
        out += f"... ({len(text)} characters)"
    return out


def preview(obj: Any, *, limit: int = 80, quote: bool = True, depth: int = 3) -> str:
    """A short, escaped description of `obj`, computed in bounded time.

    Parameters
    ----------
    obj : object
        Anything, possibly hostile.
    limit : int
        How many characters (str, bytes) or items (containers) to show.
    quote : bool
        Show strings with quotes (as ``repr`` does); ``False`` gives the escaped
        text alone, for names in running text.
    depth : int
        How many levels of nested containers to open (deeper ones are named
        by type and size only), so a deeply nested value costs no recursion.
    """
    if isinstance(obj, str):
        head = obj[:limit]
        text = repr(head) if quote else escape(head, limit=limit)
        if len(obj) > limit:
            text += f"... ({len(obj)} characters)"
        return text
    if isinstance(obj, bytes | bytearray | memoryview):
        raw = bytes(obj[:limit])
        text = repr(raw)
        if len(obj) > limit:
            text += f"... ({len(obj)} bytes)"
        return text
    if isinstance(obj, bool) or obj is None:
        return repr(obj)
    if isinstance(obj, int):
        if obj.bit_length() > _INT_DIGITS * 3:  # ~ > 60 digits
            return f"<int of {obj.bit_length()} bits>"
        return repr(int(obj))
    if isinstance(obj, float | complex):
        return repr(obj)
    if isinstance(obj, list | tuple | set | frozenset | dict):
        return _container(obj, min(limit, 8), depth)
    tp = type(obj)
    if tp.__module__.startswith("safenpz") and "__repr__" in vars(tp):
        return repr(obj)  # safenpz's own objects describe themselves, boundedly
    return f"<{tp.__name__} object>"


_BRACKETS: dict[type, str] = {list: "[]", tuple: "()", set: "{}", dict: "{}"}


def _container(obj: Any, shown: int, depth: int) -> str:
    """``[1, 2, ...] (100 items)``: at most `shown` items, `depth` levels."""
    n = len(obj)
    shown = min(n, shown if depth > 0 else 0)
    it = iter(obj.items() if isinstance(obj, dict) else obj)
    parts = []
    for _ in range(shown):
        item = next(it)
        if isinstance(obj, dict):
            key = preview(item[0], limit=20, depth=depth - 1)
            parts.append(f"{key}: {preview(item[1], limit=20, depth=depth - 1)}")
        else:
            parts.append(preview(item, limit=20, depth=depth - 1))
    if n > shown:
        parts.append("...")
    body = ", ".join(parts)
    tp = type(obj)
    if tp is tuple and n == 1 and shown == 1:
        body += ","
    brackets = _BRACKETS.get(tp) if n or tp is not set else None
    if brackets:
        text = f"{brackets[0]}{body}{brackets[1]}"
    else:
        text = f"{tp.__name__}({{{body}}})" if body else f"{tp.__name__}()"
    return text + (f" ({n} items)" if n > shown else "")


_INTP_MAX = 2**63 - 1


def shape_problem(shape: object, *, max_ndim: int = 64) -> str | None:
    """Why `shape` is not a usable array shape, or None when it is.

    Checked in time bounded by `max_ndim`, never by the size of the numbers:
    a tuple of at most `max_ndim` ints, each ``0 <= d <= 2**63 - 1``, whose
    product fits ``2**63 - 1`` (NumPy's limit). Huge ints are compared, never
    multiplied or printed.

    >>> shape_problem((2, 3)) is None
    True
    >>> shape_problem((0, 2**63))
    'dimension 1 is 2**63 or more'
    >>> shape_problem((2**40, 2**40))
    'the dimensions multiply past 2**63 - 1'
    """
    if not isinstance(shape, tuple):
        return f"a shape must be a tuple, not {type(shape).__name__}"
    if len(shape) > max_ndim:
        return f"{len(shape)} dimensions (at most {max_ndim})"
    for i, dim in enumerate(shape):
        if type(dim) is not int:
            return f"dimension {i} is a {type(dim).__name__}, not an int"
        if dim < 0:
            return f"dimension {i} is negative"
        if dim > _INTP_MAX:
            return f"dimension {i} is 2**63 or more"
    if 0 in shape:
        return None
    total = 1
    for dim in shape:
        total *= dim
        if total > _INTP_MAX:
            return "the dimensions multiply past 2**63 - 1"
    return None
