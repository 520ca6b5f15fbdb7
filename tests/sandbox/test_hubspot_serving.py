"""Serving the HubSpot emulator: the command line, concurrent clients, and stopping cleanly."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.deals import BatchInputSimplePublicObjectBatchInput, SimplePublicObjectBatchInput

from sandbox.hubspot import HubSpotState, serve

ROOT = Path(__file__).resolve().parents[2]


def test_command_line_help_names_its_options() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sandbox.hubspot", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    for option in ("--port", "--webhook-url", "--no-rate-limit", "--search-lag", "--time-zone"):
        assert option in done.stdout


def test_concurrent_writers_leave_consistent_history(state: HubSpotState) -> None:
    deals = [state.create_object("deals", {"dealname": f"D{i}", "amount": 0}) for i in range(8)]
    token = state.issue_token().access_token

    def bump(worker: int) -> None:
        client = HubSpot(access_token=token, host=server.url)
        for step in range(1, 11):
            inputs = [
                SimplePublicObjectBatchInput(id=d, properties={"amount": str(worker * 100 + step)})
                for d in deals
            ]
            client.crm.deals.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=inputs))

    with serve(state) as server, ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(bump, range(4)))
    with state.lock:
        for deal in deals:
            record = state.record("deals", deal)
            history = record.history["amount"]
            assert len(history) == 41, "the seed value and 40 changes, none lost"
            assert record.properties["amount"] == history[-1].value


def test_a_stopped_server_refuses_connections(state: HubSpotState) -> None:
    with serve(state) as server:
        url = server.url
        assert requests.get(f"{url}/_sandbox/counts", timeout=5).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/_sandbox/counts", timeout=2)
