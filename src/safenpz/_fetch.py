"""Download, hash-check and cache data files (the Keras datasets and friends).

Only the standard library talks to the network (:mod:`urllib.request`); only
``http://`` and ``https://`` URLs are accepted, redirects included.

Where files live (:mod:`safenpz._fetch_locations`)
--------------------------------------------------
* The cache directory is ``$SAFENPZ_CACHE_DIR`` when set, else
  ``platformdirs.user_cache_dir("safenpz")``; it is created on demand.
* A file Keras already downloaded is reused in place, read only, when its
  hash matches the known hash (Keras 3's ``$KERAS_HOME/datasets``, and
  ``~/.keras/datasets`` and ``/tmp/.keras/datasets``).
* ``$SAFENPZ_DATASETS_URL`` replaces the Keras origin (mirrors, tests).
* ``$SAFENPZ_OFFLINE=1`` (or ``true``/``yes``) forbids every download; the
  error then says where to put the file by hand.

Known hashes and file hashing are in :mod:`safenpz._fetch_hash`, the
progress bar in :mod:`safenpz._fetch_progress`; this module re-exports the
names the rest of safenpz uses.

What :func:`fetch` does
-----------------------
:func:`download_action` (pure) decides, :func:`fetch` does the I/O:

1. ``cache_dir/fname`` exists and matches the known hash (or no hash is
   known): use it. A cached file that does not match is never trusted.
2. Else, with a known hash, a matching copy in a Keras cache: use it in place.
3. Else, offline: :class:`~safenpz.DownloadError`, naming any copy that was
   found and rejected (hash mismatch) and where to put a good one.
4. Else download into ``<fname>.<random>.part`` in the cache directory,
   hashing while writing and checking ``Content-Length``; verify the hash,
   then ``os.replace`` the temporary file onto the final name. Any failure,
   ``KeyboardInterrupt`` included, deletes the temporary file, so the final
   name only ever holds a complete, verified file. A progress bar is drawn on
   stderr (a terminal, or ``progress=True``): tqdm's when tqdm is installed
   (rate and ETA), else a built-in one line bar.

Two processes fetching the same file each write their own temporary file;
``os.replace`` is atomic, and replacing a file by an identical one is harmless,
so both succeed without a lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, Final, Literal, cast

from safenpz._exceptions import DownloadError, HashMismatchError, Where
from safenpz._fetch_hash import file_hash, hash_matches, new_hasher, parse_known_hash
from safenpz._fetch_locations import (
    ALLOWED_SCHEMES,
    CACHE_DIR_ENV,
    DATASETS_URL_ENV,
    KERAS_HOME_ENV,
    KERAS_ORIGIN,
    OFFLINE_ENV,
    base_url,
    cache_dir,
    ensure_dir,
    is_offline,
    keras_cache_dirs,
    scheme,
)
from safenpz._fetch_progress import Bar, new_bar, stderr_is_tty

__all__ = [
    "CACHE_DIR_ENV",
    "DATASETS_URL_ENV",
    "KERAS_HOME_ENV",
    "KERAS_ORIGIN",
    "OFFLINE_ENV",
    "Action",
    "CacheState",
    "base_url",
    "cache_dir",
    "download_action",
    "fetch",
    "file_hash",
    "hash_matches",
    "is_offline",
    "keras_cache_dirs",
    "parse_known_hash",
]


_CHUNK: Final = 1 << 16
_USER_AGENT: Final = "safenpz (Python urllib)"

CacheState = Literal["valid", "invalid", "missing"]
"""State of ``cache_dir/fname``: matches the known hash, does not, absent."""

Action = Literal["use-cache", "use-keras", "refuse-offline", "download", "update"]
"""What :func:`fetch` does; see :func:`download_action`."""


# -- deciding ----------------------------------------------------------------


def download_action(cached: CacheState, *, keras_copy: bool, offline: bool) -> Action:
    """Decide what :func:`fetch` does; pure, no I/O.

    Parameters
    ----------
    cached : {"valid", "invalid", "missing"}
        The file in safenpz's cache matches the known hash (or none is known),
        exists but does not match, or is absent.
    keras_copy : bool
        A Keras cache holds a copy that matches the known hash.
    offline : bool
        Downloads are forbidden.

    Returns
    -------
    {"use-cache", "use-keras", "refuse-offline", "download", "update"}
        ``update`` is a download that replaces an untrusted cached file.

    Examples
    --------
    >>> download_action("invalid", keras_copy=False, offline=False)
    'update'
    >>> download_action("missing", keras_copy=True, offline=True)
    'use-keras'
    """
    if cached == "valid":
        return "use-cache"
    if keras_copy:
        return "use-keras"
    if offline:
        return "refuse-offline"
    return "download" if cached == "missing" else "update"


# -- doing ---------------------------------------------------------------------


def _check_fname(fname: str) -> None:
    if (
        not fname
        or fname in {".", ".."}
        or "/" in fname
        or "\\" in fname
        or "\0" in fname
        or Path(fname).name != fname
    ):
        msg = f"fname must be a plain file name without directories, got {fname!r}"
        raise ValueError(msg)


def _cache_state(path: Path, known_hash: str | None) -> CacheState:
    if not path.is_file():
        return "missing"
    try:
        return "valid" if hash_matches(path, known_hash) else "invalid"
    except OSError:  # unreadable: not trusted, a download replaces it
        return "invalid"


def _find_keras_copy(fname: str, known_hash: str) -> tuple[Path | None, list[Path]]:
    """(the first Keras copy that matches, the copies found that do not)."""
    rejected: list[Path] = []
    for directory in keras_cache_dirs():
        candidate = directory / fname
        try:
            if not candidate.is_file():
                continue
            if hash_matches(candidate, known_hash):
                return candidate, rejected
        except OSError:
            pass  # unreadable: not used, reported like a mismatch
        rejected.append(candidate)
    return None, rejected


def _offline_message(
    url: str, dest: Path, known_hash: str | None, damaged: bool, rejected: list[Path]
) -> str:
    found = ([dest] if damaged else []) + rejected
    if found:
        copies = " and ".join(repr(str(p)) for p in found)
        verb = "was" if len(found) == 1 else "were"
        seen = (
            f" A copy at {copies} {verb} found but rejected: it does not match "
            f"the expected hash {known_hash} (an incomplete or different "
            "download), so it is not used."
        )
    else:
        where = ", ".join(repr(str(d)) for d in keras_cache_dirs())
        seen = f" No copy was found in safenpz's cache or in Keras's ({where})."
    return (
        f"cannot download it: offline mode is on (${OFFLINE_ENV} or "
        f"offline=True).{seen} Either unset ${OFFLINE_ENV}, or download the "
        f"file elsewhere and put it at {str(dest)!r}."
    )


def fetch(
    url: str,
    *,
    fname: str,
    known_hash: str | None,
    cache_dir: Path | None = None,
    offline: bool | None = None,
    progress: bool | None = None,
    search_keras_cache: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Return a local path to ``url``'s content, downloading it if needed.

    Parameters
    ----------
    url : str
        ``http://`` or ``https://`` URL of the file.
    fname : str
        File name in the cache directory (no directories).
    known_hash : str or None
        Expected hash (see :func:`parse_known_hash`). A cached or downloaded
        file that does not match is never returned. None skips the check and
        trusts any cached file of that name.
    cache_dir : pathlib.Path, optional
        Defaults to :func:`cache_dir` (``$SAFENPZ_CACHE_DIR``).
    offline : bool, optional
        Forbid downloads; defaults to :func:`is_offline`
        (``$SAFENPZ_OFFLINE``).
    progress : bool, optional
        Draw a progress bar on stderr; by default only when stderr is a TTY.
        tqdm's bar (rate, ETA) when tqdm is installed, else a built-in one.
    search_keras_cache : bool
        Reuse a matching copy from :func:`keras_cache_dirs` in place (only
        when ``known_hash`` is given).
    timeout : float
        Seconds to wait for the connection and for each read.

    Returns
    -------
    pathlib.Path
        ``cache_dir/fname``, or the matching file in a Keras cache.

    Raises
    ------
    DownloadError
        Offline with no usable copy; a network or HTTP failure, truncated
        transfer, non-HTTP(S) URL; or an unusable cache directory.
    HashMismatchError
        The downloaded file does not match ``known_hash``; nothing is cached.
    ValueError
        ``fname`` has directory parts or ``known_hash`` is malformed.
    """
    _check_request(url, fname, known_hash)
    if offline is None:
        offline = is_offline()
    dest = _resolve_cache_dir(cache_dir) / fname
    state, keras_copy, rejected = _local_copies(dest, known_hash, search_keras_cache)
    action = download_action(state, keras_copy=keras_copy is not None, offline=offline)
    if action == "use-cache":
        return dest
    if action == "use-keras":
        assert keras_copy is not None
        return keras_copy
    if action == "refuse-offline":
        msg = _offline_message(url, dest, known_hash, state == "invalid", rejected)
        raise DownloadError(msg, where=Where(source=url))
    if progress is None:
        progress = stderr_is_tty()
    _download(url, dest, known_hash, progress=progress, timeout=timeout)
    return dest


def _check_request(url: str, fname: str, known_hash: str | None) -> None:
    """Refuse a bad file name, a malformed hash or a non-HTTP(S) URL early."""
    _check_fname(fname)
    if known_hash is not None:
        parse_known_hash(known_hash)
    if scheme(url) not in ALLOWED_SCHEMES:
        msg = (
            "refusing to download it: only http:// and https:// URLs are "
            "supported. To use a local file, copy it to the cache directory "
            f"as {fname!r}, or set ${CACHE_DIR_ENV} to its directory."
        )
        raise DownloadError(msg, where=Where(source=url))


def _local_copies(
    dest: Path, known_hash: str | None, search_keras_cache: bool
) -> tuple[CacheState, Path | None, list[Path]]:
    """The state of the cached file, a matching Keras copy when it is needed
    (and may be used), and the Keras copies found that do not match."""
    state = _cache_state(dest, known_hash)
    if state == "valid" or not search_keras_cache or known_hash is None:
        return state, None, []
    keras_copy, rejected = _find_keras_copy(dest.name, known_hash)
    return state, keras_copy, rejected


def _resolve_cache_dir(directory: Path | None) -> Path:
    if directory is None:
        return cache_dir()
    return ensure_dir(Path(directory).expanduser())


class _HTTPOnlyRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http:// and https:// URLs."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if scheme(urllib.parse.urljoin(req.full_url, newurl)) not in ALLOWED_SCHEMES:
            reason = f"redirect to a non-HTTP(S) URL refused: {newurl}"
            raise urllib.error.HTTPError(newurl, code, reason, headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    # Built by hand so that no file://, ftp:// or data: handler is installed.
    opener = urllib.request.OpenerDirector()
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.ProxyHandler(),
        urllib.request.UnknownHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        _HTTPOnlyRedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
    ]
    for handler in handlers:
        opener.add_handler(handler)
    return opener


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        return None
    return length if length >= 0 else None


def _download(
    url: str, dest: Path, known_hash: str | None, *, progress: bool, timeout: float
) -> None:
    """Stream ``url`` into a temporary file next to ``dest``, verify, replace."""
    alg, expected = parse_known_hash(known_hash) if known_hash else ("sha256", None)
    by_hand = (
        f"To work offline, download it elsewhere and put it at {str(dest)!r} "
        f"(then set ${OFFLINE_ENV}=1)."
    )
    tmp = _part_file(dest)
    tmp_path = Path(tmp.name)
    try:
        with tmp:
            label = dest.name if progress else None
            actual = _receive(url, tmp, alg, label, timeout=timeout, by_hand=by_hand)
        if expected is not None and actual != expected:
            msg = (
                f"hash mismatch for {dest.name!r}: expected {alg}:{expected}, "
                f"got {alg}:{actual}. The download was discarded and nothing "
                "was cached. The transfer may have been corrupted (retry) or "
                "the server/mirror may serve a different file (check "
                f"${DATASETS_URL_ENV} and the URL)."
            )
            raise HashMismatchError(msg, where=Where(source=url))
        _replace(tmp_path, dest, known_hash)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if isinstance(err, DownloadError | HashMismatchError) or not isinstance(
            err, Exception
        ):
            raise  # ours, or KeyboardInterrupt/SystemExit
        raise _as_download_error(err, url, dest, timeout, by_hand) from err


def _part_file(dest: Path) -> IO[bytes]:
    """A new ``<name>.<random>.part`` file beside `dest`, open for writing."""
    try:
        return tempfile.NamedTemporaryFile(
            dir=dest.parent, prefix=dest.name + ".", suffix=".part", delete=False
        )
    except OSError as err:
        msg = (
            f"cannot write to the cache directory: {err}. Point "
            f"${CACHE_DIR_ENV} at a writable directory."
        )
        raise DownloadError(msg, where=Where(source=str(dest.parent))) from err


def _receive(
    url: str,
    out: IO[bytes],
    alg: str,
    label: str | None,
    *,
    timeout: float,
    by_hand: str,
) -> str:
    """Copy the response to `url` into `out`, synced to disk, with a progress
    bar named `label` (None: no bar); return the hex digest of what came."""
    hasher = new_hasher(alg)
    request = urllib.request.Request(
        url, headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    )
    bar: Bar | None = None
    try:
        with _opener().open(request, timeout=timeout) as raw:
            response = cast(http.client.HTTPResponse, raw)
            total = _content_length(response)
            if label is not None and sys.stderr is not None:
                bar = new_bar(sys.stderr, label, total)
            received = _copy(response, out, hasher, bar)
            if total is not None and received != total:
                msg = (
                    f"truncated transfer: got {received} of {total} bytes; "
                    f"nothing was cached. Retry the download. {by_hand}"
                )
                raise DownloadError(msg, where=Where(source=url))
            out.flush()
            os.fsync(out.fileno())
    finally:
        if bar is not None:
            bar.close()
    return hasher.hexdigest()


def _copy(
    response: http.client.HTTPResponse,
    out: IO[bytes],
    hasher: hashlib._Hash,
    bar: Bar | None,
) -> int:
    """Copy the body to `out` in bounded chunks, hashing it; the byte count."""
    received = 0
    view = memoryview(bytearray(_CHUNK))
    while n := response.readinto(view):
        out.write(view[:n])
        hasher.update(view[:n])
        received += n
        if bar is not None:
            bar.update(received)
    return received


def _replace(tmp_path: Path, dest: Path, known_hash: str | None) -> None:
    try:
        os.replace(tmp_path, dest)
    except PermissionError:
        # Windows refuses to replace a file another process holds open; if a
        # concurrent fetch already put the verified file there, that will do.
        if known_hash is None or not (
            dest.is_file() and hash_matches(dest, known_hash)
        ):
            raise
        with contextlib.suppress(OSError):
            tmp_path.unlink()


def _as_download_error(
    err: Exception, url: str, dest: Path, timeout: float, by_hand: str
) -> DownloadError:
    if isinstance(err, urllib.error.HTTPError):
        with contextlib.suppress(Exception):
            err.close()
        what = f"HTTP {err.code} {err.reason}"
        advice = (
            "Check the URL (and any mirror set with "
            f"${DATASETS_URL_ENV}); retry later if the server is failing."
        )
    elif isinstance(err, TimeoutError) or (
        isinstance(err, urllib.error.URLError) and isinstance(err.reason, TimeoutError)
    ):
        what = f"timed out after {timeout:g} s"
        advice = "Check your network connection, or retry with a larger timeout."
    elif isinstance(err, urllib.error.URLError):
        what = f"{err.reason}"
        advice = "Check your network connection and proxy settings."
    elif isinstance(err, http.client.HTTPException):
        what = f"{type(err).__name__}: {err}"
        advice = "The connection broke or the server misbehaved; retry."
    elif isinstance(err, OSError):
        what = f"{type(err).__name__}: {err}"
        advice = (
            "The connection failed or the cache directory "
            f"{str(dest.parent)!r} is not writable (or full); retry, or point "
            f"${CACHE_DIR_ENV} elsewhere."
        )
    else:
        what = f"{type(err).__name__}: {err}"
        advice = "Retry the download."
    msg = f"cannot download it: {what}. {advice} {by_hand}"
    return DownloadError(msg, where=Where(source=url))
