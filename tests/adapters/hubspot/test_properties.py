from datetime import UTC, datetime

import pytest

from adapters.hubspot import properties
from engine.evaluate import Evaluation
from engine.fields import field_values
from engine.health import Health
from engine.settings import ALERT_CODES


def test_one_property_per_written_field():
    evaluation = Evaluation(
        deal_id="1", alerts=[], health=Health(50, "fair", None, {}), days_since_interaction=None
    )
    assert set(properties.BY_FIELD) == set(field_values(evaluation, "2026-12-01T00:00:00+00:00"))
    assert all(name.startswith("dealradar_") for name in properties.NAMES)


def test_alert_codes_are_the_multi_select_options():
    (alerts,) = [d for d in properties.definitions() if d["name"] == "dealradar_alerts"]
    assert (alerts["type"], alerts["fieldType"]) == ("enumeration", "checkbox")
    assert [o["value"] for o in alerts["options"]] == list(ALERT_CODES)
    assert all(d["groupName"] == properties.GROUP["name"] for d in properties.definitions())


def test_values_travel_as_hubspot_strings():
    at = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    encoded = properties.encode(
        {
            "alerts": ["no_activity", "single_threaded"],
            "alert_count": 2,
            "health_trend": "",
            "days_since_interaction": None,
            "evaluated_at": at.isoformat(),
        }
    )
    assert encoded == {
        "dealradar_alerts": "no_activity;single_threaded",
        "dealradar_alert_count": "2",
        "dealradar_health_trend": "",
        "dealradar_days_since_interaction": "",
        "dealradar_evaluated_at": str(int(at.timestamp() * 1000)),
    }


def test_an_unknown_field_is_named():
    with pytest.raises(KeyError, match="colour"):
        properties.encode({"colour": "red"})
