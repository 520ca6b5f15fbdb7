"""/metrics under gunicorn adds up every worker's counters, those of workers that have exited
included: two real workers, each restarted after a few requests."""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from connector.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
MAX_REQUESTS = 4
"""Each worker serves this many requests, then gunicorn replaces it with a new process."""


def _request(port: int, method: str, path: str, body: bytes = b"", **headers: str):  # type: ignore[no-untyped-def]
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()


@pytest.fixture
def server(tmp_path: Path, redis_url: str) -> Iterator[tuple[int, Path]]:
    port, metrics_dir = free_port(), tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"left by a previous run")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'web.db'}",
        "REDIS_URL": redis_url,
        "DEALRADAR_SECRET_KEYS": Fernet.generate_key().decode(),
        "PUBLIC_URL": f"http://{HOST}:{port}",
        "HUBSPOT_CLIENT_SECRET": "metrics-test-secret",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    command = [
        sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"{HOST}:{port}",
        "--max-requests", str(MAX_REQUESTS), "connector:create_app()",
    ]  # fmt: skip
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                if _request(port, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer /healthz"
            time.sleep(0.1)
        yield port, metrics_dir
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def _counter(text: str, reason: str) -> float:
    found = re.search(
        rf'dealradar_webhooks_refused_total\{{reason="{reason}",source="hubspot"\}} (\S+)', text
    )
    return float(found.group(1)) if found else 0.0


def test_a_scrape_counts_the_requests_of_every_worker(server: tuple[int, Path]) -> None:
    port, metrics_dir = server
    assert not (metrics_dir / "counter_1.db").exists(), "a previous run's counts were cleared"
    for _ in range(10):
        status, _ = _request(
            port, "POST", "/webhooks/hubspot", b"[]", **{"Content-Type": "text/plain"}
        )
        assert status == 415
    for _ in range(6):
        status, _ = _request(port, "POST", "/webhooks/hubspot", b"[]", **{
            "Content-Type": "application/json", "X-HubSpot-Signature-v3": "forged",
            "X-HubSpot-Request-Timestamp": str(int(time.time() * 1000)),
        })  # fmt: skip
        assert status == 401
    status, text = _request(port, "GET", "/metrics")
    assert status == 200
    # 16 requests and the health check, at most MAX_REQUESTS per process: at least 5 processes.
    assert len(list(metrics_dir.glob("counter_*.db"))) >= 16 // MAX_REQUESTS
    assert _counter(text, "content_type") == 10
    assert _counter(text, "signature_mismatch") == 6
    assert 'dealradar_queue_depth{queue="refresh"} 0.0' in text
