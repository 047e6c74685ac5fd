"""Loopback HTTP servers that misbehave on purpose, for download tests.

`FakeServer` listens on 127.0.0.1 only (an ephemeral port), serves files from a
dict with HTTP Range support, records every request (path, headers), and plays
per-path scripts of misbehaviour, one step per request:

    "403" / "404" / "500" ...   answer with that status
    ("429", seconds)            429 with a Retry-After header
    ("drop", n)                 promise the whole body, send n bytes, close the socket
    "corrupt"                   send the right length of wrong bytes
    "ignore-range"              answer 200 with the whole body despite a Range header
    "wrong-range"               answer 206 but from byte 0, whatever the Range asked

Routes can also be Python callables (for fake JSON APIs). The server shuts
itself down after `lifetime_s` even if a test forgets to, and every handler
socket has a timeout, so nothing can hang the suite.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import tarfile
import threading
import time
import zipfile
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Seen, dict[str, list[str]]], Reply]


class FakeServer:
    """A threaded loopback server; use as a context manager."""

    def __init__(self, lifetime_s: float = 120.0) -> None:
        self.files: dict[str, bytes] = {}
        self.routes: dict[str, Handler] = {}
        self.scripts: dict[str, deque] = defaultdict(deque)
        self.basic_auth: tuple[str, str] | None = None
        self.auth_realm_prefix = "/"
        self.requests: list[Seen] = []
        self.delay_s = 0.0  # per file response, so parallel transfers overlap on the server
        self.active = self.max_active = 0
        self._lock = threading.Lock()
        self._lifetime = lifetime_s
        server = self

        class _H(BaseHTTPRequestHandler):
            timeout = 10  # a stuck client connection cannot hang the suite

            def log_message(self, *a: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_POST(self) -> None:
                server._handle(self, "POST")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> FakeServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self._lifetime, self._httpd.shutdown)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # --- what tests look at -------------------------------------------------------------
    def seen(self, path: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def script(self, path: str, *steps: Any) -> None:
        self.scripts[path].extend(steps)

    # --- serving ------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        seen = Seen(method, parts.path, {k: v for k, v in h.headers.items()}, body)
        with self._lock:
            self.requests.append(seen)
            step = self.scripts[parts.path].popleft() if self.scripts[parts.path] else None
        if self.basic_auth and parts.path.startswith(self.auth_realm_prefix):
            want = "Basic " + base64.b64encode(":".join(self.basic_auth).encode()).decode()
            if h.headers.get("Authorization") != want:
                self._send(h, Reply(401, b"login required",
                                    {"WWW-Authenticate": 'Basic realm="fake"'}))
                return
        if isinstance(step, str) and step.isdigit():
            self._send(h, Reply(int(step), f"scripted {step}".encode()))
            return
        if isinstance(step, tuple) and step[0] == "429":
            self._send(h, Reply(429, b"slow down", {"Retry-After": str(step[1])}))
            return
        if parts.path in self.routes:
            query = parse_qs(parts.query)
            if method == "POST":
                query.update(parse_qs(body.decode()))
            self._send(h, self.routes[parts.path](seen, query))
            return
        if parts.path not in self.files:
            self._send(h, Reply(404, b"no such file"))
            return
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            self._send_file(h, self.files[parts.path], step)
        finally:
            with self._lock:
                self.active -= 1

    def _send(self, h: BaseHTTPRequestHandler, r: Reply) -> None:
        h.send_response(r.status)
        for k, v in r.headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(r.body)))
        h.end_headers()
        h.wfile.write(r.body)

    def _send_file(self, h: BaseHTTPRequestHandler, data: bytes, step: Any) -> None:
        start = 0
        rng = h.headers.get("Range")
        if rng and step == "wrong-range":
            # A broken cache: claims a partial answer but starts at byte 0.
            h.send_response(206)
            h.send_header("Content-Range", f"bytes 0-{len(data) - 1}/{len(data)}")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        if rng and step != "ignore-range":
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self._send(h, Reply(416, b"", {"Content-Range": f"bytes */{len(data)}"}))
                return
        body = data[start:]
        if step == "corrupt":
            body = bytes(b ^ 0xFF for b in body)
        h.send_response(206 if start else 200)
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if isinstance(step, tuple) and step[0] == "drop":
            h.wfile.write(body[: step[1]])
            h.wfile.flush()
            h.close_connection = True
            # Cut the connection mid-body: the client sees fewer bytes than promised.
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        h.wfile.write(body)


def json_reply(obj: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(obj).encode(), {"Content-Type": "application/json"})


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip archive with these members, names written verbatim (even unsafe ones)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def tar_bytes(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    """A tar archive of regular files, names written verbatim (even unsafe ones)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_source(slug: str, spec: Any, *, terms_version: str = "1", url: str | None = None,
                credentialed: bool = False) -> type:
    """A minimal Source subclass declaring `spec` as its download (for engine tests)."""
    from medshard.schemas import License, SourceInfo
    from medshard.sources.base import Source

    info = SourceInfo(
        name=slug, title=f"Test source {slug}", version="1", modality="ecg", tasks=["test"],
        license=License(name="Test License", url=url or f"https://example.org/{slug}/terms",
                        terms_version=terms_version, credentialed=credentialed),
        access="credentialed" if credentialed else "open", homepage="https://example.org",
        citation="none", label_space=[], split_policy="none",
    )
    return type(f"Src_{slug.replace('-', '_')}", (Source,), {"info": info, "download": spec})
