"""What a file is, from its first bytes: the one place that knows magic bytes.

===========  ==========================================================
kind         first bytes
===========  ==========================================================
``"npz"``    ``PK\\x03\\x04`` (a zip local file header) or ``PK\\x05\\x06``
             (the end record of an empty zip archive)
``"npy"``    ``\\x93NUMPY``
``"pickle"`` ``\\x80`` (PROTO, protocol 2+), or the first opcode of a
             protocol 0/1 stream: MARK, an empty container, GLOBAL, a
             number, a string or None (``(]})cIJKLMFGNSUVXT``)
``"other"``  anything else
===========  ==========================================================

:func:`safenpz.load`, ``safenpz scan`` and the CLI all ask :func:`sniff`, so
they always agree on what a file is; the name of a file never decides. The
zip record signatures (:data:`ZIP_LOCAL`, :data:`ZIP_END`) and the ``.npy``
magic (:data:`NPY_MAGIC`) are also what :mod:`safenpz._zip` and
:mod:`safenpz._header` check records against.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "NPY_MAGIC",
    "PICKLE_FIRST_BYTES",
    "ZIP_END",
    "ZIP_LOCAL",
    "Kind",
    "is_npy",
    "is_zip_local",
    "looks_like_data",
    "sniff",
]

Kind = Literal["npz", "npy", "pickle", "other"]

#: The first six bytes of every ``.npy`` file.
NPY_MAGIC = b"\x93NUMPY"
#: Signature of a zip local file header (the start of a non-empty archive).
ZIP_LOCAL = b"PK\x03\x04"
#: Signature of the zip end-of-central-directory record.
ZIP_END = b"PK\x05\x06"
_ZIP_MAGICS = (ZIP_LOCAL, ZIP_END)
#: How pickles begin: PROTO (protocol 2+), or the first opcode of a protocol
#: 0/1 stream (MARK, empty containers, GLOBAL, numbers, strings, None).
PICKLE_FIRST_BYTES = frozenset(b"\x80(]})cIJKLMFGNSUVXT")
_PROTO = 0x80
_HIGHEST_PROTOCOL = 5


def sniff(head: bytes | bytearray | memoryview) -> Kind:
    """What :func:`safenpz.load` takes a file starting with `head` for.

    `head` needs at most 6 bytes.

    Examples
    --------
    >>> sniff(b"\\x93NUMPY\\x01\\x00"), sniff(b"PK\\x03\\x04"), sniff(b"\\x80\\x04")
    ('npy', 'npz', 'pickle')
    """
    head = bytes(head[:6])
    if head[:4] in _ZIP_MAGICS:
        return "npz"
    if head == NPY_MAGIC:
        return "npy"
    if head[:1] and head[0] in PICKLE_FIRST_BYTES:
        return "pickle"
    return "other"


def is_npy(head: bytes | bytearray | memoryview) -> bool:
    """Whether `head` starts with the ``.npy`` magic."""
    return bytes(head[: len(NPY_MAGIC)]) == NPY_MAGIC


def is_zip_local(head: bytes | bytearray | memoryview) -> bool:
    """Whether `head` starts with a zip local file header signature."""
    return bytes(head[: len(ZIP_LOCAL)]) == ZIP_LOCAL


def looks_like_data(head: bytes) -> bool:
    """Whether a file met in a directory walk is NumPy or zip data, or a
    pickle with a PROTO opcode (a bare protocol 0/1 first byte is too common
    in text files to count)."""
    if sniff(head) in ("npz", "npy"):
        return True
    return len(head) >= 2 and head[0] == _PROTO and head[1] <= _HIGHEST_PROTOCOL
