"""Tests for safenpz._fetch: download, hash check, cache, offline, Keras reuse.

No network: every download goes to a ThreadingHTTPServer on 127.0.0.1 started
by the ``server`` fixture, which counts the requests it receives.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import http.server
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import platformdirs
import pytest

from safenpz import _fetch, _fetch_progress
from safenpz._exceptions import DownloadError, HashMismatchError, SafenpzError
from safenpz._fetch import (
    base_url,
    cache_dir,
    download_action,
    fetch,
    file_hash,
    hash_matches,
    is_offline,
    keras_cache_dirs,
    parse_known_hash,
)

BODY = bytes(range(256)) * 800 + b"tail"  # 204,804 bytes: several read chunks
SHA256 = hashlib.sha256(BODY).hexdigest()
MD5 = hashlib.md5(BODY).hexdigest()
OTHER = b"not the file you are looking for"
FNAME = "data.npz"

Mode = Literal["ok", "truncate", "nolength", "hang", "stall", "redirect", "barrier"]


# -- local HTTP server -------------------------------------------------------


@dataclasses.dataclass
class Route:
    body: bytes = BODY
    status: int = 200
    mode: Mode = "ok"
    location: str = ""
    delay: float = 0.0  # seconds between body chunks


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handler threads
    block_on_close = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route] = {}
        self.hits: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.barrier = threading.Barrier(2, timeout=30)

    def url(self, path: str) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/{path.lstrip('/')}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep stderr clean for the progress-bar tests

    def do_GET(self) -> None:
        srv = self.server
        path = urllib.parse.urlsplit(self.path).path
        with srv.lock:
            srv.hits[path] += 1
        route = srv.routes.get(path)
        if route is None:
            self.send_error(404)
            return
        if route.mode == "hang":  # never answer; the client must time out
            srv.release.wait(30)
            return
        if route.mode == "barrier":  # proceed only when two clients are here
            srv.barrier.wait()
        if route.status != 200:
            self.send_error(route.status)
            return
        if route.mode == "redirect":
            self.send_response(302)
            self.send_header("Location", route.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        if route.mode != "nolength":
            extra = 1000 if route.mode == "truncate" else 0
            self.send_header("Content-Length", str(len(route.body) + extra))
        self.end_headers()
        for start in range(0, len(route.body), 32768):
            self.wfile.write(route.body[start : start + 32768])
            self.wfile.flush()
            if route.mode == "stall":
                srv.release.wait(30)
                return
            if route.delay:
                time.sleep(route.delay)
        # HTTP/1.0: the connection closes after the handler returns, so a
        # "truncate" route ends short of its Content-Length.


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.barrier.abort()
        srv.shutdown()
        srv.server_close()
        thread.join(10)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the real ~/.keras, cache dir or proxies."""
    for var in (
        "SAFENPZ_OFFLINE",
        "SAFENPZ_DATASETS_URL",
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.setenv("SAFENPZ_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def leftovers(directory: Path) -> list[str]:
    if not directory.exists():
        return []
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


# -- locations and settings ----------------------------------------------------


def test_cache_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "custom" / "nested"
    monkeypatch.setenv("SAFENPZ_CACHE_DIR", str(target))
    assert cache_dir() == target
    assert target.is_dir()


def test_cache_dir_default_is_platformdirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAFENPZ_CACHE_DIR")
    fake = tmp_path / "platformdirs"
    calls: list[str] = []

    def user_cache_dir(appname: str) -> str:
        calls.append(appname)
        return str(fake / appname)

    monkeypatch.setattr(platformdirs, "user_cache_dir", user_cache_dir)
    assert cache_dir() == fake / "safenpz"
    assert calls == ["safenpz"]
    assert (fake / "safenpz").is_dir()


def test_fetch_uses_cache_dir_from_env(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "elsewhere"
    monkeypatch.setenv("SAFENPZ_CACHE_DIR", str(target))
    server.routes["/d"] = Route()
    path = fetch(server.url("d"), fname=FNAME, known_hash=SHA256)
    assert path == target / FNAME
    assert path.read_bytes() == BODY


def test_unwritable_cache_dir_from_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    bad = blocker / "cache"  # cannot exist: its parent is a regular file
    monkeypatch.setenv("SAFENPZ_CACHE_DIR", str(bad))
    with pytest.raises(DownloadError, match="SAFENPZ_CACHE_DIR") as info:
        cache_dir()
    assert str(bad) in str(info.value)
    assert isinstance(info.value.__cause__, OSError)


def test_unwritable_cache_dir_argument(server: _Server, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    server.routes["/d"] = Route()
    with pytest.raises(DownloadError, match="cache directory"):
        fetch(server.url("d"), fname=FNAME, known_hash=SHA256, cache_dir=blocker)
    assert server.hits["/d"] == 0


def test_cache_dir_where_no_file_can_be_created(
    server: _Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # chmod cannot stop root, so simulate the EACCES the temp file would hit.
    def refuse(**kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(kwargs["dir"]))

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    server.routes["/d"] = Route()
    with pytest.raises(DownloadError, match="cannot write to the cache directory"):
        fetch(server.url("d"), fname=FNAME, known_hash=SHA256)
    assert not (cache / FNAME).exists()


def test_keras_cache_dirs_with_keras_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KERAS_HOME first (Keras 3), then ~/.keras, where tf.keras 2.x always
    downloads whatever KERAS_HOME says."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    dirs = keras_cache_dirs()
    assert dirs[:2] == [
        tmp_path / "kh" / "datasets",
        tmp_path / "home" / ".keras" / "datasets",
    ]


def test_keras_cache_dirs_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KERAS_HOME")
    dirs = keras_cache_dirs()
    assert dirs[0] == tmp_path / "home" / ".keras" / "datasets"
    assert len(dirs) >= 2
    assert all(d.parts[-2:] == (".keras", "datasets") for d in dirs[1:])
    if Path("/tmp").is_dir():
        assert Path("/tmp/.keras/datasets") in dirs


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, _fetch.KERAS_ORIGIN),
        ("http://127.0.0.1:9/mirror", "http://127.0.0.1:9/mirror/"),
        ("https://example.org/m/", "https://example.org/m/"),
        ("  ", _fetch.KERAS_ORIGIN),
    ],
    ids=["default", "adds-slash", "keeps-slash", "blank-is-unset"],
)
def test_base_url(
    value: str | None, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is not None:
        monkeypatch.setenv("SAFENPZ_DATASETS_URL", value)
    assert base_url() == expected
    assert base_url().endswith("/")


def test_keras_origin() -> None:
    assert _fetch.KERAS_ORIGIN == (
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
    )


@pytest.mark.parametrize("value", ["file:///srv/mirror", "ftp://host/x", "mirror/"])
def test_base_url_rejects_non_http(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFENPZ_DATASETS_URL", value)
    with pytest.raises(DownloadError, match="SAFENPZ_DATASETS_URL"):
        base_url()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        ("1", True),
        ("true", True),
        ("TRUE", True),
        ("Yes", True),
        (" yes ", True),
        ("0", False),
        ("false", False),
        ("no", False),
        ("", False),
        ("on", False),
    ],
)
def test_is_offline(
    value: str | None, expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is not None:
        monkeypatch.setenv("SAFENPZ_OFFLINE", value)
    assert is_offline() is expected


# -- hashes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("known", "expected"),
    [
        (f"sha256:{SHA256}", ("sha256", SHA256)),
        (SHA256, ("sha256", SHA256)),
        (SHA256.upper(), ("sha256", SHA256)),
        (f"SHA256:{SHA256.upper()}", ("sha256", SHA256)),
        (f"md5:{MD5}", ("md5", MD5)),
        (MD5, ("md5", MD5)),
        (
            "sha1:" + hashlib.sha1(BODY).hexdigest(),
            ("sha1", hashlib.sha1(BODY).hexdigest()),
        ),
    ],
    ids=["sha256", "bare-sha256", "upper", "upper-alg", "md5", "bare-md5", "sha1"],
)
def test_parse_known_hash(known: str, expected: tuple[str, str]) -> None:
    assert parse_known_hash(known) == expected


@pytest.mark.parametrize(
    "known",
    [
        "",
        "abc",
        "crc32:" + "0" * 8,
        "sha256:" + "0" * 63,
        "md5:" + "0" * 64,
        "sha256:" + "g" * 64,
        "z" * 64,
        "0" * 40,  # bare sha1 is ambiguous: Keras would not read it either
    ],
    ids=["empty", "short", "alg", "len", "md5-len", "nonhex", "bare-nonhex", "bare-40"],
)
def test_parse_known_hash_rejects(known: str) -> None:
    with pytest.raises(ValueError, match=r"hash|digest"):
        parse_known_hash(known)


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
@pytest.mark.parametrize("alg", ["sha256", "md5", "sha1", "sha512"])
def test_file_hash(tmp_path: Path, alg: str, chunk: int) -> None:
    path = tmp_path / "f"
    data = BODY[:5000] if chunk < 100 else BODY
    path.write_bytes(data)
    assert file_hash(path, alg, chunk) == hashlib.new(alg, data).hexdigest()


def test_file_hash_empty_file_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert file_hash(path) == hashlib.sha256(b"").hexdigest()
    with pytest.raises(ValueError, match="unsupported hash algorithm"):
        file_hash(path, "crc32")
    with pytest.raises(ValueError, match="chunk"):
        file_hash(path, chunk=0)
    with pytest.raises(FileNotFoundError):
        file_hash(tmp_path / "missing")


def test_hash_matches(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(BODY)
    assert hash_matches(path, SHA256)
    assert hash_matches(path, f"md5:{MD5}")
    assert hash_matches(path, None)
    assert not hash_matches(path, hashlib.sha256(OTHER).hexdigest())


# -- deciding ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cached", "keras_copy", "offline", "expected"),
    [
        ("valid", False, False, "use-cache"),
        ("valid", True, True, "use-cache"),
        ("missing", True, False, "use-keras"),
        ("invalid", True, True, "use-keras"),
        ("missing", False, True, "refuse-offline"),
        ("invalid", False, True, "refuse-offline"),
        ("missing", False, False, "download"),
        ("invalid", False, False, "update"),
    ],
)
def test_download_action(
    cached: _fetch.CacheState, keras_copy: bool, offline: bool, expected: str
) -> None:
    assert download_action(cached, keras_copy=keras_copy, offline=offline) == expected


# -- fetch: the happy path -------------------------------------------------------


@pytest.mark.parametrize(
    "known",
    [SHA256, f"sha256:{SHA256}", f"md5:{MD5}", MD5, None],
    ids=["bare-sha256", "sha256", "md5", "bare-md5", "no-hash"],
)
def test_download_then_cached(server: _Server, cache: Path, known: str | None) -> None:
    server.routes["/d"] = Route()
    path = fetch(server.url("d"), fname=FNAME, known_hash=known)
    assert path == cache / FNAME
    assert path.read_bytes() == BODY
    assert server.hits["/d"] == 1
    assert leftovers(cache) == []
    again = fetch(server.url("d"), fname=FNAME, known_hash=known)
    assert again == path
    assert server.hits["/d"] == 1  # no second request


def test_download_without_content_length(server: _Server, cache: Path) -> None:
    server.routes["/d"] = Route(mode="nolength")
    path = fetch(server.url("d"), fname=FNAME, known_hash=SHA256)
    assert path.read_bytes() == BODY


def test_download_empty_file(server: _Server, cache: Path) -> None:
    server.routes["/d"] = Route(body=b"")
    empty = hashlib.sha256(b"").hexdigest()
    assert fetch(server.url("d"), fname=FNAME, known_hash=empty).read_bytes() == b""


def test_explicit_cache_dir_argument(server: _Server, tmp_path: Path) -> None:
    server.routes["/d"] = Route()
    target = tmp_path / "explicit" / "dir"
    path = fetch(server.url("d"), fname=FNAME, known_hash=SHA256, cache_dir=target)
    assert path == target / FNAME
    assert path.read_bytes() == BODY
    assert not (tmp_path / "cache" / FNAME).exists()


def test_follows_http_redirect(server: _Server, cache: Path) -> None:
    server.routes["/real"] = Route()
    server.routes["/old"] = Route(mode="redirect", location=server.url("real"))
    path = fetch(server.url("old"), fname=FNAME, known_hash=SHA256)
    assert path.read_bytes() == BODY
    assert server.hits["/real"] == 1


def test_fetch_with_base_url_mirror(
    server: _Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.routes["/mirror/data.npz"] = Route()
    monkeypatch.setenv("SAFENPZ_DATASETS_URL", server.url("mirror"))
    path = fetch(base_url() + FNAME, fname=FNAME, known_hash=SHA256)
    assert path.read_bytes() == BODY


# -- fetch: the cache is never trusted blindly -----------------------------------


def test_damaged_cached_file_is_redownloaded(server: _Server, cache: Path) -> None:
    cache.mkdir()
    (cache / FNAME).write_bytes(BODY[:-1])  # e.g. an old truncated copy
    server.routes["/d"] = Route()
    path = fetch(server.url("d"), fname=FNAME, known_hash=SHA256)
    assert path.read_bytes() == BODY
    assert server.hits["/d"] == 1
    assert leftovers(cache) == []


def test_cached_file_without_hash_is_used(server: _Server, cache: Path) -> None:
    cache.mkdir()
    (cache / FNAME).write_bytes(OTHER)
    server.routes["/d"] = Route()
    path = fetch(server.url("d"), fname=FNAME, known_hash=None)
    assert path.read_bytes() == OTHER
    assert server.hits["/d"] == 0


def test_failed_redownload_keeps_old_file_intact(server: _Server, cache: Path) -> None:
    cache.mkdir()
    (cache / FNAME).write_bytes(OTHER)
    server.routes["/d"] = Route(mode="truncate")
    with pytest.raises(DownloadError, match="truncated"):
        fetch(server.url("d"), fname=FNAME, known_hash=SHA256)
    # The untrusted old file was not overwritten by a partial one ...
    assert (cache / FNAME).read_bytes() == OTHER
    assert leftovers(cache) == []
    # ... and is still not trusted.
    server.routes["/d"] = Route()
    assert fetch(server.url("d"), fname=FNAME, known_hash=SHA256).read_bytes() == BODY


# -- fetch: failures leave nothing behind -----------------------------------------


def test_hash_mismatch(server: _Server, cache: Path) -> None:
    server.routes["/d"] = Route(body=OTHER)
    url = server.url("d")
    with pytest.raises(HashMismatchError) as info:
        fetch(url, fname=FNAME, known_hash=SHA256)
    msg = str(info.value)
    assert SHA256 in msg
    assert hashlib.sha256(OTHER).hexdigest() in msg
    assert url in msg
    assert "retry" in msg
    assert isinstance(info.value, ValueError)
    assert not (cache / FNAME).exists()
    assert leftovers(cache) == []


def test_hash_mismatch_carries_its_source(server: _Server, cache: Path) -> None:
    server.routes["/d"] = Route(body=OTHER)
    url = server.url("d")
    with pytest.raises(HashMismatchError) as info:
        fetch(url, fname=FNAME, known_hash=SHA256)
    err = info.value
    assert err.source == url
    assert err.member is None
    assert str(err).startswith(f"{url}: hash mismatch for {FNAME!r}: expected ")


def test_download_errors_carry_their_source(server: _Server, cache: Path) -> None:
    server.routes["/d"] = Route(body=BODY, status=404)
    url = server.url("d")
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        fetch(url, fname=FNAME, known_hash=SHA256)
    assert info.value.source == url


def test_hash_mismatch_md5(server: _Server, cache: Path) -> None:
    server.routes["/d"] = Route(body=OTHER)
    with pytest.raises(HashMismatchError, match=f"md5:{MD5}"):
        fetch(server.url("d"), fname=FNAME, known_hash=f"md5:{MD5}")
    assert not (cache / FNAME).exists()


@pytest.mark.parametrize("known", [SHA256, None], ids=["hash", "no-hash"])
def test_truncated_transfer(server: _Server, cache: Path, known: str | None) -> None:
    server.routes["/d"] = Route(mode="truncate")
    total = len(BODY) + 1000
    with pytest.raises(
        DownloadError, match=f"truncated transfer: got {len(BODY)} of {total} bytes"
    ):
        fetch(server.url("d"), fname=FNAME, known_hash=known)
    assert not (cache / FNAME).exists()
    assert leftovers(cache) == []


@pytest.mark.parametrize("status", [404, 500, 403])
def test_http_error_status(server: _Server, cache: Path, status: int) -> None:
    server.routes["/d"] = Route(status=status)
    url = server.url("d")
    with pytest.raises(DownloadError, match=f"HTTP {status}") as info:
        fetch(url, fname=FNAME, known_hash=SHA256)
    assert url in str(info.value)
    assert str(cache / FNAME) in str(info.value)  # where to put it by hand
    assert isinstance(info.value, OSError)
    assert isinstance(info.value.__cause__, urllib.error.HTTPError)
    assert not (cache / FNAME).exists()
    assert leftovers(cache) == []


def test_connection_refused(cache: Path) -> None:
    with socket.socket() as sock:  # find a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/d"
    with pytest.raises(DownloadError, match="network") as info:
        fetch(url, fname=FNAME, known_hash=SHA256, timeout=5)
    assert isinstance(info.value.__cause__, urllib.error.URLError)
    assert leftovers(cache) == []


@pytest.mark.parametrize("mode", ["hang", "stall"], ids=["no-response", "mid-body"])
def test_timeout(server: _Server, cache: Path, mode: Mode) -> None:
    server.routes["/d"] = Route(mode=mode)
    with pytest.raises(DownloadError, match=r"timed out after 0\.3 s"):
        fetch(server.url("d"), fname=FNAME, known_hash=SHA256, timeout=0.3)
    assert not (cache / FNAME).exists()
    assert leftovers(cache) == []


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://127.0.0.1/d", "data:,hello", "/local/path", ""],
)
def test_only_http_urls(url: str, cache: Path) -> None:
    with pytest.raises(DownloadError, match="only http:// and https://"):
        fetch(url, fname=FNAME, known_hash=SHA256)


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/x"])
def test_redirect_to_non_http_is_refused(
    server: _Server, cache: Path, target: str
) -> None:
    server.routes["/d"] = Route(mode="redirect", location=target)
    with pytest.raises(DownloadError, match="302") as info:
        fetch(server.url("d"), fname=FNAME, known_hash=None)
    assert "not allowed" in str(info.value) or "refused" in str(info.value)
    assert not (cache / FNAME).exists()
    assert leftovers(cache) == []


@pytest.mark.parametrize("fname", ["", ".", "..", "../x.npz", "a/b.npz", "a\\b.npz"])
def test_fname_must_be_plain(fname: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        fetch("http://127.0.0.1:9/x", fname=fname, known_hash=None)
    assert list(tmp_path.iterdir()) == [tmp_path / "home"]  # nothing written


def test_malformed_known_hash(server: _Server) -> None:
    server.routes["/d"] = Route()
    with pytest.raises(ValueError, match="bare hash"):
        fetch(server.url("d"), fname=FNAME, known_hash="1234")
    assert server.hits["/d"] == 0


@pytest.mark.usefixtures("builtin_bar")
def test_keyboard_interrupt_cleans_up(
    server: _Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(self: object, done: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_fetch_progress._ProgressBar, "update", interrupt)
    server.routes["/d"] = Route()
    with pytest.raises(KeyboardInterrupt):
        fetch(server.url("d"), fname=FNAME, known_hash=SHA256, progress=True)
    assert not (cache / FNAME).exists()
    assert leftovers(cache) == []


def test_disk_error_while_writing(
    server: _Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    server.routes["/d"] = Route()
    with pytest.raises(DownloadError, match="No space left on device"):
        fetch(server.url("d"), fname=FNAME, known_hash=SHA256)
    assert not (cache / FNAME).exists()
    assert leftovers(cache) == []


def test_replace_blocked_but_identical_file_present(
    server: _Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows: a concurrent fetch placed the file and a reader holds it open."""

    def blocked(src: object, dst: object) -> None:
        Path(str(dst)).write_bytes(BODY)  # the other process won the race
        raise PermissionError(13, "Access is denied", str(dst))

    monkeypatch.setattr(os, "replace", blocked)
    server.routes["/d"] = Route()
    path = fetch(server.url("d"), fname=FNAME, known_hash=SHA256)
    assert path.read_bytes() == BODY
    assert leftovers(cache) == []


def test_replace_blocked_and_no_good_file(
    server: _Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def blocked(src: object, dst: object) -> None:
        raise PermissionError(13, "Access is denied", str(dst))

    monkeypatch.setattr(os, "replace", blocked)
    server.routes["/d"] = Route()
    with pytest.raises(DownloadError, match="Access is denied"):
        fetch(server.url("d"), fname=FNAME, known_hash=SHA256)
    assert leftovers(cache) == []


# -- offline mode ------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_offline_without_cached_file(
    server: _Server, cache: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SAFENPZ_OFFLINE", value)
    server.routes["/d"] = Route()
    url = server.url("d")
    with pytest.raises(DownloadError, match="offline mode is on") as info:
        fetch(url, fname=FNAME, known_hash=SHA256)
    msg = str(info.value)
    assert "SAFENPZ_OFFLINE" in msg
    assert url in msg
    assert str(cache / FNAME) in msg
    assert server.hits["/d"] == 0


def test_offline_with_cached_file(
    server: _Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.mkdir()
    (cache / FNAME).write_bytes(BODY)
    monkeypatch.setenv("SAFENPZ_OFFLINE", "1")
    server.routes["/d"] = Route()
    assert fetch(server.url("d"), fname=FNAME, known_hash=SHA256) == cache / FNAME
    assert server.hits["/d"] == 0


def test_offline_with_damaged_cached_file(
    server: _Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.mkdir()
    (cache / FNAME).write_bytes(OTHER)
    server.routes["/d"] = Route()
    with pytest.raises(DownloadError, match="does not match the expected hash"):
        fetch(server.url("d"), fname=FNAME, known_hash=SHA256, offline=True)
    assert server.hits["/d"] == 0


def test_offline_error_names_rejected_keras_copies(
    server: _Server, cache: Path, tmp_path: Path
) -> None:
    keras3 = tmp_path / "keras" / "datasets" / FNAME
    tf_keras = tmp_path / "home" / ".keras" / "datasets" / FNAME
    for path in (keras3, tf_keras):
        path.parent.mkdir(parents=True)
        path.write_bytes(OTHER)  # e.g. an interrupted Keras download
    with pytest.raises(DownloadError, match="found but rejected") as info:
        fetch(server.url("d"), fname=FNAME, known_hash=SHA256, offline=True)
    msg = str(info.value)
    assert f"{str(keras3)!r} and {str(tf_keras)!r} were found" in msg
    assert f"does not match the expected hash {SHA256}" in msg
    assert f"put it at {str(cache / FNAME)!r}" in msg
    assert server.hits["/d"] == 0


def test_offline_error_says_where_it_looked(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="No copy was found") as info:
        fetch(server.url("d"), fname=FNAME, known_hash=SHA256, offline=True)
    assert str(tmp_path / "home" / ".keras" / "datasets") in str(info.value)


def test_tf_keras_copy_is_reused_although_keras_home_is_set(
    server: _Server, tmp_path: Path
) -> None:
    tf_keras = tmp_path / "home" / ".keras" / "datasets" / FNAME
    tf_keras.parent.mkdir(parents=True)
    tf_keras.write_bytes(BODY)
    assert fetch(server.url("d"), fname=FNAME, known_hash=SHA256) == tf_keras
    assert server.hits["/d"] == 0


def test_offline_argument_overrides_env(
    server: _Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.routes["/d"] = Route()
    with pytest.raises(DownloadError, match="offline"):
        fetch(server.url("d"), fname=FNAME, known_hash=SHA256, offline=True)
    monkeypatch.setenv("SAFENPZ_OFFLINE", "1")
    path = fetch(server.url("d"), fname=FNAME, known_hash=SHA256, offline=False)
    assert path.read_bytes() == BODY


# -- reuse of Keras's cache ------------------------------------------------------------


@pytest.fixture
def keras_file(tmp_path: Path) -> Path:
    path = tmp_path / "keras" / "datasets" / FNAME
    path.parent.mkdir(parents=True)
    return path


def test_reuses_matching_keras_file(
    server: _Server, cache: Path, keras_file: Path
) -> None:
    keras_file.write_bytes(BODY)
    server.routes["/d"] = Route()
    assert fetch(server.url("d"), fname=FNAME, known_hash=SHA256) == keras_file
    assert fetch(server.url("d"), fname=FNAME, known_hash=f"md5:{MD5}") == keras_file
    assert server.hits["/d"] == 0
    assert not (cache / FNAME).exists()  # read-only reuse: no copy
    assert keras_file.read_bytes() == BODY


def test_reuses_keras_file_when_offline(
    server: _Server, keras_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keras_file.write_bytes(BODY)
    monkeypatch.setenv("SAFENPZ_OFFLINE", "1")
    assert fetch(server.url("d"), fname=FNAME, known_hash=SHA256) == keras_file


def test_reuses_keras_file_from_default_home(
    server: _Server, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KERAS_HOME")
    path = tmp_path / "home" / ".keras" / "datasets" / FNAME
    path.parent.mkdir(parents=True)
    path.write_bytes(BODY)
    assert fetch(server.url("d"), fname=FNAME, known_hash=SHA256) == path
    assert server.hits["/d"] == 0


def test_ignores_keras_file_with_wrong_hash(
    server: _Server, cache: Path, keras_file: Path
) -> None:
    keras_file.write_bytes(OTHER)
    server.routes["/d"] = Route()
    path = fetch(server.url("d"), fname=FNAME, known_hash=SHA256)
    assert path == cache / FNAME
    assert path.read_bytes() == BODY
    assert server.hits["/d"] == 1
    assert keras_file.read_bytes() == OTHER  # left alone


def test_keras_file_ignored_without_known_hash(
    server: _Server, cache: Path, keras_file: Path
) -> None:
    keras_file.write_bytes(OTHER)
    server.routes["/d"] = Route()
    assert fetch(server.url("d"), fname=FNAME, known_hash=None) == cache / FNAME
    assert server.hits["/d"] == 1


def test_keras_search_can_be_disabled(
    server: _Server, cache: Path, keras_file: Path
) -> None:
    keras_file.write_bytes(BODY)
    server.routes["/d"] = Route()
    path = fetch(
        server.url("d"), fname=FNAME, known_hash=SHA256, search_keras_cache=False
    )
    assert path == cache / FNAME
    assert server.hits["/d"] == 1


def test_own_cache_preferred_over_keras(
    server: _Server, cache: Path, keras_file: Path
) -> None:
    cache.mkdir()
    (cache / FNAME).write_bytes(BODY)
    keras_file.write_bytes(BODY)
    assert fetch(server.url("d"), fname=FNAME, known_hash=SHA256) == cache / FNAME


# -- concurrency ----------------------------------------------------------------------

_CHILD = """
import sys
from safenpz._fetch import fetch
path = fetch(sys.argv[1], fname=sys.argv[2], known_hash=sys.argv[3], progress=False)
print(path)
"""


def test_two_processes_fetch_at_once(server: _Server, cache: Path) -> None:
    # The server answers only once both requests arrived, then streams slowly,
    # so the two downloads really overlap.
    server.routes["/d"] = Route(mode="barrier", delay=0.01)
    src = Path(_fetch.__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(src), *filter(None, [env.get("PYTHONPATH")])]
    )
    args = [sys.executable, "-c", _CHILD, server.url("d"), FNAME, SHA256]
    procs = [
        subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append((proc.returncode, out.strip(), err))
    for returncode, out, err in results:
        assert returncode == 0, err
        assert Path(out) == cache / FNAME
    assert server.hits["/d"] == 2
    assert file_hash(cache / FNAME) == SHA256
    assert leftovers(cache) == []


def test_two_threads_fetch_at_once(server: _Server, cache: Path) -> None:
    server.routes["/d"] = Route(mode="barrier", delay=0.005)
    results: list[Path | BaseException] = []

    def run() -> None:
        try:
            results.append(fetch(server.url("d"), fname=FNAME, known_hash=SHA256))
        except BaseException as err:  # reported by the assert below
            results.append(err)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [cache / FNAME, cache / FNAME]
    assert file_hash(cache / FNAME) == SHA256
    assert leftovers(cache) == []


# -- progress ------------------------------------------------------------------------


@pytest.fixture
def builtin_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    """The built-in bar, as when tqdm is not installed."""
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)


def test_tqdm_bar_when_installed(
    server: _Server, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tqdm")
    server.routes["/d"] = Route()
    fetch(server.url("d"), fname=FNAME, known_hash=SHA256, progress=True)
    err = capsys.readouterr().err
    assert f"Downloading {FNAME}: 100%" in err
    assert "200k/200k" in err  # tqdm's bytes with unit_divisor=1024
    assert "B/s]" in err  # tqdm's rate (and ETA before it)
    assert err.endswith("\n")


def test_tqdm_bar_closes_on_interrupt(
    server: _Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tqdm")

    def interrupt(self: object, done: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_fetch_progress._TqdmBar, "update", interrupt)
    server.routes["/d"] = Route()
    with pytest.raises(KeyboardInterrupt):
        fetch(server.url("d"), fname=FNAME, known_hash=SHA256, progress=True)
    assert leftovers(cache) == []


@pytest.mark.usefixtures("builtin_bar")
def test_progress_on_stderr(
    server: _Server, capsys: pytest.CaptureFixture[str]
) -> None:
    server.routes["/d"] = Route()
    fetch(server.url("d"), fname=FNAME, known_hash=SHA256, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"Downloading {FNAME}" in captured.err
    assert "100%" in captured.err
    assert "/s" in captured.err
    assert captured.err.endswith("\n")


@pytest.mark.usefixtures("builtin_bar")
def test_progress_without_content_length(
    server: _Server, capsys: pytest.CaptureFixture[str]
) -> None:
    server.routes["/d"] = Route(mode="nolength")
    fetch(server.url("d"), fname=FNAME, known_hash=SHA256, progress=True)
    err = capsys.readouterr().err
    assert "200.0 KiB" in err
    assert "%" not in err


@pytest.mark.usefixtures("builtin_bar")
def test_progress_ends_line_on_failure(
    server: _Server, capsys: pytest.CaptureFixture[str]
) -> None:
    server.routes["/d"] = Route(body=OTHER)
    with pytest.raises(HashMismatchError):
        fetch(server.url("d"), fname=FNAME, known_hash=SHA256, progress=True)
    assert capsys.readouterr().err.endswith("\n")


@pytest.mark.parametrize("progress", [None, False], ids=["auto-not-a-tty", "off"])
def test_no_progress(
    server: _Server, capfd: pytest.CaptureFixture[str], progress: bool | None
) -> None:
    server.routes["/d"] = Route()
    fetch(server.url("d"), fname=FNAME, known_hash=SHA256, progress=progress)
    assert capfd.readouterr().err == ""


def test_progress_auto_on_tty(
    server: _Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    server.routes["/d"] = Route()
    fetch(server.url("d"), fname=FNAME, known_hash=SHA256)
    assert f"Downloading {FNAME}" in capsys.readouterr().err


def test_progress_bar_is_throttled(capsys: pytest.CaptureFixture[str]) -> None:
    start = time.monotonic()
    bar = _fetch_progress._ProgressBar(sys.stderr, "x", 10_000)
    for done in range(1, 10_001):
        bar.update(done)
    bar.close()
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    draws = err.count("\r")
    assert draws <= elapsed / 0.1 + 3
    final = err.rsplit("\r", 1)[-1]
    assert "(100%)" in final
    assert final.endswith("\n")


# -- errors are ours -------------------------------------------------------------------


def test_errors_are_safenpz_errors() -> None:
    assert issubclass(DownloadError, SafenpzError)
    assert issubclass(DownloadError, OSError)
    assert issubclass(HashMismatchError, SafenpzError)
    assert issubclass(HashMismatchError, ValueError)


def test_all_names_exist() -> None:
    for name in _fetch.__all__:
        assert hasattr(_fetch, name)
