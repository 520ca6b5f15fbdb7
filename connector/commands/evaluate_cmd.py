"""`dealradar evaluate`: alerts and health for bundles given as JSON files or on stdin.

All input is validated before anything is printed: on invalid input the command exits with
status 2, names the file, line, record and field on stderr, and leaves stdout empty. In bulk
mode (`--jsonl`) results are spooled to a temporary file until the whole input has passed, so
memory stays flat however many bundles come in.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any

from engine.alerts import MuteError, load_mutes
from engine.evaluate import Evaluation, Evaluator
from engine.messages import amount_text, grade_name, status_name, trend_name
from engine.model import Bundle, BundleError, load_bundle
from engine.settings import SettingsError, load_settings

EXIT_INVALID = 2
SPOOL_BYTES = 8 * 1024 * 1024
"""Bulk results stay in memory up to this size, then go to a temporary file."""


class InputError(Exception):
    """Input the command cannot evaluate; the message says where and what."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate deal bundles (JSON) and print their alerts and health",
        description=(
            "Evaluate deal bundles in Deal Radar's JSON form (see the README) and print, for each, "
            '{"deal_id", "alerts": [{"code", "message", "facts"}], "health": {...}}. '
            'A bundle may carry optional evaluation inputs: "mutes" '
            '([{"code", "until": "YYYY-MM-DD"}]) and "previous_health_score" (for the trend).'
        ),
    )
    p.add_argument(
        "bundles",
        nargs="+",
        metavar="BUNDLE.json|-",
        help="bundle files; - reads standard input",
    )
    p.add_argument("--settings", metavar="FILE", help="tenant settings (JSON; partial is fine)")
    p.add_argument(
        "--now",
        metavar="ISO",
        help="evaluate as of this instant, with an offset (e.g. 2026-11-25T09:00:00+01:00); "
        "default: the current time",
    )
    p.add_argument(
        "--jsonl",
        action="store_true",
        help="bulk: read one bundle per line and write one result per line",
    )
    p.add_argument(
        "--format",
        choices=("json", "table"),
        default="json",
        help="json (default) or a readable table",
    )
    p.set_defaults(run=run)


def _fail(message: str) -> int:
    print(f"dealradar evaluate: {message}", file=sys.stderr)
    return EXIT_INVALID


def _parse_now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        now = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--now: not an ISO 8601 timestamp: {text!r}") from None
    if now.tzinfo is None:
        # The examples are the instant given, whole, so that they parse: a date alone takes
        # neither a Z nor an offset.
        example = now.isoformat()
        raise InputError(f"--now: needs an offset or Z, e.g. {example}Z or {example}+01:00")
    return now


def _read_settings(path: str | None) -> Any:
    if path is None:
        return load_settings({})
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except OSError as exc:
        raise InputError(f"--settings: cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"--settings: {path} is not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"--settings: {_not_utf8(path, exc)}") from None
    try:
        return load_settings(document)
    except SettingsError as exc:
        details = "\n".join(f"  {field}: {' '.join(msgs)}" for field, msgs in exc.errors.items())
        raise InputError(f"--settings: {path} has invalid settings:\n{details}") from None


def _open(path: str) -> IO[str]:
    if path == "-":
        return sys.stdin
    try:
        return open(path, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def _documents(paths: list[str], jsonl: bool) -> Iterator[tuple[str, Any]]:
    """(where, parsed JSON) for every bundle; `where` names the file and line for errors."""
    for path in paths:
        name = "<stdin>" if path == "-" else path
        stream = _open(path)
        try:
            yield from _parsed(name, stream, jsonl)
        except UnicodeDecodeError as exc:
            raise InputError(_not_utf8(name, exc)) from None
        finally:
            if stream is not sys.stdin:
                stream.close()


def _not_utf8(name: str, exc: UnicodeDecodeError) -> str:
    return f"{name}: not UTF-8 text (byte {exc.object[exc.start]:#04x}); save it as UTF-8"


def _parsed(name: str, stream: IO[str], jsonl: bool) -> Iterator[tuple[str, Any]]:
    if not jsonl:
        try:
            yield name, json.load(stream)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name}: not valid JSON: {exc}") from None
        return
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield f"{name}:{number}", json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name}:{number}: not valid JSON: {exc}") from None


def _evaluate_all(
    paths: list[str], jsonl: bool, evaluator: Evaluator
) -> Iterator[tuple[Bundle, Evaluation]]:
    for where, document in _documents(paths, jsonl):
        try:
            bundle = load_bundle(document)
            mutes = load_mutes(document.get("mutes"))
            previous = document.get("previous_health_score")
            if previous is not None and (
                isinstance(previous, bool) or not isinstance(previous, int)
            ):
                raise BundleError(
                    f"bundle: field 'previous_health_score' must be an integer, got {previous!r}"
                )
        except (BundleError, MuteError) as exc:
            raise InputError(f"{where}: {exc}") from None
        yield bundle, evaluator(bundle, mutes, previous)


def run(args: argparse.Namespace) -> int:
    try:
        now = _parse_now(args.now)
        evaluator = Evaluator(_read_settings(args.settings), now)
        if args.format == "table":
            rows = list(_evaluate_all(args.bundles, args.jsonl, evaluator))
            sys.stdout.write(render_table(rows, evaluator.settings.locale))
            return 0
        if args.jsonl:
            with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+") as spool:
                for _, result in _evaluate_all(args.bundles, True, evaluator):
                    spool.write(json.dumps(result.to_dict(), ensure_ascii=False))
                    spool.write("\n")
                spool.seek(0)
                shutil.copyfileobj(spool, sys.stdout)
            return 0
        results = [r.to_dict() for _, r in _evaluate_all(args.bundles, False, evaluator)]
        output = results[0] if len(results) == 1 else results
        print(json.dumps(output, ensure_ascii=False, indent=2))
        return 0
    except InputError as exc:
        return _fail(str(exc))


_HEADERS = {
    "en": ("Deal", "Stage", "Amount", "Health", "Alerts"),
    "fr": ("Affaire", "Étape", "Montant", "Santé", "Alertes"),
}


def _amount(bundle: Bundle, locale: str) -> str:
    amount = bundle.deal.amount
    if amount is None:
        return "-"
    return amount_text(amount, bundle.deal.currency, locale)


def render_table(rows: list[tuple[Bundle, Evaluation]], locale: str = "en") -> str:
    """A plain-text table: one block per deal, its alerts one per line."""
    headers = _HEADERS.get(locale, _HEADERS["en"])
    cells = []
    for bundle, result in rows:
        h = result.health
        trend = f" {trend_name(h.trend, locale)}" if h.trend else ""
        alerts = [a.message for a in result.alerts] or ["-"]
        cells.append(
            (
                [bundle.deal.name or bundle.deal.id],
                [
                    (bundle.deal.stage_name or bundle.deal.stage)
                    if bundle.deal.status == "open"
                    else status_name(bundle.deal.status, locale)
                ],
                [_amount(bundle, locale)],
                [f"{h.score} {grade_name(h.grade, locale)}{trend}"],
                [line for a in alerts for line in textwrap.wrap(a, 70)],
            )
        )
    widths = [
        max([len(headers[i])] + [len(line) for row in cells for line in row[i]])
        for i in range(len(headers))
    ]

    def line(values: list[str] | tuple[str, ...]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    for row in cells:
        height = max(len(col) for col in row)
        for i in range(height):
            out.append(line([col[i] if i < len(col) else "" for col in row]))
    return "\n".join(out) + "\n"
