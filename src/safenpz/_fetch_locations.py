"""Where fetched files come from and where they live: URLs, the cache
directory, Keras's caches and offline mode (see :mod:`safenpz._fetch`).

* The cache directory is ``$SAFENPZ_CACHE_DIR`` when set, else
  ``platformdirs.user_cache_dir("safenpz")``; it is created on demand.
* Keras 3 keeps its downloads in ``$KERAS_HOME/datasets`` (else
  ``~/.keras/datasets``, or ``/tmp/.keras/datasets`` when the home directory
  is not writable); tf.keras / tf_keras 2.x always use ``~/.keras/datasets``,
  whatever ``KERAS_HOME`` says, so all are searched.
* ``$SAFENPZ_DATASETS_URL`` replaces the Keras origin (mirrors, tests).
* ``$SAFENPZ_OFFLINE=1`` (or ``true``/``yes``) forbids every download.
* Only ``http://`` and ``https://`` URLs are accepted.
"""

from __future__ import annotations

import os
import tempfile
import urllib.parse
from pathlib import Path
from typing import Final

import platformdirs

from safenpz._exceptions import DownloadError, Where

__all__ = [
    "ALLOWED_SCHEMES",
    "CACHE_DIR_ENV",
    "DATASETS_URL_ENV",
    "KERAS_HOME_ENV",
    "KERAS_ORIGIN",
    "OFFLINE_ENV",
    "base_url",
    "cache_dir",
    "ensure_dir",
    "is_offline",
    "keras_cache_dirs",
    "scheme",
]

KERAS_ORIGIN: Final = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
"""Where Keras downloads its datasets from."""

CACHE_DIR_ENV: Final = "SAFENPZ_CACHE_DIR"
OFFLINE_ENV: Final = "SAFENPZ_OFFLINE"
DATASETS_URL_ENV: Final = "SAFENPZ_DATASETS_URL"
KERAS_HOME_ENV: Final = "KERAS_HOME"

_TRUE_VALUES: Final = frozenset({"1", "true", "yes"})
ALLOWED_SCHEMES: Final = frozenset({"http", "https"})


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
    return ensure_dir(path)


def ensure_dir(path: Path) -> Path:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        msg = (
            f"cannot create the safenpz cache directory: {err}. Point "
            f"${CACHE_DIR_ENV} at a writable directory "
            f"(e.g. {CACHE_DIR_ENV}=/path/to/cache) or fix its permissions."
        )
        raise DownloadError(msg, where=Where(source=str(path))) from err
    if not path.is_dir():  # e.g. a dangling symlink mkdir(exist_ok) accepted
        msg = (
            "the safenpz cache directory is not a directory. Point "
            f"${CACHE_DIR_ENV} at a writable directory."
        )
        raise DownloadError(msg, where=Where(source=str(path)))
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
    if scheme(url) not in ALLOWED_SCHEMES:
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


def scheme(url: str) -> str:
    """The lower-case scheme of `url` (``""`` when it has none)."""
    return urllib.parse.urlsplit(url).scheme.lower()
