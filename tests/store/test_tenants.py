"""Tenants, API keys and settings versions, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select

from connector.store import tenants as tenants_mod
from connector.store.db import Store
from connector.store.models import ApiKey, SettingsVersion
from connector.store.tenants import (
    AccountTenants,
    InvalidTenant,
    SettingsConflict,
    TenantExists,
    UnknownApiKey,
    UnknownTenant,
    create_tenant,
    current_settings,
    find_tenant,
    get_tenant,
    issue_api_key,
    list_api_keys,
    list_tenants,
    revoke_api_key,
    save_settings,
    set_status,
    settings_history,
    tenant_for_api_key,
)
from engine.settings import SettingsError

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
ORG15 = "00D5g000004ABcD"
ORG18 = "00D5g000004ABcDEAW"  # its suffix computed as Salesforce does


def _hubspot(store: Store, account: str = "123", **kw: object) -> tuple[str, str]:
    tenant, key = create_tenant(store, crm="hubspot", account_id=account, now=NOW, **kw)
    return tenant.id, key


# --- tenants ------------------------------------------------------------------------------------


def test_create_returns_the_tenant_and_its_key_once(store: Store) -> None:
    tenant, key = create_tenant(
        store, crm="hubspot", account_id=" 123 ", name="Acme", timezone="Europe/Paris",
        locale="fr", now=NOW,
    )  # fmt: skip
    assert len(tenant.id) == 32 and int(tenant.id, 16) >= 0
    assert (tenant.crm, tenant.account_id, tenant.name) == ("hubspot", "123", "Acme")
    assert (tenant.timezone, tenant.locale, tenant.status) == ("Europe/Paris", "fr", "active")
    assert key.startswith("drk_") and len(key) == 44
    assert set(key[4:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    [row] = list_api_keys(store, tenant.id)
    assert row.prefix == key[:8] and len(row.key_hash) == 64
    assert key not in (row.key_hash, row.prefix, row.label)
    assert get_tenant(store, tenant.id).created_at.replace(tzinfo=UTC) == NOW
    assert tenant_for_api_key(store, key, NOW) == tenant.id


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"crm": "pipedrive"}, "hubspot, salesforce, sell, test"),
        ({"account_id": "  "}, "account id is empty"),
        ({"account_id": "x" * 256}, "longer than 255"),
        ({"name": "n" * 201}, "name is longer than 200"),
        ({"timezone": "Mars/Olympus"}, "IANA"),
        ({"timezone": ""}, "IANA"),
        ({"locale": "de"}, "en, fr"),
        ({"crm": "salesforce", "account_id": "00D-not-an-id"}, "15- or 18-character"),
        # An org id starts 00D, and an 18-character one's last three say which of the first 15
        # are capitals: anything else (a user's id, a typo) is an org no message ever names.
        ({"crm": "salesforce", "account_id": "ABCDEFGHIJKLMNO"}, "starting 00D"),
        ({"crm": "salesforce", "account_id": "0055g000004ABcD"}, "starting 00D"),
        ({"crm": "salesforce", "account_id": "00d5g000004ABcD"}, "starting 00D"),
        ({"crm": "salesforce", "account_id": "00D5g000004ABcDZZZ"}, "should be EAW"),
        # Webhooks name a portal by its number: a tenant under any other spelling of it
        # (its domain, leading zeros, a sign, a decimal point) would never be found.
        ({"account_id": "acme.hubspot.com"}, "not a HubSpot portal id"),
        ({"account_id": "0123"}, "not a HubSpot portal id"),
        ({"account_id": "0"}, "not a HubSpot portal id"),
        ({"account_id": "-5"}, "not a HubSpot portal id"),
        ({"account_id": "123.0"}, "not a HubSpot portal id"),
        ({"account_id": "１２３"}, "not a HubSpot portal id"),  # fullwidth: str.isdigit() says yes
        ({"crm": "sell", "account_id": "acme"}, "not a Zendesk Sell account id"),
        ({"crm": "sell", "account_id": "007000001"}, "not a Zendesk Sell account id"),
    ],
)
def test_invalid_fields_say_what_is_allowed(store: Store, fields: dict, words: str) -> None:
    args = {"crm": "hubspot", "account_id": "123", "now": NOW} | fields
    with pytest.raises(InvalidTenant, match=words):
        create_tenant(store, **args)
    assert list_tenants(store) == []


def test_a_duplicate_account_is_refused_by_name(store: Store) -> None:
    _hubspot(store, "123")
    with pytest.raises(TenantExists, match="hubspot account '123'"):
        _hubspot(store, "123")
    create_tenant(store, crm="sell", account_id="123", now=NOW)  # same id, other CRM: fine
    create_tenant(store, crm="salesforce", account_id=ORG15, now=NOW)
    with pytest.raises(TenantExists, match=ORG18):
        create_tenant(store, crm="salesforce", account_id=ORG18, now=NOW)
    assert len(list_tenants(store)) == 3
    with store.all_tenants("test: count keys") as s:
        assert len(s.scalars(select(ApiKey)).all()) == 3  # the refused ones left no key behind


def test_a_racing_duplicate_is_caught_by_the_database(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    _hubspot(store, "123")
    real, calls = tenants_mod._find, []

    def missed_the_other_install(*args):  # type: ignore[no-untyped-def]
        calls.append(args)
        return None if len(calls) == 1 else real(*args)

    monkeypatch.setattr(tenants_mod, "_find", missed_the_other_install)
    with pytest.raises(TenantExists):
        _hubspot(store, "123")


def test_find_salesforce_orgs_by_15_or_18_characters_case_sensitively(store: Store) -> None:
    tenant, _ = create_tenant(store, crm="salesforce", account_id=ORG18, now=NOW)
    assert find_tenant(store, "salesforce", ORG15).id == tenant.id
    assert find_tenant(store, "salesforce", ORG18).id == tenant.id
    assert find_tenant(store, "salesforce", ORG15.lower()) is None
    assert find_tenant(store, "salesforce", "00D5g000004ABcE") is None
    assert find_tenant(store, "hubspot", ORG15) is None


def test_find_other_crms_exactly(store: Store) -> None:
    tid, _ = _hubspot(store, "123")
    assert find_tenant(store, "hubspot", "123").id == tid
    assert find_tenant(store, "hubspot", "1234") is None
    assert find_tenant(store, "sell", "123") is None


def test_get_list_and_status(store: Store) -> None:
    b, _ = create_tenant(store, crm="hubspot", account_id="2", now=NOW + timedelta(seconds=1))
    b = b.id
    a, _ = _hubspot(store, "1")
    assert [t.id for t in list_tenants(store)] == [a, b]  # oldest first
    with pytest.raises(UnknownTenant, match="dealradar tenants list"):
        get_tenant(store, "nope")
    later = NOW + timedelta(hours=1)
    tenant = set_status(store, b, "suspended", "HubSpot: app scopes revoked", later)
    assert (tenant.status, tenant.status_reason) == ("suspended", "HubSpot: app scopes revoked")
    assert get_tenant(store, b).updated_at.replace(tzinfo=UTC) == later
    assert [t.id for t in list_tenants(store, status="suspended")] == [b]
    assert set_status(store, b, "active", "", later).status_reason is None
    with pytest.raises(InvalidTenant, match="active, suspended, uninstalled"):
        set_status(store, a, "paused", "", later)
    with pytest.raises(UnknownTenant):
        set_status(store, "nope", "active", "", later)


# --- API keys -----------------------------------------------------------------------------------


def test_api_keys_issue_lookup_revoke(store: Store) -> None:
    a, key_a = _hubspot(store, "1")
    b, key_b = _hubspot(store, "2")
    second = issue_api_key(store, a, "zapier", NOW)
    assert second != key_a
    assert tenant_for_api_key(store, second, NOW) == a
    assert tenant_for_api_key(store, key_b, NOW) == b
    zapier = next(k for k in list_api_keys(store, a) if k.label == "zapier")
    assert revoke_api_key(store, a, zapier.id, NOW) is True
    assert revoke_api_key(store, a, zapier.id, NOW) is False
    assert tenant_for_api_key(store, second, NOW) is None
    assert tenant_for_api_key(store, key_a, NOW) == a  # the other key still works
    with pytest.raises(UnknownApiKey):
        revoke_api_key(store, b, zapier.id, NOW)  # not b's key
    with pytest.raises(UnknownTenant):
        issue_api_key(store, "nope", "x", NOW)
    with pytest.raises(InvalidTenant, match="label"):
        issue_api_key(store, a, "x" * 201, NOW)


@pytest.mark.parametrize(
    "bad", ["", "drk_", "drk_" + "A" * 40, "xxx_" + "A" * 40, "drk_" + "A" * 41, None, 42]
)
def test_anything_but_a_live_key_is_none(store: Store, bad: object) -> None:
    _hubspot(store)
    assert tenant_for_api_key(store, bad, NOW) is None  # type: ignore[arg-type]


def test_uninstalled_tenants_keys_stop_working(store: Store) -> None:
    tid, key = _hubspot(store)
    set_status(store, tid, "suspended", "CRM said no", NOW)
    assert tenant_for_api_key(store, key, NOW) == tid
    set_status(store, tid, "uninstalled", "", NOW)
    assert tenant_for_api_key(store, key, NOW) is None


def test_last_used_is_recorded_at_most_once_a_minute(store: Store) -> None:
    tid, key = _hubspot(store)

    def last_used() -> datetime:
        [row] = list_api_keys(store, tid)
        return row.last_used_at.replace(tzinfo=UTC) if row.last_used_at else None

    assert last_used() is None
    tenant_for_api_key(store, key, NOW)
    assert last_used() == NOW
    tenant_for_api_key(store, key, NOW + timedelta(seconds=30))
    assert last_used() == NOW
    paris = timezone(timedelta(hours=1))
    tenant_for_api_key(store, key, (NOW + timedelta(minutes=2)).astimezone(paris))
    assert last_used() == NOW + timedelta(minutes=2)  # stored in UTC whatever the offset given


# --- settings -----------------------------------------------------------------------------------


def test_defaults_take_the_tenants_timezone_and_locale(store: Store) -> None:
    tid, _ = _hubspot(store, timezone="Europe/Paris", locale="fr")
    settings = current_settings(store, tid)
    assert (settings.timezone, settings.locale) == ("Europe/Paris", "fr")
    assert settings.alerts_for("default")["no_activity"]["days"] == 10
    assert settings_history(store, tid) == []


def test_save_appends_versions_and_the_latest_is_in_force(store: Store) -> None:
    tid, _ = _hubspot(store, timezone="Europe/Paris")
    other, _ = _hubspot(store, "456")
    assert save_settings(store, tid, {"alerts": {"no_activity": {"days": 15}}}, "ana", NOW) == 1
    doc = {"timezone": "America/New_York", "alerts": {"no_activity": {"days": 20}}}
    assert save_settings(store, tid, doc, "bob", NOW, comment="US team") == 2
    assert save_settings(store, other, {}, "carl", NOW) == 1  # numbered per tenant
    settings = current_settings(store, tid)
    assert settings.timezone == "America/New_York"  # the document wins over the tenant row
    assert settings.alerts_for("p")["no_activity"]["days"] == 20
    history = settings_history(store, tid)
    assert [(v.version, v.changed_by, v.comment) for v in history] == [
        (2, "bob", "US team"),
        (1, "ana", ""),
    ]
    assert history[0].document == doc  # stored as written, not resolved
    assert current_settings(store, other).timezone == "UTC"


def test_a_crm_accounts_zone_is_adopted_only_where_nobody_chose_one(store: Store) -> None:
    fresh, _ = _hubspot(store, "201")
    assert tenants_mod.adopt_timezone(store, fresh, "Europe/Paris", NOW)
    assert get_tenant(store, fresh).timezone == "Europe/Paris"
    assert not tenants_mod.adopt_timezone(store, fresh, "US/Pacific", NOW)  # taken once
    chosen, _ = _hubspot(store, "202", timezone="Asia/Tokyo")
    assert not tenants_mod.adopt_timezone(store, chosen, "Europe/Paris", NOW)
    assert get_tenant(store, chosen).timezone == "Asia/Tokyo"
    in_settings, _ = _hubspot(store, "203")
    save_settings(store, in_settings, {"timezone": "UTC"}, "ana", NOW)  # UTC on purpose
    assert not tenants_mod.adopt_timezone(store, in_settings, "Europe/Paris", NOW)
    assert current_settings(store, in_settings).timezone == "UTC"
    with pytest.raises(InvalidTenant, match="unknown time zone"):
        tenants_mod.adopt_timezone(store, fresh, "Mars/Olympus_Mons", NOW)


def test_invalid_settings_raise_the_engines_error_unchanged(store: Store) -> None:
    tid, _ = _hubspot(store)
    with pytest.raises(SettingsError) as caught:
        save_settings(store, tid, {"alerts": {"no_activity": {"days": 0}}}, "ana", NOW)
    assert type(caught.value) is SettingsError
    assert list(caught.value.errors) == ["alerts.no_activity.days"]
    assert settings_history(store, tid) == []
    with pytest.raises(UnknownTenant):
        save_settings(store, "nope", {}, "ana", NOW)
    with pytest.raises(UnknownTenant):
        current_settings(store, "nope")


def test_salesforce_user_ids_saved_in_15_characters_are_read_in_18(store: Store) -> None:
    """Documents saved before 15-character user ids were understood (or by any other way in)
    are read with the 18-character ids Salesforce's API sends; an id that is none is left as
    it was, whatever it is, and other CRMs' ids are never touched."""
    sf = create_tenant(store, crm="salesforce", account_id=ORG15, now=NOW)[0].id
    hs, _ = _hubspot(store)
    ana15, ana18, ben18 = "005Dx0023j4OKWi", "005Dx0023j4OKWiIAO", "005Dx0023j4OISzIAO"
    legacy = {
        "tasks": {"fallback_owner": ana15, "teams": {"desk": [ana15, "u-tom", ana18, ben18]}},
        "notifications": {"reps": {ana15: {"digest": False}, ana18: {"channels": ["email"]}}},
        "digest": {"managers": [{"email": "sam@vendor.example", "reps": [ana15]}]},
    }
    for tid in (sf, hs):
        with store.tenant(tid) as s:
            s.add(SettingsVersion(tenant_id=tid, version=1, document=legacy, changed_by="old",
                                  changed_at=NOW, comment=""))  # fmt: skip
    read = current_settings(store, sf).document
    assert read["tasks"]["fallback_owner"] == ana18
    assert read["tasks"]["teams"] == {"desk": [ana18, "u-tom", ben18]}, "Ana once, first turn"
    assert read["notifications"]["reps"] == {ana18: {"channels": ["email"]}}, "the 18's wins"
    assert read["digest"]["managers"][0]["reps"] == [ana18]
    assert current_settings(store, hs).document["tasks"]["teams"] == legacy["tasks"]["teams"]


def test_a_save_that_loses_the_version_race_retries_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    tid, _ = _hubspot(store)
    save_settings(store, tid, {}, "ana", NOW)
    real = tenants_mod._next_settings_version
    stale = iter([1])  # as if read just before a concurrent save of version 1 committed

    def racing(s, tenant_id):  # type: ignore[no-untyped-def]
        return next(stale, None) or real(s, tenant_id)

    monkeypatch.setattr(tenants_mod, "_next_settings_version", racing)
    assert save_settings(store, tid, {}, "bob", NOW) == 2
    monkeypatch.setattr(tenants_mod, "_next_settings_version", lambda *_: 1)
    with pytest.raises(SettingsConflict, match="save again"):
        save_settings(store, tid, {}, "carl", NOW)
    assert [v.version for v in settings_history(store, tid)] == [2, 1]


def test_concurrent_saves_get_distinct_versions(store: Store) -> None:
    tid, _ = _hubspot(store)
    start = threading.Barrier(2)
    got: list[int] = []

    def save(who: str) -> None:
        start.wait()
        got.append(save_settings(store, tid, {}, who, NOW))

    threads = [threading.Thread(target=save, args=(w,)) for w in ("ana", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == [1, 2]


def test_account_tenants_remembers_found_tenants_for_its_ttl_only(store: Store) -> None:
    clock = [0.0]
    accounts = AccountTenants(store, ttl=60, clock=lambda: clock[0])
    assert accounts.find("hubspot", "777") is None
    tenant_id, _ = _hubspot(store, account="777")
    assert accounts.find("hubspot", "777") == tenant_id  # a miss is not remembered

    queries: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: queries.append(a[2]))
    clock[0] = 59.0
    assert accounts.find("hubspot", "777") == tenant_id
    assert queries == []
    clock[0] = 61.0
    assert accounts.find("hubspot", "777") == tenant_id
    assert len(queries) == 1


def test_an_uninstalled_tenants_account_is_unknown_to_the_receiver_until_reinstalled(
    store: Store,
) -> None:
    """A customer who left but whose CRM still sends webhooks: acknowledged as an unknown
    account, not stored for a tenant nothing will ever work on."""
    accounts = AccountTenants(store, ttl=0)
    tenant_id, _ = _hubspot(store, account="778")
    assert accounts.find("hubspot", "778") == tenant_id
    tenants_mod.uninstall_tenant(store, tenant_id, "left", NOW)
    assert accounts.find("hubspot", "778") is None
    tenants_mod.set_status(store, tenant_id, "active", "", NOW)  # installed again
    assert accounts.find("hubspot", "778") == tenant_id
