"""The store's tables. Every table but `tenants` carries the tenant, and queries are scoped to it.

Snapshots keep Deal Radar's working copy of the CRM in the canonical shape, one row per CRM
record, upserted by CRM id and deleted when the CRM deletes. Activities are kept as columns, not
as JSON documents, because the daily sweep reads millions of them: `at_epoch` is the activity's
instant as epoch seconds, cheap to read back into the engine.

The database, not Redis, is the record of work: `inbox` holds every accepted CRM event until it
is processed, `outbox` every effect on a CRM until it is done, each under a unique key.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Named constraints, so that migrations can refer to them on every database."""

ID = String(36)
CRM_ID = String(64)
"""CRM record ids: HubSpot numbers, Salesforce 18-character ids, Sell numbers."""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar = {dict[str, Any]: JSON, list[Any]: JSON}


class Tenant(Base):
    """One CRM account (a HubSpot portal, a Salesforce org, a Sell account) using Deal Radar."""

    __tablename__ = "tenants"
    __table_args__ = (UniqueConstraint("crm", "account_id", name="uq_tenants_crm_account"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    crm: Mapped[str] = mapped_column(String(20))
    account_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    locale: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[str] = mapped_column(String(20), default="active")
    """active | suspended (a permanent CRM error, see status_reason) | uninstalled"""
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TenantScoped:
    """Mixin: the tenant's id, never optional; part of the primary key unless the table has a
    surrogate id (SQLite autoincrements only a lone integer key), where it is indexed instead."""

    tenant_in_primary_key = True
    tenant_index = True
    """False where the table declares its own index led by the tenant instead."""
    tenant_foreign_key = True
    """False where a row's tenant is not checked by the database (the inbox: see InboxEvent)."""

    @declared_attr
    def tenant_id(cls) -> Mapped[str]:
        in_pk = cls.tenant_in_primary_key
        foreign_key = (
            (ForeignKey("tenants.id", ondelete="CASCADE"),) if cls.tenant_foreign_key else ()
        )
        return mapped_column(
            ID,
            *foreign_key,
            primary_key=in_pk,
            index=not in_pk and cls.tenant_index,
            nullable=False,
            sort_order=-10,  # first in every key: the tenant leads every index
        )


class Credential(TenantScoped, Base):
    """OAuth tokens, encrypted (connector.store.secrets); one row per tenant and purpose."""

    __tablename__ = "credentials"

    name: Mapped[str] = mapped_column(String(40), primary_key=True, default="oauth")
    ciphertext: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)
    """Bumped on every refresh: a refresher that lost the race sees it moved and re-reads."""
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SettingsVersion(TenantScoped, Base):
    """Every version of a tenant's settings document, as written, with who and when."""

    __tablename__ = "settings_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    changed_by: Mapped[str] = mapped_column(String(200), default="")
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    comment: Mapped[str] = mapped_column(Text, default="")


class ApiKey(TenantScoped, Base):
    """A tenant's API key, stored as a SHA-256 hash; `prefix` lets an admin tell keys apart."""

    tenant_in_primary_key = False
    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# --- snapshots ------------------------------------------------------------------------------


class DealRow(TenantScoped, Base):
    __tablename__ = "deals"
    # Ordered by crm_id within the status: the sweep pages through open deals by keyset on it
    # (migration 0003 says why).
    __table_args__ = (Index("ix_deals_tenant_status_crm_id", "tenant_id", "status", "crm_id"),)

    crm_id: Mapped[str] = mapped_column(CRM_ID, primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(100))
    stage: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(10))
    owner: Mapped[str | None] = mapped_column(CRM_ID)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The canonical deal (engine.model's JSON form of `deal`)."""
    activities: Mapped[str | None] = mapped_column(Text)
    """The deal's activities as one compact JSON array (snapshots.pack_activities), written
    with the bundle: the sweep reads a deal in one row instead of joining forty. The
    `activities` and `activity_deals` tables stay the record for lookups by activity; NULL on
    rows saved before this column existed (then the join is used)."""
    modified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the CRM last changed the deal, as the CRM says."""
    synced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ContactRow(TenantScoped, Base):
    __tablename__ = "contacts"

    crm_id: Mapped[str] = mapped_column(CRM_ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(300), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    title: Mapped[str] = mapped_column(String(300), default="")
    synced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DealContactRow(TenantScoped, Base):
    """A contact's place on a deal: its roles there (from labels, contact roles, a custom field)."""

    __tablename__ = "deal_contacts"
    # The deals of a contact: a contact's webhook finds them, the purge its last link.
    __table_args__ = (Index("ix_deal_contacts_contact", "tenant_id", "contact_id"),)

    deal_id: Mapped[str] = mapped_column(CRM_ID, primary_key=True)
    contact_id: Mapped[str] = mapped_column(CRM_ID, primary_key=True)
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)


class ActivityRow(TenantScoped, Base):
    __tablename__ = "activities"

    crm_id: Mapped[str] = mapped_column(CRM_ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    at_epoch: Mapped[float] = mapped_column(Float)
    offset_minutes: Mapped[int] = mapped_column(Integer, default=0)
    """The UTC offset the CRM gave the instant in, so a round trip shows the same time."""
    direction: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10))
    contacts: Mapped[str] = mapped_column(Text, default="")
    """Direct participants' contact ids, space-separated: CRM ids hold no spaces, and the sweep
    reads millions of these, where a JSON decode per row costs more than the rest of the row."""
    cc: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[str | None] = mapped_column(CRM_ID)
    synced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ActivityDealRow(TenantScoped, Base):
    """Which deals an activity belongs to (an email may be logged on two deals)."""

    __tablename__ = "activity_deals"
    __table_args__ = (Index("ix_activity_deals_activity", "tenant_id", "activity_id"),)

    deal_id: Mapped[str] = mapped_column(CRM_ID, primary_key=True)
    activity_id: Mapped[str] = mapped_column(CRM_ID, primary_key=True)


class UserRow(TenantScoped, Base):
    __tablename__ = "users"

    crm_id: Mapped[str] = mapped_column(CRM_ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(300), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    """False once the CRM says the user is deactivated (engine.model.User.active)."""


class TaskRotation(TenantScoped, Base):
    """How many tasks a team's round robin (`tasks.teams`) has handed out: the next one goes to
    the member after the last one's, counted in the database so that two workers making tasks
    at once never draw the same turn."""

    __tablename__ = "task_rotations"

    team: Mapped[str] = mapped_column(String(50), primary_key=True)
    turns: Mapped[int] = mapped_column(Integer, default=0)


class Mute(TenantScoped, Base):
    """A rep's mute of one alert on one deal, until a date (the engine takes it as input)."""

    __tablename__ = "mutes"

    deal_id: Mapped[str] = mapped_column(CRM_ID, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    until: Mapped[date] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- evaluation results -------------------------------------------------------------------------


class Evaluation(TenantScoped, Base):
    """The latest evaluation of a deal, for the API and for diffs."""

    __tablename__ = "evaluations"

    deal_id: Mapped[str] = mapped_column(CRM_ID, primary_key=True)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    """engine.evaluate.Evaluation.to_dict()"""
    score: Mapped[int] = mapped_column(Integer)
    grade: Mapped[str] = mapped_column(String(10))
    alert_codes: Mapped[str] = mapped_column(String(400), default="")
    """Space-separated codes, for filtering in SQL."""
    evaluated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AlertEpisode(TenantScoped, Base):
    """One continuous stretch during which an alert holds for a deal."""

    tenant_in_primary_key = False
    # (tenant, deal) rather than the tenant alone: given an index on the tenant alone, a planner
    # that takes the table for empty (analyzed before a first sweep filled it) probes each deal
    # through it and filters the tenant's every episode (migration 0003 says more).
    tenant_index = False
    __tablename__ = "alert_episodes"
    __table_args__ = (
        Index("ix_alert_episodes_tenant_deal", "tenant_id", "deal_id"),
        # At most one open episode per deal and alert key, on every database.
        Index(
            "uq_alert_episodes_open",
            "tenant_id",
            "deal_id",
            "key",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    deal_id: Mapped[str] = mapped_column(CRM_ID)
    key: Mapped[str] = mapped_column(String(200))
    """The alert's code, plus the role for key_role_silent (engine.alerts.Alert.key)."""
    code: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    message: Mapped[str] = mapped_column(Text, default="")
    crm_refs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """What was created in the CRM for this episode (task id, note id), by effect."""
    deal_deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the CRM last deleted its deal: the daily purge keeps a deleted deal's episodes for
    KEEP_ORPHANS from then, for a deal restored from the recycle bin."""


class HealthPoint(TenantScoped, Base):
    """A deal's health score once a day (the tenant's local day), for trends and charts."""

    __tablename__ = "health_points"

    deal_id: Mapped[str] = mapped_column(CRM_ID, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    score: Mapped[int] = mapped_column(Integer)
    grade: Mapped[str] = mapped_column(String(10))


class WrittenValues(TenantScoped, Base):
    """The values Deal Radar last wrote to a CRM record: write only what changed, spot echoes."""

    __tablename__ = "written_values"

    object_type: Mapped[str] = mapped_column(String(40), primary_key=True)
    record_id: Mapped[str] = mapped_column(CRM_ID, primary_key=True)
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    written_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- work ---------------------------------------------------------------------------------------


class InboxEvent(TenantScoped, Base):
    """A CRM event as received, committed before it is acknowledged.

    No foreign key to `tenants` and no index on the tenant alone (migration 0010): the webhook
    receiver inserts ten rows a delivery, and the key's check on every row (a row lock on the
    tenant, shared by every concurrent insert) was a sixth of PostgreSQL's work per delivery;
    the unique key (tenant, dedupe key) serves every look-up by tenant. A deleted tenant's rows
    are deleted by the hourly purge (jobs.purge), and the sweeper reads pending rows through a
    join on `tenants`, so rows left behind by a deleted tenant are never worked on."""

    tenant_in_primary_key = False
    tenant_index = False
    tenant_foreign_key = False
    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("tenant_id", "dedupe_key", name="uq_inbox_tenant_dedupe"),
        Index("ix_inbox_status_received", "status", "received_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    dedupe_key: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    deal_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    """pending | done | failed | unresolved (names no deal known yet; kept for the adapter's
    association lookup)"""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OutboxEffect(TenantScoped, Base):
    """An effect on a CRM (a write-back, a task, a note), done once under its key."""

    tenant_in_primary_key = False
    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("tenant_id", "key", name="uq_outbox_tenant_key"),
        Index("ix_outbox_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    key: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    """pending | done | failed (permanent error, see last_error)"""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SyncCursor(TenantScoped, Base):
    """Where an incremental pull got to (a watermark, a feed position), per stream."""

    __tablename__ = "sync_cursors"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SweepRun(TenantScoped, Base):
    """A tenant's daily sweep: one per local day, which is what keeps two crons from doubling it."""

    __tablename__ = "sweep_runs"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(12), default="running")
    """running | paused (its CRM API budget: jobs/budget.py) | done | failed"""
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cursor: Mapped[str] = mapped_column(CRM_ID, default="", server_default="")
    """The last deal id of the batches committed so far (keyset order): where the sweep goes on."""
    touched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the run last moved (a batch committed, a pause looked at again)."""


class SetupRun(TenantScoped, Base):
    """A tenant's latest install setup (jobs.install): provisioning, then the initial sync.

    One row per tenant, rewritten by each setup; what `dealradar tenants status` shows of it."""

    __tablename__ = "setup_runs"

    status: Mapped[str] = mapped_column(String(12), default="provisioning")
    """provisioning | syncing | done | failed"""
    requested: Mapped[int] = mapped_column(Integer, default=0)
    """Deals whose refresh the initial sync has requested so far."""
    pages: Mapped[int] = mapped_column(Integer, default=0)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """The CRM's deal-contact labels and the role each maps to ({label: role})."""
    detail: Mapped[str | None] = mapped_column(Text)
    """What provisioning did, or why the setup failed."""
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# --- CRM record mirrors and notices (connector/store/mirror.py) -------------------------------


class MirrorRecordRow(TenantScoped, Base):
    """A CRM record as the CRM's change feed last showed it, for a CRM that cannot list a
    deal's records (Zendesk Sell's calls); adapters.base.RecordMirror says what it is for."""

    __tablename__ = "mirror_records"

    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    """The CRM's resource ("calls", "contacts")."""
    crm_id: Mapped[str] = mapped_column(CRM_ID, primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    """The full listing that last saw it: a later listing prunes what it did not see."""
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MirrorLinkRow(TenantScoped, Base):
    """A mirrored record's place on a deal (a call's associated deal, a deal's contact)."""

    __tablename__ = "mirror_links"
    __table_args__ = (Index("ix_mirror_links_record", "tenant_id", "kind", "crm_id"),)

    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    deal_id: Mapped[str] = mapped_column(CRM_ID, primary_key=True)
    crm_id: Mapped[str] = mapped_column(CRM_ID, primary_key=True)


class Notice(TenantScoped, Base):
    """Something an admin must fix in the CRM, as an adapter last found it (a custom field
    missing); `dealradar tenants status` shows them."""

    __tablename__ = "notices"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    message: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- outbound hooks -----------------------------------------------------------------------------


class Hook(TenantScoped, Base):
    """A REST hook subscription (the Zapier pattern): a target URL and the events it gets."""

    tenant_in_primary_key = False
    __tablename__ = "hooks"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    target_url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[Any]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(String(200), default="")
    secret: Mapped[str] = mapped_column(Text)
    """The Standard Webhooks signing secret, sealed by connector.store.secrets."""
    status: Mapped[str] = mapped_column(String(16), default="active")
    """active | unsubscribed (the target answered 410 Gone; see status_reason)"""
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HookDelivery(TenantScoped, Base):
    """One event for one hook: its exact body, retried until the target takes it."""

    tenant_in_primary_key = False
    __tablename__ = "hook_deliveries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "hook_id", "event_key", name="uq_hook_deliveries_event"),
        Index("ix_hook_deliveries_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    hook_id: Mapped[str] = mapped_column(ID, ForeignKey("hooks.id", ondelete="CASCADE"))
    event_key: Mapped[str] = mapped_column(String(300))
    event_type: Mapped[str] = mapped_column(String(40))
    msg_id: Mapped[str] = mapped_column(String(64))
    """The `webhook-id` header: the same on every attempt, so receivers can drop repeats."""
    body: Mapped[str] = mapped_column(Text)
    """The JSON body exactly as signed and sent, on every attempt."""
    status: Mapped[str] = mapped_column(String(12), default="pending")
    """pending | done | failed (gave up after the retry window) | cancelled (hook gone)"""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiUsageRow(TenantScoped, Base):
    """A CRM account's API calls against its allowance (Salesforce's daily requests), as the
    CRM last stated them, and since when Deal Radar's non-urgent work (polling, the daily sweep)
    waits for usage to fall below the tenant's share (jobs/budget.py)."""

    __tablename__ = "api_usage"

    used: Mapped[int] = mapped_column(Integer)
    limit: Mapped[int] = mapped_column(Integer)
    share: Mapped[float | None] = mapped_column(Float)
    """The share of the allowance past which non-urgent work waits (settings), when checked."""
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    paused_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
