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

__all__ = [
    "DownloadError",
    "FormatError",
    "HashMismatchError",
    "LimitError",
    "SafenpzError",
    "UnsafeFileError",
    "UnstorableError",
]


class SafenpzError(Exception):
    """Base class of every error safenpz raises deliberately."""


class UnsafeFileError(SafenpzError, ValueError):
    """The file asks for something safenpz will never do (call a callable,
    import a module, use a global outside safenpz's closed table)."""


class FormatError(SafenpzError, ValueError):
    """The input is malformed, truncated or internally inconsistent."""


class LimitError(SafenpzError, ValueError):
    """A configurable safety limit was exceeded; the message names the keyword
    that raises it."""


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
