"""In-memory state of one emulated Zendesk Sell account: users, pipelines, stages, contacts
(people and organisations), deals, associated contacts, calls, visits, notes, tasks, custom
field definitions, OAuth and personal tokens, the Firehose log of every resource, request counts
and the hourly allowance.

Everything here is plain Python (no HTTP); ``sandbox.sell_app`` serves it. Every public method
takes one re-entrant lock, so the threaded server and a test's direct calls interleave safely.
The clock is injected (``clock`` returns an aware datetime): token expiry, the hourly window,
``updated_at`` and the Firehose's 72-hour retention follow a test's time, not the wall clock.

Records are dicts in Sell's Core API v2 field names (``sandbox.sell_resources`` lists them with
their writable keys); ids are integers from one account-wide counter. Every create, update and
delete of a streamed resource appends a Firehose event (``sandbox.sell_firehose``).

Error policy: every refusal is a ``SellError`` with Sell's status and error envelope, raised the
same way from the Python API and the HTTP API, so seeding code fails where a real account would.
"""

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta

from sandbox.sell_auth import DEFAULT_SCOPE, HOURLY_LIMIT, HourlyAllowance, OAuthTokens, Token
from sandbox.sell_custom_fields import CUSTOM_FIELD_TYPES, CustomFields
from sandbox.sell_errors import SellError, bad_request, invalid, not_found
from sandbox.sell_firehose import RETENTION, Firehose, snapshot
from sandbox.sell_resources import (
    ACTIVITY_RESOURCES,
    DEFAULTS,
    RESOURCE_TYPES,
    WRITABLE,
    format_datetime,
)

__all__ = ["SellError", "SellState", "Token"]


class SellState:
    """One Sell account. ``hourly_limit`` None switches the 429s off; ``retention`` is how long
    the Firehose keeps events (72 hours)."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        client_id: str = "sandbox-client-id",
        client_secret: str = "sandbox-client-secret",
        hourly_limit: int | None = HOURLY_LIMIT,
        retention: timedelta = RETENTION,
        admin_email: str = "admin@example.com",
        account_id: int = 7_000_001,
        account_name: str = "Sandbox Sales",
    ) -> None:
        self.lock = threading.RLock()
        self.account = {
            "id": account_id,
            "name": account_name,
            "currency": "USD",
            "time_format": "24H",
            "timezone": "UTC",
            "phone": None,
        }
        """``GET /v2/accounts/self``: the account's id, name and preferences (basecrm-python's
        AccountsService; the field list follows Sell's Accounts reference)."""
        self.clock = clock or (lambda: datetime.now(UTC))
        self.oauth = OAuthTokens(client_id, client_secret)
        self.allowance = HourlyAllowance(hourly_limit)
        self.firehose = Firehose(retention)
        self.custom_fields = CustomFields()
        self._records: dict[str, dict[int, dict]] = {name: {} for name in DEFAULTS}
        self._associations: dict[int, dict[int, dict]] = {}  # deal id -> contact id -> link
        # activity resource -> resource_id -> ids: lists by deal or contact stay cheap at 100k
        self._by_target: dict[str, dict[int, set[int]]] = {r: {} for r in RESOURCE_TYPES}
        self._next_id = 1_000_001
        self._counts: Counter[str] = Counter()
        # The account's owner: Firehose and personal tokens act as the root user.
        self.admin_id = self.add_user("Account Owner", admin_email, role="admin")

    # ----------------------------------------------------------------------------------------
    # Account set-up (what an admin does in Sell's UI; the API cannot)
    # ----------------------------------------------------------------------------------------

    def add_user(
        self,
        name: str,
        email: str,
        *,
        role: str = "user",
        team_name: str | None = None,
        reports_to: int | None = None,
        at: datetime | None = None,
    ) -> int:
        """A user of the account (Sell's owners); returns its id."""
        data = {"name": name, "email": email, "role": role, "team_name": team_name}
        data["reports_to"] = reports_to
        return self._insert("users", data, at)["id"]

    def deactivate_user(self, user_id: int, at: datetime | None = None) -> dict:
        """An admin deactivates a user in Sell's settings (a rep leaves): the user stays in the
        users listing with ``status`` "inactive" and keeps what they own, their tokens stop
        working (Sell changes a deactivated user's API token: support.getbase.com article
        204173985), and the users stream logs an ``updated`` event. Returns the user."""
        return self._set_user_status(user_id, "inactive", at)

    def reactivate_user(self, user_id: int, at: datetime | None = None) -> dict:
        """An admin reactivates a user: ``status`` "active" again (new tokens must be issued)."""
        return self._set_user_status(user_id, "active", at)

    def _set_user_status(self, user_id: int, status: str, at: datetime | None) -> dict:
        with self.lock:
            if user_id == self.admin_id:
                # The emulator's Firehose and personal tokens act as the owner (UNCONFIRMED
                # whether Sell lets an account's owner be deactivated at all).
                raise ValueError("the account owner cannot be deactivated")
            user = self.get("users", user_id)
            if user["status"] == status:
                return user
            when = at or self.clock()
            new = {**user, "status": status, "updated_at": format_datetime(when)}
            self._records["users"][user_id] = new
            if status == "inactive":
                self.oauth.revoke_user(user_id)
            self._emit("users", "updated", new, when, user)
            return dict(new)

    def add_pipeline(self, name: str, at: datetime | None = None) -> int:
        return self._insert("pipelines", {"name": name}, at)["id"]

    def add_stage(
        self,
        pipeline_id: int,
        name: str,
        *,
        category: str,
        likelihood: int,
        position: int,
        at: datetime | None = None,
    ) -> int:
        """A stage of a pipeline: ``category`` (incoming, in_progress, won, lost...),
        ``likelihood`` 0-100, ``position`` from 1."""
        with self.lock:
            self.get("pipelines", pipeline_id)
            data = {"pipeline_id": pipeline_id, "name": name, "category": category}
            data |= {"likelihood": likelihood, "position": position}
            return self._insert("stages", data, at)["id"]

    def define_custom_field(
        self,
        resource_type: str,
        name: str,
        field_type: str,
        choices: Iterable[str] = (),
        at: datetime | None = None,
    ) -> dict:
        """A custom field as an admin creates it in Sell's UI (no API can): ``resource_type``
        deal, contact or lead; ``field_type`` one of ``CUSTOM_FIELD_TYPES``."""
        with self.lock:
            if resource_type not in ("deal", "contact", "lead"):
                raise ValueError(
                    f"custom fields exist for deal, contact or lead, not {resource_type!r}"
                )
            if field_type not in CUSTOM_FIELD_TYPES:
                raise ValueError(f"unknown custom field type {field_type!r}")
            when = at or self.clock()
            field = self.custom_fields.define(
                resource_type, name, field_type, list(choices), format_datetime(when), self._new_id
            )
            self.firehose.append(
                "custom_fields", "created", snapshot("custom_fields", field, {}), when, None
            )
            return field

    def rename_custom_field(
        self, resource_type: str, name: str, new_name: str, at: datetime | None = None
    ) -> dict:
        """An admin renames a custom field in Sell's UI: records keep their values under the new
        name, and the custom_fields stream logs an ``updated`` event."""
        with self.lock:
            when = at or self.clock()
            old, _ = self.custom_fields.rename(resource_type, name, new_name)
            field = self.custom_fields.by_name(resource_type)[new_name]
            field["updated_at"] = format_datetime(when)
            self._rekey_values(resource_type, name, new_name)
            self.firehose.append(
                "custom_fields", "updated", snapshot("custom_fields", field, {}), when,
                snapshot("custom_fields", old, {}),
            )  # fmt: skip
            return dict(field)

    def delete_custom_field(
        self, resource_type: str, name: str, at: datetime | None = None
    ) -> None:
        """An admin deletes a custom field in Sell's UI: its values go with it, and the
        custom_fields stream logs a ``deleted`` event."""
        with self.lock:
            field = self.custom_fields.remove(resource_type, name)
            self._rekey_values(resource_type, name, None)
            self.firehose.append(
                "custom_fields", "deleted", snapshot("custom_fields", field, {}),
                at or self.clock(), None,
            )  # fmt: skip

    def _rekey_values(self, resource_type: str, name: str, new_name: str | None) -> None:
        """Move (or drop) a custom field's values on every record of its resource; no record
        event (UNCONFIRMED whether Sell streams one per record for a field change)."""
        resource = {"deal": "deals", "contact": "contacts"}.get(resource_type)
        for record in self._records.get(resource or "", {}).values():
            values = record.get("custom_fields") or {}
            if name in values:
                value = values.pop(name)
                if new_name is not None:
                    values[new_name] = value

    # ----------------------------------------------------------------------------------------
    # Records
    # ----------------------------------------------------------------------------------------

    def create(
        self,
        resource: str,
        data: Mapping,
        *,
        user_id: int | None = None,
        at: datetime | None = None,
    ) -> dict:
        """Create a deal, contact, call, visit, note or task from API-shaped ``data`` (unknown
        and read-only keys ignored, as Sell's client strips them); returns the stored record."""
        with self.lock:
            user = user_id or self.admin_id
            clean = self._writable(resource, data)
            self._validate(resource, clean, None)
            if resource == "deals":
                if clean.get("stage_id") is None:
                    clean["stage_id"] = self._first_stage()
                when = format_datetime(at or self.clock())
                # Written by clients that import history (client 1.2.6+), else "now".
                clean["last_stage_change_at"] = clean.get("last_stage_change_at") or when
                clean["last_stage_change_by_id"] = user
                clean["added_at"] = when
            if resource in ("deals", "contacts", "tasks"):
                clean.setdefault("owner_id", user)
            if resource == "calls":
                clean.setdefault("user_id", user)
            record = self._insert(resource, clean, at, creator_id=user)
            self._after_activity(resource, record)
            return dict(record)

    def update(
        self,
        resource: str,
        record_id: int,
        data: Mapping,
        *,
        user_id: int | None = None,
        at: datetime | None = None,
    ) -> dict:
        """Change some fields (custom fields merge, ``tags`` replace); a Firehose ``updated``
        event with the old values of the keys that changed. Returns the record."""
        with self.lock:
            record = self.get(resource, record_id)
            clean = self._writable(resource, data)
            self._validate(resource, clean, record)
            when = at or self.clock()
            new = dict(record)
            if "custom_fields" in clean:
                merged = dict(record.get("custom_fields") or {})
                merged.update(clean.pop("custom_fields"))
                new["custom_fields"] = {k: v for k, v in merged.items() if v is not None}
            new.update(clean)
            if resource == "deals" and new["stage_id"] != record["stage_id"]:
                if "last_stage_change_at" not in clean:
                    new["last_stage_change_at"] = format_datetime(when)
                new["last_stage_change_by_id"] = user_id or self.admin_id
            if resource == "tasks" and new.get("completed") and not record.get("completed"):
                new["completed_at"] = format_datetime(when)
            self._derive(resource, new)
            if all(new[k] == record.get(k) for k in new):
                return dict(record)
            new["updated_at"] = format_datetime(when)
            self._records[resource][record_id] = new
            self._index(resource, record, new)
            self._emit(resource, "updated", new, when, record)
            return dict(new)

    def delete(self, resource: str, record_id: int, *, at: datetime | None = None) -> None:
        """Delete a record (a deal takes its associated contacts with it)."""
        with self.lock:
            record = self.get(resource, record_id)
            del self._records[resource][record_id]
            self._index(resource, record, None)
            if resource == "deals":
                self._associations.pop(record_id, None)
            if resource == "contacts":
                for links in self._associations.values():
                    links.pop(record_id, None)
            self._emit(resource, "deleted", record, at or self.clock())

    def get(self, resource: str, record_id: int) -> dict:
        """One record (a copy), or Sell's 404."""
        with self.lock:
            record = self._records[resource].get(record_id)
            if record is None:
                raise not_found(resource, record_id)
            return dict(record)

    def records(self, resource: str) -> list[dict]:
        """Every record of ``resource``, by id (copies: the state's own stay untouched)."""
        with self.lock:
            return [dict(r) for r in self._records[resource].values()]

    def select(
        self, resource: str, ids: Iterable[int] | None = None, where: Mapping | None = None
    ) -> list[dict]:
        """The records of ``resource`` whose fields equal ``where``'s values (and whose id is in
        ``ids`` if given), by id. These are the stored dicts: copy before changing them."""
        with self.lock:
            table = self._records[resource]
            where = dict(where or {})
            if ids is not None:
                candidates = [table[i] for i in sorted(set(ids)) if i in table]
            elif "resource_id" in where and resource in self._by_target:
                found = self._by_target[resource].get(where["resource_id"], ())
                candidates = [table[i] for i in sorted(found)]
            else:
                candidates = list(table.values())  # ids only grow: insertion order is id order
            if not where:
                return candidates
            return [r for r in candidates if all(r.get(k) == v for k, v in where.items())]

    # ----------------------------------------------------------------------------------------
    # Associated contacts (role is always "involved")
    # ----------------------------------------------------------------------------------------

    def associate(
        self, deal_id: int, contact_id: int, role: str = "involved", *, at: datetime | None = None
    ) -> dict:
        with self.lock:
            self.get("deals", deal_id)
            if contact_id not in self._records["contacts"]:
                raise invalid(
                    "/data/contact_id",
                    f"contact {contact_id} does not exist",
                    resource="associated_contact",
                )
            if role != "involved":
                raise invalid(
                    "/data/role", "role must be one of: involved", resource="associated_contact"
                )
            when = format_datetime(at or self.clock())
            links = self._associations.setdefault(deal_id, {})
            link = links.get(contact_id) or {
                "contact_id": contact_id,
                "role": role,
                "created_at": when,
            }
            link["updated_at"] = when
            links[contact_id] = link
            return dict(link)

    def dissociate(self, deal_id: int, contact_id: int) -> None:
        with self.lock:
            self.get("deals", deal_id)
            if self._associations.get(deal_id, {}).pop(contact_id, None) is None:
                raise not_found("associated_contacts", contact_id)

    def associated_contacts(self, deal_id: int) -> list[dict]:
        with self.lock:
            self.get("deals", deal_id)
            return [dict(v) for _, v in sorted(self._associations.get(deal_id, {}).items())]

    # ----------------------------------------------------------------------------------------
    # Tokens, counts, limits
    # ----------------------------------------------------------------------------------------

    def issue_token(
        self, user_id: int | None = None, scope: str = DEFAULT_SCOPE + " sync"
    ) -> Token:
        """An OAuth token pair for ``user_id`` (the account owner by default), as after consent."""
        with self.lock:
            return self.oauth.issue(user_id or self.admin_id, scope, self.clock())

    def personal_access_token(self, user_id: int | None = None) -> Token:
        """A personal access token (64 characters, no expiry) as made in Sell's settings."""
        with self.lock:
            return self.oauth.personal(user_id or self.admin_id)

    def authenticate(self, bearer: str | None) -> Token:
        with self.lock:
            return self.oauth.authenticate(bearer, self.clock())

    def hit(self, token: Token) -> dict[str, str]:
        """Count a request against the token's hourly allowance: the headers, or a 429."""
        with self.lock:
            return self.allowance.hit(token.access_token, self.clock())

    def count(self, key: str) -> None:
        with self.lock:
            self._counts[key] += 1

    def counts(self) -> dict[str, int]:
        """Requests served, by ``"METHOD /route/{param}"``."""
        with self.lock:
            return dict(self._counts)

    def reset_counts(self) -> None:
        with self.lock:
            self._counts.clear()

    def stream(self, resource: str, position: str | None, limit: int) -> dict:
        """One Firehose page: ``{"items", "position", "top"}`` (see ``sandbox.sell_firehose``)."""
        with self.lock:
            return self.firehose.read(resource, position, limit, self.clock())

    # ----------------------------------------------------------------------------------------
    # Internals
    # ----------------------------------------------------------------------------------------

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _insert(
        self, resource: str, data: Mapping, at: datetime | None, creator_id: int | None = None
    ) -> dict:
        when = at or self.clock()
        stamp = format_datetime(when)
        record = {"id": self._new_id(), **DEFAULTS[resource](), **data}
        if "creator_id" in record:
            record["creator_id"] = creator_id or self.admin_id
        record["created_at"] = stamp
        record["updated_at"] = stamp
        self._derive(resource, record)
        self._records[resource][record["id"]] = record
        self._index(resource, None, record)
        self._emit(resource, "created", record, when)
        return record

    def _index(self, resource: str, old: dict | None, new: dict | None) -> None:
        index = self._by_target.get(resource)
        if index is None:
            return
        if old is not None:
            index.get(old.get("resource_id"), set()).discard(old["id"])
        if new is not None:
            index.setdefault(new.get("resource_id"), set()).add(new["id"])

    def _emit(
        self, resource: str, event_type: str, record: dict, at: datetime, old: dict | None = None
    ) -> None:
        rtype = {"deals": "deal", "contacts": "contact"}.get(resource)
        definitions = self.custom_fields.by_name(rtype) if rtype else {}
        before = snapshot(resource, old, definitions) if old is not None else None
        self.firehose.append(
            resource, event_type, snapshot(resource, record, definitions), at, before
        )

    def _writable(self, resource: str, data: Mapping) -> dict:
        if resource not in WRITABLE:
            raise bad_request("invalid_resource", f"{resource} cannot be written through the API")
        if not isinstance(data, Mapping):
            raise bad_request("invalid_envelope", "The body's data must be a JSON object.")
        return {k: v for k, v in data.items() if k in WRITABLE[resource]}

    def _validate(self, resource: str, data: dict, current: dict | None) -> None:
        """Refuse what Sell refuses: missing names, unknown references, bad custom fields."""
        merged = {**(current or {}), **data}
        if resource == "contacts":
            if merged.get("is_organization"):
                if not merged.get("name"):
                    raise invalid(
                        "/data/name", "name is required for an organization", "missing", "contact"
                    )
            elif not merged.get("last_name"):
                raise invalid(
                    "/data/last_name", "last_name is required for a person", "missing", "contact"
                )
        if resource == "deals" and not merged.get("name"):
            raise invalid("/data/name", "name is required", "missing", "deal")
        if resource == "deals" and data.get("value") is not None:
            data["value"] = _amount(data["value"])
        if resource in RESOURCE_TYPES:
            self._check_target(resource, merged)
        for key, target in (
            ("stage_id", "stages"),
            ("contact_id", "contacts"),
            ("owner_id", "users"),
            ("user_id", "users"),
        ):
            if data.get(key) is not None and data[key] not in self._records[target]:
                raise invalid(
                    f"/data/{key}",
                    f"{target[:-1]} {data[key]} does not exist",
                    resource=resource[:-1],
                )
        for deal_id in data.get("associated_deal_ids") or ():
            if deal_id not in self._records["deals"]:
                raise invalid(
                    "/data/associated_deal_ids", f"deal {deal_id} does not exist", resource="call"
                )
        if "custom_fields" in data:
            rtype = {"deals": "deal", "contacts": "contact"}.get(resource)
            if rtype is None:
                raise invalid(
                    "/data/custom_fields",
                    f"{resource} have no custom fields",
                    resource=resource[:-1],
                )
            data["custom_fields"] = self.custom_fields.check_values(rtype, data["custom_fields"])

    def _check_target(self, resource: str, record: dict) -> None:
        rtype, rid = record.get("resource_type"), record.get("resource_id")
        if rtype is None and rid is None and resource == "calls":
            return  # a call may be logged against nothing but a phone number and deals
        allowed = RESOURCE_TYPES.get(resource, {})
        if rtype not in allowed:
            raise invalid(
                "/data/resource_type",
                f"resource_type must be one of: {', '.join(allowed)}",
                resource=resource[:-1],
            )
        target = allowed[rtype]
        if target is not None and rid not in self._records[target]:
            raise invalid(
                "/data/resource_id", f"{rtype} {rid} does not exist", resource=resource[:-1]
            )

    def _derive(self, resource: str, record: dict) -> None:
        """Fields Sell computes: a person's ``name``, a deal's ``organization_id``."""
        if resource == "contacts" and not record.get("is_organization"):
            record["name"] = " ".join(
                p for p in (record.get("first_name"), record.get("last_name")) if p
            )
        if resource == "deals":
            contact = self._records["contacts"].get(record.get("contact_id") or 0)
            org = None
            if contact is not None:
                org = contact["id"] if contact.get("is_organization") else contact.get("contact_id")
            record["organization_id"] = org

    def _first_stage(self) -> int:
        stages = sorted(
            self._records["stages"].values(), key=lambda s: (s["pipeline_id"], s["position"])
        )
        if not stages:
            raise invalid("/data/stage_id", "the account has no pipeline stage", "missing", "deal")
        return stages[0]["id"]

    def _after_activity(self, resource: str, record: dict) -> None:
        """A deal's ``last_activity_at`` follows the activities logged on it (no Firehose event:
        UNCONFIRMED whether Sell streams that change)."""
        if resource not in ACTIVITY_RESOURCES:
            return
        deal_ids = list(record.get("associated_deal_ids") or ())
        if record.get("resource_type") == "deal":
            deal_ids.append(record.get("resource_id"))
        for deal_id in deal_ids:
            deal = self._records["deals"].get(deal_id)
            if deal is not None and (deal["last_activity_at"] or "") < record["created_at"]:
                deal["last_activity_at"] = record["created_at"]


def _amount(value: object) -> int | float:
    """A deal value as Sell returns it (a JSON number); strings like ``"1000.50"`` accepted."""
    if isinstance(value, bool):
        raise invalid("/data/value", "value must be a number", resource="deal")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise invalid("/data/value", "value must be a number", resource="deal") from None
    return int(number) if number.is_integer() else round(number, 2)
