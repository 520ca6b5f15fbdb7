"""Episodes opened in bulk: the sweep's first day opens thousands at once, sent to the database
in several INSERT statements; each started episode must come back with its own row's id."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from connector.store import results
from connector.store.db import SQLITE_ROWS_PER_INSERT, Store
from connector.store.models import AlertEpisode, Tenant
from engine.alerts import Alert
from engine.evaluate import Evaluation as EngineEvaluation
from engine.health import Health

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def test_episodes_opened_over_several_insert_pages_get_their_own_ids(store: Store) -> None:
    with store.global_session() as s:
        s.add(Tenant(id="T", crm="test", account_id="T", created_at=NOW, updated_at=NOW))
    count = SQLITE_ROWS_PER_INSERT * 2 + 37  # three pages on SQLite, one statement elsewhere
    plan = results.EpisodePlan(
        new=[
            {
                "tenant_id": "T", "deal_id": f"d-{n:04d}", "key": f"no_activity:{n}",
                "code": "no_activity", "started_at": NOW, "facts": {"n": n},
                "message": f"deal {n}", "crm_refs": {},
            }
            for n in range(count)
        ]
    )  # fmt: skip
    with store.tenant("T") as s:
        started = results.apply_episodes(s, plan, NOW).started
    with store.tenant("T") as s:
        stored = {
            row.id: (row.deal_id, row.key, row.facts) for row in s.scalars(select(AlertEpisode))
        }
    assert len(started) == len(stored) == count
    for episode in started:
        assert stored[episode.id] == (episode.deal_id, episode.key, episode.facts)
        assert episode.facts == {"n": int(episode.deal_id[2:])}


def test_an_open_episode_takes_the_new_wording_of_its_alert(store: Store) -> None:
    """An admin switches the locale (or a message's wording changes with a release): the deal's
    open alert keeps its episode, its start and its facts, and the API shows the new words,
    not those of the day it began."""
    with store.global_session() as s:
        s.add(Tenant(id="T", crm="test", account_id="T", created_at=NOW, updated_at=NOW))
    facts = {"days": 14, "threshold": 10}
    health = Health(50, "fair", None, {})

    def evaluate(message: str) -> results.EpisodeChanges:
        alert = Alert("no_activity", message, facts)
        with store.tenant("T") as s:
            plan = results.plan_episodes(s, "T", [EngineEvaluation("d-1", [alert], health)], NOW)
            return results.apply_episodes(s, plan, NOW)

    (started,) = evaluate("No activity for 14 days (threshold 10)").started
    assert evaluate("Aucune activité depuis 14 jours (seuil 10)").started == []
    with store.tenant("T") as s:
        (episode,) = s.scalars(select(AlertEpisode)).all()
    assert (episode.id, episode.facts) == (started.id, facts)
    assert episode.message == "Aucune activité depuis 14 jours (seuil 10)"
