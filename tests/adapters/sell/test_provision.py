"""Checking a Sell account's custom fields: the admin is told exactly what to create; a field
missing or renamed later is noticed through the feed; nothing crashes, the rest goes on."""

from __future__ import annotations

from adapters.sell.fields import BY_FIELD, FIELDS
from adapters.sell.provision import FIELDS_NOTICE, ROLE_NOTICE
from tests.adapters.sell.conftest import Account, provision_fields


def test_a_complete_account_has_nothing_to_fix(account: Account) -> None:
    check = account.adapter().check_fields()
    assert check.complete and set(check.usable) == {f.name for f in FIELDS}
    assert account.notices() == {}


def test_missing_and_mistyped_fields_are_named_with_what_to_create(make_account) -> None:
    account = make_account(fields=False)
    state = account.state
    provision_fields(state, skip=("Deal Radar alerts", "Deal Radar health score",
                                  "Deal Radar health trend"))  # fmt: skip
    state.define_custom_field("deal", "Deal Radar health score", "string")
    state.define_custom_field("deal", "Deal Radar health trend", "list", ["improving"])
    check = account.adapter().check_fields()
    assert [f.name for f in check.missing] == ["Deal Radar alerts"]
    message = account.notices()[FIELDS_NOTICE]
    assert BY_FIELD["alerts"].describe() in message, "the exact field, type and options"
    assert '"Deal Radar health score" is a string field' in message and "(Number)" in message
    assert 'add the options steady, declining to "Deal Radar health trend"' in message
    assert "Deal Radar health score" not in check.usable
    assert check.usable["Deal Radar health trend"] == frozenset({"improving"})
    # The admin fixes it; the next check clears the notice.
    state.define_custom_field("deal", "Deal Radar alerts", "multi_select_list",
                              BY_FIELD["alerts"].choices)  # fmt: skip
    state.delete_custom_field("deal", "Deal Radar health score")
    state.define_custom_field("deal", "Deal Radar health score", "number")
    state.delete_custom_field("deal", "Deal Radar health trend")
    state.define_custom_field("deal", "Deal Radar health trend", "list",
                              BY_FIELD["health_trend"].choices)  # fmt: skip
    assert account.adapter().check_fields().complete
    assert FIELDS_NOTICE not in account.notices()


def test_the_role_field_renamed_is_noticed_through_the_feed_and_roles_come_back(
    account: Account,
) -> None:
    _, cursor = account.sync()
    assert ROLE_NOTICE not in account.notices()
    deal_id = next(
        str(d["id"]) for d in account.state.records("deals")
        if any(b.contacts and any(c.roles for c in b.contacts)
               for b in account.adapter().pull([str(d["id"])]).bundles)
    )  # fmt: skip
    account.state.rename_custom_field("contact", "Buying role", "Rôle d'achat")
    account.sync(cursor=cursor)
    message = account.notices()[ROLE_NOTICE]
    assert 'no contact custom field "Buying role"' in message and "sell.role_field" in message
    assert "every other alert works" in message
    (bundle,) = account.adapter().pull([deal_id]).bundles
    assert all(c.roles == () for c in bundle.contacts), "no roles, and no crash"
    # The admin points the settings at the new name: roles are read again, the notice goes.
    renamed = account.adapter(sell={"role_field": "Rôle d'achat"})
    renamed.check_fields()
    assert ROLE_NOTICE not in account.notices()
    (bundle,) = renamed.pull([deal_id]).bundles
    assert any(c.roles for c in bundle.contacts)


def test_a_role_field_of_the_wrong_type_is_explained(make_account) -> None:
    account = make_account(deals=3, fields=True)
    account.state.define_custom_field("contact", "Persona", "number")
    account.adapter(sell={"role_field": "Persona"}).check_fields()
    assert "is a number field" in account.notices()[ROLE_NOTICE]
