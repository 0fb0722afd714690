"""Reading small JSON documents that safenpz does not trust.

Three JSON documents come from places an attacker may control: the manifest
inside a ``.npz`` written by :func:`safenpz.save`, the sidecar records of the
dataset cache, and the Keras word-index files. All of them go through here:

* a file (or what a symlink points to) must be a regular file, checked
  before it is opened and again on the open descriptor: never a device such
  as ``/dev/zero``, a FIFO or a directory; it is read with a size cap (at
  most ``cap + 1`` bytes, whatever the file claims);
* the text is parsed by :func:`json.loads`; anything that goes wrong (bad
  syntax, bad UTF-8, nesting deep enough to exhaust the parser's recursion,
  integers too long to convert) is a :class:`~safenpz.FormatError`.
"""

from __future__ import annotations

import json
import os
import stat
from typing import Any

from ._exceptions import FormatError, Where
from ._preview import escape

__all__ = ["parse_json", "read_capped_file", "read_json_file"]


def parse_json(text: str | bytes, what: str, where: Where | None = None) -> Any:
    """Parse `text`; any failure is a :class:`~safenpz.FormatError`.

    Parameters
    ----------
    text : str or bytes
        The document.
    what : str
        What it is, for the message (``"the word index"``).
    where : Where, optional
        Where it is; the error carries it.

    Examples
    --------
    >>> parse_json('{"a": [1]}', "x")
    {'a': [1]}
    >>> parse_json("[" * 100_000, "the record", Where(source="deep.json"))
    Traceback (most recent call last):
    ...
    safenpz.FormatError: deep.json: the record is not valid JSON: ...
    """
    try:
        return json.loads(text)
    except (ValueError, RecursionError, MemoryError) as err:
        reason = escape(str(err), limit=200)
        if isinstance(err, RecursionError):
            reason = "nested too deeply"
        msg = f"{what} is not valid JSON: {reason}"
        raise FormatError(msg, where=where) from err


def read_capped_file(path: str | os.PathLike[str], cap: int) -> bytes:
    """Read a regular file of at most `cap` bytes.

    Raises
    ------
    FormatError
        The path is not a regular file (a device, FIFO or directory, also
        behind a symlink), or it holds more than `cap` bytes; the error's
        ``source`` is `path`.
    OSError
        The file cannot be opened.
    """
    where = Where(source=os.fspath(path))
    msg = "not a regular file; refusing to read it"
    # decide before opening (opening some devices has effects), and again on
    # what was opened (the path may have changed in between)
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise FormatError(msg, where=where)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as fp:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FormatError(msg, where=where)
        data = fp.read(cap + 1)
    if len(data) > cap:
        msg = f"larger than {cap:,} bytes; refusing to read it"
        raise FormatError(msg, where=where)
    return data


def read_json_file(path: str | os.PathLike[str], cap: int, what: str) -> Any:
    """:func:`read_capped_file` then :func:`parse_json` (`what` as there)."""
    data = read_capped_file(path, cap)
    return parse_json(data, what, Where(source=os.fspath(path)))
