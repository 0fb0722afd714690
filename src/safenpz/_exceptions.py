"""The exceptions safenpz raises.

Every error safenpz raises on purpose derives from :class:`SafenpzError`, and
also from the built-in exception a caller would naturally catch, so existing
``except ValueError`` / ``except OSError`` code keeps working::

    SafenpzError(Exception)
    ├── UnsafeFileError(SafenpzError, ValueError)    would run code / unknown global
    ├── FormatError(SafenpzError, ValueError)        malformed, truncated, inconsistent
    ├── LimitError(SafenpzError, ValueError)         a size/ratio/depth/count limit hit
    ├── HashMismatchError(SafenpzError, ValueError)  download does not match its hash
    └── DownloadError(SafenpzError, OSError)         network, offline mode, cache dir

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
