"""What every emulator's server shares: a werkzeug server in a background thread that stops
within 50 ms, a request handler without access log, SIGTERM ending a command like Ctrl-C, and
the message for a port that cannot be had."""

from __future__ import annotations

import signal
import sys
import threading
from types import TracebackType

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler


class QuietHandler(WSGIRequestHandler):
    """No access log line per request: benchmarks make tens of thousands."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class BackgroundServer:
    """A running emulator: ``url``, ``port``, ``stop()``; a context manager."""

    def __init__(self, server: BaseWSGIServer, name: str, *, scheme: str = "http") -> None:
        self._server = server
        self.port: int = server.server_port
        self.url = f"{scheme}://{server.server_address[0]}:{self.port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() returns within 50 ms, not werkzeug's 0.5 s
            name=f"{name}-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving (the emulator's state stays usable)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def handler(quiet: bool) -> type[WSGIRequestHandler]:
    return QuietHandler if quiet else WSGIRequestHandler


def interrupt_on_sigterm() -> None:
    """A launcher's terminate() ends the command like Ctrl-C, at any moment from now on."""
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cannot_listen(host: str, port: int, exc: OSError) -> int:
    """Say why the port cannot be had and what to do; the command's exit status."""
    print(
        f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
        "give another --port (0: any free port)",
        file=sys.stderr,
    )
    return 2
