"""A local dataset server for the tests: no test touches the network.

:class:`Server` is a ThreadingHTTPServer on 127.0.0.1 that serves files from
memory (``files``), counts requests (``hits``) and can fail on purpose
(``modes``: ``"error"`` answers HTTP 500, ``"truncate"`` promises 1000 bytes
more than it sends). :func:`serve` puts a generated file there under a remote
name and makes its hash the one safenpz knows for that name.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from safenpz.datasets import _spec

__all__ = ["Server", "serve"]


class Server(http.server.ThreadingHTTPServer):
    """Files from memory on an ephemeral port of 127.0.0.1 (``url``)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.modes: dict[str, str] = {}
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        name = self.path.lstrip("/")
        with self.server.lock:
            self.server.hits[name] = self.server.hits.get(name, 0) + 1
        body = self.server.files.get(name)
        mode = self.server.modes.get(name, "ok")
        if body is None or mode == "error":
            self.send_error(404 if body is None else 500)
            return
        self.send_response(200)
        extra = 1000 if mode == "truncate" else 0
        self.send_header("Content-Length", str(len(body) + extra))
        self.end_headers()
        self.wfile.write(body)


def serve(
    server: Server, monkeypatch: pytest.MonkeyPatch, remote: str, file: Path
) -> None:
    """Serve `file` as `remote` and make its hash the known one."""
    server.files[remote] = file.read_bytes()
    alg = "md5" if remote.endswith(".json") else "sha256"
    digest = hashlib.new(alg, file.read_bytes()).hexdigest()
    monkeypatch.setitem(_spec.KNOWN_HASHES, remote, f"{alg}:{digest}")
