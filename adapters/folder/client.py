"""A CRM whose records are JSON files in a folder: the test adapter until the real ones land.

The tenant's account id is the folder. `deals/<id>.json` holds each deal's bundle in Deal
Radar's JSON form (a missing file is a deleted deal); the modification time of the file is the
deal's modification time, which `changed_since` reads. Writes land in `written/<id>.json`.
Every call is appended to `calls.jsonl`, so tests can count pulls and writes across processes.
`faults.jsonl` injects failures: each line (`{"op": "pull", "error": "transient"}`,
`{"op": "pull", "sleep": 20}`, `{"op": "create_task", "error": "owner_inactive"}`, ...) is
consumed by the next call of that operation; with `"after": true` the operation is done first
and its answer then lost (the error is raised after the effect, as when a CRM creates a record
and the connection drops before it answers).

Tasks and notes (`CrmActions`) live in `actions.json` ({"tasks": {id: task}, "notes": {...}}),
each created at most once per key, like a real adapter's idempotent create.

Error policy: file-system errors propagate; injected errors are raised as the adapters.errors
named in the fault, exactly as a real client would translate a CRM's answer.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from adapters import errors
from adapters.base import AdapterContext, Changes, Pulled, TenantRef
from engine.model import BundleError, User, load_bundle

PAGE_SIZE = 100
"""Deals per page of `changed_since`, like a real CRM's search page."""

_ERRORS: dict[str, type[errors.CrmError]] = {
    "transient": errors.Transient,
    "rate_limited": errors.RateLimited,
    "auth_expired": errors.AuthExpired,
    "not_found": errors.NotFound,
    "permission_denied": errors.PermissionDenied,
    "invalid_request": errors.InvalidRequest,
    "owner_inactive": errors.OwnerInactive,
}


class FolderClient:
    needs_polling = True  # a folder sends no webhooks

    def __init__(self, tenant: TenantRef, context: AdapterContext | None = None) -> None:
        # A folder needs no tokens, Redis or settings: the context is accepted and ignored.
        self.root = Path(tenant.account_id)

    # -- the CRM's side, used by tests and demos to act as the CRM --

    def put_deal(self, bundle_doc: Mapping[str, Any]) -> None:
        deals = self.root / "deals"
        deals.mkdir(parents=True, exist_ok=True)
        target = deals / f"{bundle_doc['deal']['id']}.json"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(bundle_doc))
        os.replace(tmp, target)  # a reader never sees half a file

    def remove_deal(self, deal_id: str) -> None:
        (self.root / "deals" / f"{deal_id}.json").unlink(missing_ok=True)

    def add_fault(self, op: str, **fault: Any) -> None:
        with self._locked("faults.jsonl", "a") as f:
            f.write(json.dumps({"op": op, **fault}) + "\n")

    def calls(self, op: str | None = None) -> list[dict[str, Any]]:
        path = self.root / "calls.jsonl"
        if not path.exists():
            return []
        rows = [json.loads(line) for line in path.read_text().splitlines() if line]
        return [r for r in rows if op is None or r["op"] == op]

    def written(self, deal_id: str) -> dict[str, Any]:
        path = self.root / "written" / f"{deal_id}.json"
        return json.loads(path.read_text()) if path.exists() else {}

    # -- the adapter's side --

    def pull(self, deal_ids: Sequence[str]) -> Pulled:
        self._call("pull", ids=list(deal_ids))
        bundles, deleted = [], []
        for deal_id in deal_ids:
            path = self.root / "deals" / f"{deal_id}.json"
            if not path.exists():
                deleted.append(deal_id)
                continue
            try:
                bundles.append(load_bundle(json.loads(path.read_text())))
            except (BundleError, json.JSONDecodeError) as exc:
                raise errors.InvalidRequest(f"deal {deal_id}: {exc}") from exc
        return Pulled(bundles=bundles, deleted=deleted)

    def users_by_id(self, user_ids: Sequence[str]) -> dict[str, User]:
        """The users among these ids that the deals' bundles name (the folder's users)."""
        if not (self.root / "deals").is_dir():
            return {}  # no folder, no users: and none made by asking
        self._call("users_by_id", ids=list(user_ids))
        wanted, found = set(user_ids), {}
        for path in sorted((self.root / "deals").glob("*.json")):
            for user in load_bundle(json.loads(path.read_text())).users:
                if user.id in wanted:
                    found[user.id] = user
        return found

    def changed_since(self, cursor: str | None) -> Changes:
        self._call("changed_since", cursor=cursor)
        since = float(cursor) if cursor else 0.0
        deals = self.root / "deals"
        found = (
            sorted(
                (p.stat().st_mtime, p.stem)
                for p in deals.glob("*.json")
                if p.stat().st_mtime > since
            )
            if deals.exists()
            else []
        )
        page = found[:PAGE_SIZE]
        cursor_out = str(page[-1][0]) if page else (cursor or "0")
        return Changes([deal_id for _, deal_id in page], cursor_out, more=len(found) > PAGE_SIZE)

    def write_back(self, values: Mapping[str, Mapping[str, Any]]) -> None:
        self._call("write", values={k: dict(v) for k, v in values.items()})
        written = self.root / "written"
        written.mkdir(parents=True, exist_ok=True)
        for deal_id, fields in values.items():
            path = written / f"{deal_id}.json"
            known = json.loads(path.read_text()) if path.exists() else {}
            path.write_text(json.dumps({**known, **fields}))

    # -- actions (CrmActions) --

    def tasks(self) -> dict[str, dict[str, Any]]:
        return self._actions().get("tasks", {})

    def notes(self) -> dict[str, dict[str, Any]]:
        return self._actions().get("notes", {})

    def create_task(
        self,
        deal_id: str,
        *,
        owner_id: str | None,
        subject: str,
        body: str,
        due: datetime,
        key: str,
    ) -> str:
        if due.tzinfo is None:
            raise ValueError(f"due must be an aware datetime, got {due}")
        record = {
            "deal_id": deal_id, "owner_id": owner_id, "subject": subject, "body": body,
            "due": due.isoformat(), "status": "open", "key": key,
        }  # fmt: skip
        return self._create_once("tasks", "create_task", record)

    def complete_task(self, task_id: str) -> None:
        lost = self._call("complete_task", id=task_id)

        def complete(doc: dict[str, Any]) -> None:
            task = doc.get("tasks", {}).get(task_id)
            if task is not None:  # a task deleted in the CRM is left alone
                task["status"] = "completed"

        self._edit_actions(complete)
        if lost:
            raise lost

    def reassign_task(self, task_id: str, owner_id: str) -> bool:
        lost = self._call("reassign_task", id=task_id, owner=owner_id)
        still_open: list[bool] = []

        def reassign(doc: dict[str, Any]) -> None:
            task = doc.get("tasks", {}).get(task_id)
            if task is not None and task["status"] == "open":
                task["owner_id"] = owner_id
                still_open.append(True)

        self._edit_actions(reassign)
        if lost:
            raise lost
        return bool(still_open)

    def create_note(self, deal_id: str, *, body: str, at: datetime, key: str) -> str:
        if at.tzinfo is None:
            raise ValueError(f"at must be an aware datetime, got {at}")
        record = {"deal_id": deal_id, "body": body, "at": at.isoformat(), "key": key}
        return self._create_once("notes", "create_note", record)

    def _create_once(self, kind: str, op: str, record: dict[str, Any]) -> str:
        assigned = {"owner": record["owner_id"]} if "owner_id" in record else {}
        lost = self._call(op, deal=record["deal_id"], key=record["key"], **assigned)
        if not (self.root / "deals" / f"{record['deal_id']}.json").exists():
            raise errors.NotFound(f"deal {record['deal_id']} is not in the CRM")
        made: list[str] = []

        def create(doc: dict[str, Any]) -> None:
            records = doc.setdefault(kind, {})
            found = next((i for i, r in records.items() if r["key"] == record["key"]), None)
            if found is None:
                found = f"{kind[0]}-{len(records) + 1}"
                records[found] = record
            made.append(found)

        self._edit_actions(create)
        if lost:
            raise lost
        return made[0]

    def _actions(self) -> dict[str, Any]:
        path = self.root / "actions.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _edit_actions(self, change: Callable[[dict[str, Any]], None]) -> None:
        with self._locked("actions.json", "r+") as f:
            text = f.read()
            doc = json.loads(text) if text else {}
            change(doc)
            f.seek(0)
            f.truncate()
            f.write(json.dumps(doc))

    # -- plumbing --

    def _call(self, op: str, **details: Any) -> errors.CrmError | None:
        """Record the call and apply its fault: raise the injected error, or return it when the
        fault says the operation happens first (`after`), for the caller to raise then."""
        fault = self._next_fault(op)
        # Recorded before the injected delay, so a test sees the call while it is in flight.
        with self._locked("calls.jsonl", "a") as f:
            f.write(json.dumps({"op": op, "pid": os.getpid(), **details}) + "\n")
        if fault.get("sleep"):
            time.sleep(float(fault["sleep"]))
        name = fault.get("error")
        if not name:
            return None
        kind = _ERRORS[name]
        message = f"injected {name} on {op}"
        if kind is errors.RateLimited:
            error: errors.CrmError = errors.RateLimited(retry_after=fault.get("retry_after"))
        elif kind is errors.OwnerInactive:  # refused for the user the record was assigned to
            error = errors.OwnerInactive(message, str(details.get("owner")))
        else:
            error = kind(message)
        if fault.get("after"):
            return error
        raise error

    def _next_fault(self, op: str) -> dict[str, Any]:
        path = self.root / "faults.jsonl"
        if not path.exists():
            return {}
        with self._locked("faults.jsonl", "r+") as f:
            lines = [line for line in f.read().splitlines() if line]
            for i, line in enumerate(lines):
                fault = json.loads(line)
                if fault["op"] == op:
                    f.seek(0)
                    f.truncate()
                    f.write("".join(x + "\n" for j, x in enumerate(lines) if j != i))
                    return fault
        return {}

    def _locked(self, name: str, mode: str) -> Any:
        self.root.mkdir(parents=True, exist_ok=True)
        return _Locked(self.root / name, mode)


class _Locked:
    """A file opened under an exclusive flock: workers in other processes share these files."""

    def __init__(self, path: Path, mode: str) -> None:
        if mode == "r+" and not path.exists():
            path.touch()
        self.file = open(path, mode)  # noqa: SIM115 (closed in __exit__)

    def __enter__(self) -> Any:
        fcntl.flock(self.file, fcntl.LOCK_EX)
        return self.file

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()
