"""`python -m sandbox.hubspot` as `make run` uses it: a seeded portal on a free port, its client
secret from the environment, webhooks for what changes after start and none for the seed, and a
clean exit on SIGTERM."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.sandbox.conftest import Receiver

ROOT = Path(__file__).resolve().parents[2]
SECRET = "cli-test-client-secret"


class Emulator:
    """The command running in a subprocess, with what it printed before serving."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sandbox.hubspot", *args],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        assert self.process.stdout is not None
        while not any(line.startswith("refresh token:") for line in self.lines):
            line = self.process.stdout.readline()
            if not line:
                pytest.fail(f"the emulator exited before serving: {self.process.stderr.read()}")
            self.lines.append(line.rstrip("\n"))
        found = re.search(r" on (http://\S+)$", self.lines[0])
        assert found, self.lines[0]
        self.url = found.group(1)
        self.token = self.lines[-2].rsplit(" ", 1)[1]

    def deals(self, *properties: str) -> list[dict]:
        out: list[dict] = []
        after = None
        while True:
            params = {"limit": 100, "properties": ",".join(properties)}
            if after:
                params["after"] = after
            page = requests.get(
                f"{self.url}/crm/v3/objects/deals",
                params=params,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=10,
            ).json()
            out.extend(page["results"])
            after = page.get("paging", {}).get("next", {}).get("after")
            if not after:
                return out

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=10)
        finally:
            self.process.stdout.close()
            self.process.stderr.close()


def test_help_names_the_seeding_options() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sandbox.hubspot", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0
    for option in ("--seed-deals", "--seed ", "--port", "HUBSPOT_CLIENT_SECRET"):
        assert option in done.stdout


def test_a_seeded_portal_on_a_free_port_signs_webhooks_with_the_secret_from_the_environment(
    receiver: Receiver,
) -> None:
    emulator = Emulator(
        "--port", "0", "--seed-deals", "12", "--seed", "3", "--webhook-url", receiver.url,
        env={"HUBSPOT_CLIENT_SECRET": SECRET},
    )  # fmt: skip
    try:
        assert emulator.lines[1].startswith("seeded 12 deals, ")
        deals = emulator.deals("dealname", "dealstage")
        assert len(deals) == 12
        assert all(d["properties"]["dealname"] for d in deals)
        time.sleep(0.5)  # longer than a webhook batch's delay: the seed would have gone out
        assert receiver.requests == [], "loading the seed is the portal's past: no webhooks"

        deal = deals[0]["id"]
        logged = requests.post(
            f"{emulator.url}/_sandbox/ui/deals/{deal}/meetings",
            json={"properties": {"hs_meeting_title": "Demo", "hs_meeting_outcome": "SCHEDULED"}},
            timeout=10,
        )
        assert logged.status_code == 201
        deadline = time.monotonic() + 10
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        first = receiver.requests[0]
        expected = hashlib.sha256(SECRET.encode() + first.body).hexdigest()
        assert first.headers["x-hubspot-signature"] == expected
        meeting = int(logged.json()["id"])
        assert any(e.get("objectId") == meeting for e in receiver.events()), receiver.events()
    finally:
        assert emulator.stop() == 0


def test_the_same_seed_draws_the_same_portal() -> None:
    names = []
    for _ in range(2):
        emulator = Emulator("--port", "0", "--seed-deals", "5", "--seed", "9", "--no-rate-limit")
        try:
            names.append(sorted(d["properties"]["dealname"] for d in emulator.deals("dealname")))
        finally:
            emulator.stop()
    assert names[0] == names[1]
    assert len(names[0]) == 5


def test_sigterm_ends_it_and_frees_the_port() -> None:
    emulator = Emulator("--port", "0")
    port = int(emulator.url.rsplit(":", 1)[1])
    assert emulator.lines[1].startswith("access token"), "no seed line for an empty portal"
    assert emulator.stop() == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # would raise if the emulator still held it


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "sandbox.hubspot", "--port", str(port)],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode != 0
    assert f"Port {port} is in use" in done.stderr  # werkzeug's own words
    assert "Traceback" not in done.stderr
