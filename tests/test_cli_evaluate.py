"""`dealradar evaluate` as a user runs it: files, stdin, bulk, tables and bad input."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from connector.cli import main
from tests.builders import activity, ago, bundle, contact

ROOT = Path(__file__).parent.parent
NOW = "2026-11-25T12:00:00Z"


def _write(tmp_path: Path, name: str, data: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def _rotting() -> dict:
    return bundle(
        {"created_at": ago(40), "amount": None},
        [contact("c1", roles=("Champion",))],
        [activity("email", ago(14), contacts=("c1",))],
    )


def test_prints_the_documented_shape(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["evaluate", _write(tmp_path, "b.json", _rotting()), "--now", NOW]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"deal_id", "alerts", "health"}
    assert out["deal_id"] == "d1"
    by_code = {a["code"]: a for a in out["alerts"]}
    assert set(by_code["no_activity"]) == {"code", "message", "facts"}
    assert by_code["no_activity"]["message"] == "No activity for 14 days (threshold 10)"
    assert by_code["no_activity"]["facts"]["days"] == 14
    assert "amount_missing" in by_code and "key_role_silent" in by_code
    assert set(out["health"]) == {"score", "grade", "trend", "components"}


def test_settings_and_evaluation_inputs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    doc = _rotting()
    doc["mutes"] = [{"code": "amount_missing", "until": "2026-12-01"}]
    doc["previous_health_score"] = 90
    settings = _write(tmp_path, "s.json", {"locale": "fr", "alerts": {"no_activity": {"days": 15}}})
    assert (
        main(["evaluate", _write(tmp_path, "b.json", doc), "--settings", settings, "--now", NOW])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    codes = {a["code"] for a in out["alerts"]}
    assert "no_activity" not in codes and "amount_missing" not in codes
    assert out["health"]["trend"] == "declining"
    assert any(
        a["message"].startswith("Aucune interaction avec le rôle Champion") for a in out["alerts"]
    )


def test_jsonl_bulk_reads_and_writes_one_per_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = []
    for i in range(3):
        doc = _rotting()
        doc["deal"]["id"] = f"d{i}"
        lines.append(json.dumps(doc))
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n\n"))
    assert main(["evaluate", "-", "--jsonl", "--now", NOW]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["deal_id"] for line in out] == ["d0", "d1", "d2"]


def test_several_files_give_a_list(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = _write(tmp_path, "a.json", _rotting())
    b = _write(tmp_path, "b.json", _rotting())
    assert main(["evaluate", a, b, "--now", NOW]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda d: d["activities"][0].update(kind="sms"), "field 'kind' is 'sms'"),
        (lambda d: d["deal"].pop("id"), "deal: field 'id' is missing"),
        (lambda d: d["activities"][0].update(at="yesterday"), "field 'at' is not an ISO 8601"),
        (lambda d: d["activities"][0].update(contacts=["zz"]), "names contact 'zz'"),
        (
            lambda d: d.update(mutes=[{"code": "x", "until": "2026-01-01"}]),
            "mutes[0]: field 'code'",
        ),
    ],
)
def test_invalid_input_exits_2_and_prints_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    breakage,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    doc = _rotting()
    breakage(doc)
    path = _write(tmp_path, "bad.json", doc)
    assert main(["evaluate", path, "--now", NOW]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert path in captured.err


def test_bulk_with_a_bad_line_prints_nothing_and_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    good = json.dumps(_rotting())
    bad = _rotting()
    bad["deal"]["status"] = "maybe"
    path = tmp_path / "bulk.jsonl"
    path.write_text("\n".join([good, good, json.dumps(bad), good]) + "\n")
    assert main(["evaluate", str(path), "--jsonl", "--now", NOW]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{path}:3: deal (id 'd1'): field 'status' is 'maybe'" in captured.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--now", "2026-11-25T12:00:00"], "--now: needs an offset"),
        (["--now", "soon"], "--now: not an ISO 8601 timestamp"),
        (["--settings", "/nonexistent.json"], "--settings: cannot read"),
    ],
)
def test_bad_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], message: str
) -> None:
    assert main(["evaluate", _write(tmp_path, "b.json", _rotting()), *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err


@pytest.mark.parametrize("given", ["2026-11-25", "2026-11-25T09:00", "2026-11-25T09:00:00"])
def test_the_now_suggested_for_one_without_an_offset_is_taken(
    tmp_path: Path, capsys: pytest.CaptureFixture, given: str
) -> None:
    """`--now 2026-11-25` suggested 2026-11-25Z, which the command refused in turn."""
    path = _write(tmp_path, "b.json", _rotting())
    assert main(["evaluate", path, "--now", given]) == 2
    hint = capsys.readouterr().err.split("e.g. ")[1].split()
    for suggested in (hint[0], hint[2]):
        assert suggested.startswith(given)
        assert main(["evaluate", path, "--now", suggested]) == 0, suggested
        assert capsys.readouterr().err == ""


def test_invalid_settings_are_listed_field_by_field(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    settings = _write(
        tmp_path, "s.json", {"alerts": {"no_activity": {"days": -1}}, "timezone": "Nowhere"}
    )
    assert main(["evaluate", _write(tmp_path, "b.json", _rotting()), "--settings", settings]) == 2
    err = capsys.readouterr().err
    assert "  alerts.no_activity.days: Must be greater than or equal to 1" in err
    assert "  timezone: unknown time zone 'Nowhere'" in err


def test_not_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "b.json"
    path.write_text("{not json")
    assert main(["evaluate", str(path)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


@pytest.mark.parametrize("args", [[], ["--jsonl"], ["SETTINGS"]])
def test_a_file_not_in_utf8_is_named_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str]
) -> None:
    """As Windows tools save JSON (UTF-16 with a byte order mark)."""
    utf16 = tmp_path / "utf16.json"
    utf16.write_text(json.dumps(_rotting()), encoding="utf-16")
    if args == ["SETTINGS"]:
        argv = ["evaluate", _write(tmp_path, "b.json", _rotting()), "--settings", str(utf16)]
    else:
        argv = ["evaluate", str(utf16), *args]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{utf16}: not UTF-8 text (byte 0xff); save it as UTF-8" in captured.err


def test_table_of_the_examples(capsys: pytest.CaptureFixture) -> None:
    examples = sorted(str(p) for p in (ROOT / "examples" / "bundles").glob("*.json"))
    args = ["evaluate", *examples, "--settings", str(ROOT / "examples" / "settings.json")]
    assert main([*args, "--now", "2026-11-25T09:00:00+01:00", "--format", "table"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["Deal", "Stage", "Amount", "Health", "Alerts"]
    assert "Globex expansion" in table and "No activity for 23 days (threshold 10)" in table
    assert "Closes in 5 days with no director or above engaged" in table


def test_a_table_names_the_stage_as_reps_read_it(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A HubSpot or Sell bundle's stage is an internal id; its `stage_name` is what the table,
    made for people, shows (as the alerts' messages do)."""
    doc = _rotting()
    doc["deal"].update(stage="98765432", stage_name="Contract sent")
    path = _write(tmp_path, "b.json", doc)
    assert main(["evaluate", path, "--now", NOW, "--format", "table"]) == 0
    row = capsys.readouterr().out.splitlines()[2]
    assert "Contract sent" in row and "98765432" not in row, row


def test_a_french_table_is_french_throughout(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Headers and alerts were French, but amounts kept English digit groups (12,500) and the
    status and trend their English words."""
    rotting, won = _rotting(), _rotting()
    rotting["deal"].update(amount=12500, currency="EUR")
    rotting["previous_health_score"] = 99  # the score fell since: a trend
    won["deal"].update(id="d-2", name="Signed", status="won")
    paths = [_write(tmp_path, "a.json", rotting), _write(tmp_path, "b.json", won)]
    settings = _write(tmp_path, "s.json", {"locale": "fr"})
    assert main(["evaluate", *paths, "--now", NOW, "--format", "table",
                 "--settings", settings]) == 0  # fmt: skip
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[0] == "Affaire"
    assert "12\u202f500 EUR" in table and "12,500" not in table
    assert "gagnée" in table and " won" not in table
    assert "en baisse" in table and "declining" not in table


def test_version(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert re.fullmatch(r"dealradar \d+\.\d+\.\d+\n", capsys.readouterr().out)


def test_installed_command_and_help() -> None:
    exe = Path(sys.executable).parent / "dealradar"
    for args in ([], ["evaluate"]):
        result = subprocess.run([exe, *args, "--help"], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        assert "usage: dealradar" in result.stdout
    example = ROOT / "examples" / "bundles" / "acme-renewal.json"
    result = subprocess.run(
        [exe, "evaluate", str(example), "--now", NOW], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout)["deal_id"] == "d-1001"
