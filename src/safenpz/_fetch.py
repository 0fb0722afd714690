"""Download, hash-check and cache data files (the Keras datasets and friends).

Only the standard library talks to the network (:mod:`urllib.request`); only
``http://`` and ``https://`` URLs are accepted, redirects included.

Where files live
----------------
* The cache directory is ``$SAFENPZ_CACHE_DIR`` when set, else
  ``platformdirs.user_cache_dir("safenpz")``; it is created on demand.
* A file Keras already downloaded is reused in place, read only, when its
  hash matches the known hash. Keras 3 keeps them in ``$KERAS_HOME/datasets``
  (else ``~/.keras/datasets``, or ``/tmp/.keras/datasets`` when the home
  directory is not writable); tf.keras / tf_keras 2.x always use
  ``~/.keras/datasets``, whatever ``KERAS_HOME`` says, so all are searched.
* ``$SAFENPZ_DATASETS_URL`` replaces the Keras origin (mirrors, tests).
* ``$SAFENPZ_OFFLINE=1`` (or ``true``/``yes``) forbids every download; the
  error then says where to put the file by hand.

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
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, Any, Final, Literal, Protocol, TextIO, cast

import platformdirs

from safenpz._exceptions import DownloadError, HashMismatchError

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

KERAS_ORIGIN: Final = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
"""Where Keras downloads its datasets from."""

CACHE_DIR_ENV: Final = "SAFENPZ_CACHE_DIR"
OFFLINE_ENV: Final = "SAFENPZ_OFFLINE"
DATASETS_URL_ENV: Final = "SAFENPZ_DATASETS_URL"
KERAS_HOME_ENV: Final = "KERAS_HOME"

_TRUE_VALUES: Final = frozenset({"1", "true", "yes"})
_ALLOWED_SCHEMES: Final = frozenset({"http", "https"})
_CHUNK: Final = 1 << 16
_USER_AGENT: Final = "safenpz (Python urllib)"

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

CacheState = Literal["valid", "invalid", "missing"]
"""State of ``cache_dir/fname``: matches the known hash, does not, absent."""

Action = Literal["use-cache", "use-keras", "refuse-offline", "download", "update"]
"""What :func:`fetch` does; see :func:`download_action`."""


# -- locations ---------------------------------------------------------------


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def cache_dir() -> Path:
    """Return safenpz's cache directory, creating it if needed.

    Returns
    -------
    pathlib.Path
        ``$SAFENPZ_CACHE_DIR`` when set (``~`` expanded), else
        ``platformdirs.user_cache_dir("safenpz")``.

    Raises
    ------
    DownloadError
        If the directory cannot be created; the message names the path and
        the environment variable that moves it.
    """
    override = _env(CACHE_DIR_ENV)
    path = (
        Path(override).expanduser()
        if override is not None
        else Path(platformdirs.user_cache_dir("safenpz"))
    )
    return _ensure_dir(path)


def _ensure_dir(path: Path) -> Path:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        msg = (
            f"cannot create the safenpz cache directory {str(path)!r}: {err}. "
            f"Point ${CACHE_DIR_ENV} at a writable directory "
            f"(e.g. {CACHE_DIR_ENV}=/path/to/cache) or fix its permissions."
        )
        raise DownloadError(msg) from err
    if not path.is_dir():  # e.g. a dangling symlink mkdir(exist_ok) accepted
        msg = (
            f"the safenpz cache directory {str(path)!r} is not a directory. "
            f"Point ${CACHE_DIR_ENV} at a writable directory."
        )
        raise DownloadError(msg)
    return path


def keras_cache_dirs() -> list[Path]:
    """Return the directories where Keras keeps its downloaded datasets.

    Returns
    -------
    list of pathlib.Path
        ``$KERAS_HOME/datasets`` first when ``$KERAS_HOME`` is set (Keras 3),
        then ``~/.keras/datasets`` (where tf.keras / tf_keras 2.x always
        download, whatever ``KERAS_HOME`` says) and ``/tmp/.keras/datasets``
        (Keras's fallback when the home directory is not writable). The
        directories need not exist.
    """
    dirs = []
    keras_home = _env(KERAS_HOME_ENV)
    if keras_home is not None:
        dirs.append(Path(keras_home).expanduser() / "datasets")
    tmp = Path("/tmp") if Path("/tmp").is_dir() else Path(tempfile.gettempdir())
    dirs += [
        Path("~").expanduser() / ".keras" / "datasets",
        tmp / ".keras" / "datasets",
    ]
    return list(dict.fromkeys(dirs))  # de-duplicate, keep order


def base_url() -> str:
    """Return the URL the Keras datasets are downloaded from, ending in ``/``.

    Returns
    -------
    str
        ``$SAFENPZ_DATASETS_URL`` when set (a mirror, or a local server in
        tests), else :data:`KERAS_ORIGIN`.

    Raises
    ------
    DownloadError
        If ``$SAFENPZ_DATASETS_URL`` is not an ``http://`` or ``https://`` URL.

    Examples
    --------
    >>> base_url().endswith("/")
    True
    """
    url = _env(DATASETS_URL_ENV)
    if url is None:
        return KERAS_ORIGIN
    if _scheme(url) not in _ALLOWED_SCHEMES:
        msg = (
            f"${DATASETS_URL_ENV}={url!r} is not an http:// or https:// URL; "
            f"set it to a mirror of {KERAS_ORIGIN} or unset it."
        )
        raise DownloadError(msg)
    return url if url.endswith("/") else url + "/"


def is_offline() -> bool:
    """Return whether ``$SAFENPZ_OFFLINE`` forbids downloads.

    Returns
    -------
    bool
        True when the variable is ``1``, ``true`` or ``yes`` (any case).
    """
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in _TRUE_VALUES


# -- hashes ------------------------------------------------------------------


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


def _new_hasher(alg: str) -> hashlib._Hash:
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
    hasher = _new_hasher(alg)
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


def _scheme(url: str) -> str:
    return urllib.parse.urlsplit(url).scheme.lower()


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
        f"cannot download {url!r}: offline mode is on (${OFFLINE_ENV} or "
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
    _check_fname(fname)
    if known_hash is not None:
        parse_known_hash(known_hash)  # fail early on a malformed hash
    if _scheme(url) not in _ALLOWED_SCHEMES:
        msg = (
            f"refusing to download {url!r}: only http:// and https:// URLs are "
            f"supported. To use a local file, copy it to the cache directory "
            f"as {fname!r}, or set ${CACHE_DIR_ENV} to its directory."
        )
        raise DownloadError(msg)
    if offline is None:
        offline = is_offline()
    directory = _resolve_cache_dir(cache_dir)
    dest = directory / fname

    state = _cache_state(dest, known_hash)
    keras_copy: Path | None = None
    rejected: list[Path] = []
    if state != "valid" and search_keras_cache and known_hash is not None:
        keras_copy, rejected = _find_keras_copy(fname, known_hash)
    action = download_action(state, keras_copy=keras_copy is not None, offline=offline)

    if action == "use-cache":
        return dest
    if action == "use-keras":
        assert keras_copy is not None
        return keras_copy
    if action == "refuse-offline":
        msg = _offline_message(url, dest, known_hash, state == "invalid", rejected)
        raise DownloadError(msg)
    if progress is None:
        progress = _stderr_is_tty()
    _download(url, dest, known_hash, progress=progress, timeout=timeout)
    return dest


def _resolve_cache_dir(directory: Path | None) -> Path:
    if directory is None:
        return cache_dir()
    return _ensure_dir(Path(directory).expanduser())


def _stderr_is_tty() -> bool:
    stream: TextIO | None = sys.stderr  # None under pythonw
    if stream is None:
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


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
        if _scheme(urllib.parse.urljoin(req.full_url, newurl)) not in _ALLOWED_SCHEMES:
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
    hasher = _new_hasher(alg)
    by_hand = (
        f"To work offline, download it elsewhere and put it at {str(dest)!r} "
        f"(then set ${OFFLINE_ENV}=1)."
    )
    try:
        tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below
            dir=dest.parent, prefix=dest.name + ".", suffix=".part", delete=False
        )
    except OSError as err:
        msg = (
            f"cannot write to the cache directory {str(dest.parent)!r}: {err}. "
            f"Point ${CACHE_DIR_ENV} at a writable directory."
        )
        raise DownloadError(msg) from err
    tmp_path = Path(tmp.name)
    bar: _Bar | None = None
    try:
        request = urllib.request.Request(
            url, headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
        )
        with tmp, _opener().open(request, timeout=timeout) as raw:
            response = cast(http.client.HTTPResponse, raw)
            total = _content_length(response)
            if progress and sys.stderr is not None:
                bar = _new_bar(sys.stderr, dest.name, total)
            received = 0
            buf = bytearray(_CHUNK)
            view = memoryview(buf)
            while n := response.readinto(view):
                tmp.write(view[:n])
                hasher.update(view[:n])
                received += n
                if bar is not None:
                    bar.update(received)
            if total is not None and received != total:
                msg = (
                    f"truncated transfer: got {received} of {total} bytes from "
                    f"{url!r}; nothing was cached. Retry the download. {by_hand}"
                )
                raise DownloadError(msg)
            tmp.flush()
            os.fsync(tmp.fileno())
        if bar is not None:
            bar.close()
            bar = None
        actual = hasher.hexdigest()
        if expected is not None and actual != expected:
            msg = (
                f"hash mismatch for {dest.name!r} downloaded from {url!r}: "
                f"expected {alg}:{expected}, got {alg}:{actual}. The download "
                "was discarded and nothing was cached. The transfer may have "
                "been corrupted (retry) or the server/mirror may serve a "
                f"different file (check ${DATASETS_URL_ENV} and the URL)."
            )
            raise HashMismatchError(msg)
        _replace(tmp_path, dest, known_hash)
    except BaseException as err:
        if bar is not None:
            bar.close()
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if isinstance(err, DownloadError | HashMismatchError) or not isinstance(
            err, Exception
        ):
            raise  # ours, or KeyboardInterrupt/SystemExit
        raise _as_download_error(err, url, dest, timeout, by_hand) from err


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
    msg = f"cannot download {url!r}: {what}. {advice} {by_hand}"
    return DownloadError(msg)


# -- progress bar --------------------------------------------------------------


class _Bar(Protocol):
    def update(self, done: int) -> None: ...
    def close(self) -> None: ...


def _tqdm_class() -> Any:
    """tqdm's class when tqdm is installed (an optional extra), else None."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


def _new_bar(stream: TextIO, label: str, total: int | None) -> _Bar:
    tqdm = _tqdm_class()
    if tqdm is None:
        return _ProgressBar(stream, label, total)
    return _TqdmBar(tqdm, stream, label, total)


class _TqdmBar:
    """tqdm's bar (bytes, rate, ETA) behind :class:`_ProgressBar`'s interface."""

    def __init__(
        self, tqdm: Any, stream: TextIO, label: str, total: int | None
    ) -> None:
        self.done = 0
        self.bar = tqdm(
            total=total,
            desc=f"Downloading {label}",
            file=stream,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            mininterval=0.1,
            leave=True,
        )

    def update(self, done: int) -> None:
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # never fail a download
            self.bar.close()


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


class _ProgressBar:
    """One self-overwriting line on a text stream, redrawn at most every 0.1 s."""

    interval: Final = 0.1

    def __init__(self, stream: TextIO, label: str, total: int | None) -> None:
        self.stream = stream
        self.label = label
        self.total = total
        self.done = 0
        self.start = time.monotonic()
        self.last_draw = -float("inf")
        self.width = 0

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if now - self.last_draw >= self.interval:
            self._draw(now)

    def close(self) -> None:
        self._draw(time.monotonic())
        self._write("\n")

    def _draw(self, now: float) -> None:
        self.last_draw = now
        elapsed = max(now - self.start, 1e-6)
        line = f"Downloading {self.label}: {_human(self.done)}"
        if self.total:
            pct = 100.0 * self.done / self.total
            line += f" / {_human(self.total)} ({pct:3.0f}%)"
        line += f" {_human(self.done / elapsed)}/s"
        pad = " " * max(self.width - len(line), 0)
        self.width = len(line)
        self._write("\r" + line + pad)

    def _write(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # never fail a download
            self.stream.write(text)
            self.stream.flush()
