"""Minimal file objects for the tests of what ``safenpz.load`` accepts."""

from __future__ import annotations

import io

__all__ = ["ReadSeekOnly"]


class ReadSeekOnly:
    """The smallest file-like object: read, seek, tell (no readinto)."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._buf.read(n)

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._buf.seek(pos, whence)

    def tell(self) -> int:
        return self._buf.tell()

    def seekable(self) -> bool:
        return True
