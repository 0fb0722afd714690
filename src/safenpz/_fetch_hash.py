"""Known hashes and file hashing for :mod:`safenpz._fetch`.

A known hash is ``"<alg>:<hex>"`` (md5, sha1, sha256, sha512) or a bare hex
digest read as Keras ``get_file(file_hash=...)`` reads it (64 digits sha256,
32 md5). Files are hashed in bounded chunks.
"""

from __future__ import annotations

import hashlib
import os
from typing import Final

__all__ = ["file_hash", "hash_matches", "new_hasher", "parse_known_hash"]

#: Hash algorithm -> length of its hex digest. md5 and sha1 exist because
#: Keras 2 published md5 hashes; they are accepted, never preferred.
_HEX_LENGTHS: Final[dict[str, int]] = {
    "md5": 32,
    "sha1": 40,
    "sha256": 64,
    "sha512": 128,
}
#: Bare hex digests are read the way Keras ``get_file(file_hash=...)`` does.
_BARE_HASH_ALGS: Final[dict[int, str]] = {64: "sha256", 32: "md5"}


def parse_known_hash(known_hash: str) -> tuple[str, str]:
    """Split a known hash into ``(algorithm, lowercase hex digest)``.

    Parameters
    ----------
    known_hash : str
        ``"<alg>:<hex>"`` with ``alg`` one of md5, sha1, sha256, sha512; or a
        bare hex digest, read as sha256 (64 digits) or md5 (32 digits) like
        Keras does.

    Returns
    -------
    tuple of (str, str)

    Raises
    ------
    ValueError
        If the algorithm is unknown or the digest has the wrong length or
        non-hex characters.

    Examples
    --------
    >>> parse_known_hash("MD5:599DADB1135973DF5B59232A0E9A887C")
    ('md5', '599dadb1135973df5b59232a0e9a887c')
    >>> parse_known_hash("599dadb1135973df5b59232a0e9a887c")[0]
    'md5'
    """
    text = known_hash.strip()
    if ":" in text:
        alg, _, digest = text.partition(":")
        alg = alg.strip().lower()
        digest = digest.strip().lower()
        if alg not in _HEX_LENGTHS:
            msg = (
                f"unknown hash algorithm {alg!r} in known hash {known_hash!r}; "
                f"use one of {', '.join(sorted(_HEX_LENGTHS))} as '<alg>:<hex>'."
            )
            raise ValueError(msg)
    else:
        digest = text.lower()
        found = _BARE_HASH_ALGS.get(len(digest))
        if found is None:
            msg = (
                f"cannot tell the algorithm of the bare hash {known_hash!r} "
                f"({len(digest)} characters; sha256 has 64, md5 32). "
                "Write it as '<alg>:<hex>', e.g. 'sha256:...'."
            )
            raise ValueError(msg)
        alg = found
    if len(digest) != _HEX_LENGTHS[alg] or any(
        c not in "0123456789abcdef" for c in digest
    ):
        msg = (
            f"malformed {alg} digest in known hash {known_hash!r}: expected "
            f"{_HEX_LENGTHS[alg]} hexadecimal digits."
        )
        raise ValueError(msg)
    return alg, digest


def new_hasher(alg: str) -> hashlib._Hash:
    if alg not in _HEX_LENGTHS:
        msg = (
            f"unsupported hash algorithm {alg!r}; "
            f"use one of {', '.join(sorted(_HEX_LENGTHS))}."
        )
        raise ValueError(msg)
    # md5/sha1 only check integrity against a published digest here.
    return hashlib.new(alg, usedforsecurity=alg not in {"md5", "sha1"})


def file_hash(
    path: str | os.PathLike[str], alg: str = "sha256", chunk: int = 1 << 20
) -> str:
    """Return the hex digest of a file, reading it in chunks.

    Parameters
    ----------
    path : str or path-like
    alg : {"sha256", "md5", "sha1", "sha512"}
    chunk : int
        Bytes read at a time; memory use is bounded by it.

    Returns
    -------
    str
        Lowercase hexadecimal digest.

    Raises
    ------
    ValueError
        For an unsupported algorithm or a non-positive chunk.
    OSError
        If the file cannot be read.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = pathlib.Path(d, "x.txt")
    ...     _ = p.write_bytes(b"abc")
    ...     file_hash(p, "md5")
    '900150983cd24fb0d6963f7d28e17f72'
    """
    if chunk <= 0:
        msg = f"chunk must be a positive number of bytes, got {chunk}"
        raise ValueError(msg)
    hasher = new_hasher(alg)
    buf = bytearray(chunk)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(view):
            hasher.update(view[:n])
    return hasher.hexdigest()


def hash_matches(path: str | os.PathLike[str], known_hash: str | None) -> bool:
    """Return whether a file has the known hash.

    Parameters
    ----------
    path : str or path-like
    known_hash : str or None
        As accepted by :func:`parse_known_hash`; None always matches.

    Returns
    -------
    bool

    Raises
    ------
    ValueError
        If ``known_hash`` is malformed.
    OSError
        If the file cannot be read.
    """
    if known_hash is None:
        return True
    alg, expected = parse_known_hash(known_hash)
    return file_hash(path, alg) == expected
