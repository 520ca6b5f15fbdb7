"""Deal Radar's fields into Sell deals: one PUT per deal with what changed, only the fields the
account has, a deleted deal skipped, a field deleted since the check handled."""

from __future__ import annotations

from adapters.base import WriteResult
from adapters.sell.fields import FIELDS
from tests.adapters.sell.conftest import Account, provision_fields

VALUES = {"alerts": ["no_activity", "amount_missing"], "alert_count": 2,
          "summary": "No activity · No amount", "health_score": 35, "health_grade": "poor",
          "health_trend": "", "days_since_interaction": 14,
          "evaluated_at": "2026-12-01T09:00:00+00:00"}  # fmt: skip


def _custom(account: Account, deal_id: str) -> dict:
    return account.state.get("deals", int(deal_id))["custom_fields"]


def test_values_become_sells_custom_field_values(account: Account) -> None:
    deal_id = str(account.state.records("deals")[0]["id"])
    account.state.reset_counts()
    assert account.adapter().write_back({deal_id: VALUES}) == WriteResult()
    custom = _custom(account, deal_id)
    assert sorted(c["name"] for c in custom["Deal Radar alerts"]) == ["amount_missing",
                                                                      "no_activity"]  # fmt: skip
    assert custom["Deal Radar alert count"] == "2" and custom["Deal Radar health score"] == "35"
    assert custom["Deal Radar health grade"]["name"] == "poor"
    assert "Deal Radar health trend" not in custom, "empty clears it"
    assert custom["Deal Radar evaluated at"] == "2026-12-01T09:00:00Z"
    assert account.state.counts()["PUT /v2/deals/{record_id}"] == 1
    account.adapter().write_back({deal_id: {"health_score": 36}})
    custom = _custom(account, deal_id)
    assert custom["Deal Radar health score"] == "36" and custom["Deal Radar alert count"] == "2"


def test_only_the_fields_the_account_has_are_written_and_deleted_deals_skipped(
    make_account,
) -> None:
    account = make_account(deals=3, fields=False)
    provision_fields(account.state, skip=("Deal Radar summary", "Deal Radar alerts"))
    deals = [str(d["id"]) for d in account.state.records("deals")]
    account.state.delete("deals", int(deals[1]))
    result = account.adapter().write_back({d: VALUES for d in deals})
    assert result.failed == {deals[1]: "deleted in Sell"} and result.deleted == (deals[1],)
    assert result.skipped_fields == {d: ["alerts", "summary"] for d in (deals[0], deals[2])}, (
        "not recorded as written: sent again once the admin creates them"
    )
    custom = _custom(account, deals[0])
    assert "Deal Radar summary" not in custom and "Deal Radar alerts" not in custom
    assert custom["Deal Radar health score"] == "35"
    assert _custom(account, deals[2])["Deal Radar health score"] == "35", "went on after the 404"


def test_a_field_deleted_since_the_check_is_dropped_and_noticed(account: Account) -> None:
    deal_id = str(account.state.records("deals")[0]["id"])
    adapter = account.adapter()
    adapter.check_fields()
    account.state.delete_custom_field("deal", "Deal Radar summary")
    adapter.write_back({deal_id: VALUES})
    assert _custom(account, deal_id)["Deal Radar health score"] == "35"
    assert "Deal Radar summary" in account.notices()["sell.deal_fields"]


def test_a_value_whose_dropdown_choice_is_missing_is_left_as_is_and_named(make_account) -> None:
    account = make_account(deals=1, fields=False)
    for spec in FIELDS:  # the admin forgot "poor" in the grade's choices, "amount_missing" too
        choices = [c for c in spec.choices if c not in ("poor", "amount_missing")]
        account.state.define_custom_field("deal", spec.name, spec.type, choices)
    deal_id = str(account.state.records("deals")[0]["id"])
    adapter = account.adapter()
    before = {**VALUES, "health_grade": "fair", "alerts": ["no_activity"]}
    assert adapter.write_back({deal_id: before}) == WriteResult()
    result = adapter.write_back({deal_id: VALUES})
    assert result.skipped_fields == {deal_id: ["alerts", "health_grade"]}
    custom = _custom(account, deal_id)
    assert custom["Deal Radar health grade"]["name"] == "fair", "not wiped by a null"
    assert [c["name"] for c in custom["Deal Radar alerts"]] == ["no_activity"], "what it can hold"
