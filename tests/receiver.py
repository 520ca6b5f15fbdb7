"""A real HTTP server on loopback that records what is posted to it, for outbound tests.

It answers `status` (200 by default), can be taken down (`stop`: the port refuses connections)
and brought back on the same port (`start`), so a test sees what a sender does while its target
is away.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    status: int = 200
    port: int = 0
    received: list[Received] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    check: Callable[[dict[str, str], bytes], None] | None = None
    """Called on each request (headers, body) before answering; if it raises, the answer is
    400 and the error is kept in `refused`."""
    refused: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver.status
                if receiver.check is not None:
                    try:
                        receiver.check(headers, body)
                    except Exception as exc:  # whatever the check raises is a refusal
                        receiver.refused.append(repr(exc))
                        status = 400
                if 200 <= status < 300:
                    receiver.received.append(Received(self.path, headers, body))
                receiver.answered.append(status)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
