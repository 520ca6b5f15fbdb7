"""`python -m sandbox.salesforce`: its help, and a seeded org served over HTTPS with the
certificate it writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests
from simple_salesforce import Salesforce


def test_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sandbox.salesforce", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert "--seed-deals" in done.stdout and "--daily-api-limit" in done.stdout


def test_serves_a_seeded_org_over_https(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.salesforce",
            "--port",
            "0",
            "--seed-deals",
            "12",
            "--cert-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = first.rsplit(" on ", 1)[1].strip()
        lines = {}
        while len(lines) < 4:
            line = process.stdout.readline()
            key, _, value = line.partition(": ")
            lines[key.split(" (")[0]] = value.strip()
        cert = lines["certificate"].split(" ")[0]
        session = requests.Session()
        session.trust_env = False
        session.verify = cert
        sf = Salesforce(instance_url=url, session_id=lines["access token"], session=session)
        assert sf.query("SELECT COUNT() FROM Opportunity")["totalSize"] == 12
        assert Path(cert).parent == tmp_path
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
