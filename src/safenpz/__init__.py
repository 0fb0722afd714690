"""safenpz: load object-array .npy/.npz files without ever running code from them."""

from __future__ import annotations

__version__ = "0.1.0"

from ._exceptions import (
    DownloadError,
    FormatError,
    HashMismatchError,
    LimitError,
    SafenpzError,
    UnsafeFileError,
)

__all__ = [
    "DownloadError",
    "FormatError",
    "HashMismatchError",
    "LimitError",
    "SafenpzError",
    "UnsafeFileError",
    "__version__",
]
