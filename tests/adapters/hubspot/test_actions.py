"""Tasks and notes on HubSpot deals (adapters/hubspot/actions.py) against the emulator over real
HTTP through the official SDK: created once per outbox key whatever the retries, 429s and lost
answers, found again without the search index, completed once, a rep's deletion tolerated."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from redis import Redis
from werkzeug.serving import WSGIRequestHandler, make_server

from adapters.errors import NotFound, RateLimited, Transient
from adapters.hubspot.adapter import HubSpotAdapter
from sandbox.hubspot import HubSpotState, ServerHandle, serve
from sandbox.hubspot_state import parse_datetime
from tests.adapters.hubspot.test_adapter import NOW, PORTAL, FlowingClock, make_adapter

DUE = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
CREATE_TASK = "POST /crm/v3/objects/tasks"
CREATE_NOTE = "POST /crm/v3/objects/notes"
UPDATE_TASK = "PATCH /crm/v3/objects/tasks/{objectId}"
LIST_TASKS = "GET /crm/v4/objects/deals/{fromId}/associations/tasks"


@pytest.fixture
def state() -> Iterator[HubSpotState]:
    portal = HubSpotState(PORTAL, clock=lambda: NOW, rate_limit=None, search_rate_limit=None)
    yield portal
    portal.webhooks.stop()


@pytest.fixture
def server(state: HubSpotState) -> Iterator[ServerHandle]:
    with serve(state) as handle:
        yield handle


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def adapter(state: HubSpotState, server: ServerHandle, redis: Redis, sleeps) -> HubSpotAdapter:  # type: ignore[no-untyped-def]
    return make_adapter(state, server, redis, sleep=sleeps.append)


def _deal_and_owner(state: HubSpotState) -> tuple[str, str]:
    owner = state.add_owner("rep@example.com", "Rita", "Rep")
    deal = state.create_object("deals", {"dealname": "Acme renewal", "hubspot_owner_id": owner})
    return deal, owner


def _task(adapter: HubSpotAdapter, deal: str, owner: str, key: str = "outbox:1") -> str:
    return adapter.create_task(
        deal, owner_id=owner, subject="Follow up: no activity for 14 days",
        body="Acme renewal has had no activity. https://app.example/deals/1", due=DUE, key=key,
    )  # fmt: skip


def _creates(state: HubSpotState, what: str = CREATE_TASK) -> int:
    return state.counts().get(what, 0)


def test_a_task_is_created_for_the_owner_on_the_deal_due_at_the_given_time(
    state: HubSpotState, adapter: HubSpotAdapter
) -> None:
    deal, owner = _deal_and_owner(state)
    task_id = _task(adapter, deal, owner)

    task = state.get_object("tasks", task_id)
    assert task["hs_task_subject"] == "Follow up: no activity for 14 days"
    assert task["hs_task_body"].startswith("Acme renewal has had no activity.")
    assert (task["hs_task_status"], task["hs_task_priority"]) == ("NOT_STARTED", "MEDIUM")
    assert task["hubspot_owner_id"] == owner
    assert parse_datetime(task["hs_timestamp"]) == DUE
    links = state.associations("tasks", task_id, "deals")
    assert list(links) == [deal]
    assert [(t.category, t.type_id) for t in links[deal]] == [("HUBSPOT_DEFINED", 216)]
    assert _creates(state) == 1


def test_the_same_key_returns_the_same_task_and_creates_nothing(
    state: HubSpotState, adapter: HubSpotAdapter
) -> None:
    deal, owner = _deal_and_owner(state)
    first = _task(adapter, deal, owner, key="outbox:7")
    state.reset_counts()
    again = _task(adapter, deal, owner, key="outbox:7")
    other = _task(adapter, deal, owner, key="outbox:8")

    assert again == first and other != first
    assert len(state.records("tasks")) == 2
    assert _creates(state) == 1, "only the other key's task was sent"


def test_a_retry_finds_its_task_while_the_search_index_still_lags(
    state: HubSpotState, adapter: HubSpotAdapter
) -> None:
    """A task created a moment ago is not searchable yet; the look-up does not search."""
    state.search_lag_seconds = 3600
    deal, owner = _deal_and_owner(state)
    first = _task(adapter, deal, owner)
    assert _task(adapter, deal, owner) == first
    assert len(state.records("tasks")) == 1
    assert not any(k.endswith("/search") for k in state.counts())


def test_a_task_without_an_owner_is_created_unassigned(
    state: HubSpotState, adapter: HubSpotAdapter
) -> None:
    deal = state.create_object("deals", {"dealname": "Orphan"})
    task_id = adapter.create_task(
        deal, owner_id=None, subject="Check", body="b", due=DUE, key="k", priority="HIGH"
    )
    task = state.get_object("tasks", task_id)
    assert task.get("hubspot_owner_id") in (None, "") and task["hs_task_priority"] == "HIGH"


def test_bad_arguments_are_refused_before_any_call(
    state: HubSpotState, adapter: HubSpotAdapter
) -> None:
    deal, owner = _deal_and_owner(state)
    state.reset_counts()
    with pytest.raises(ValueError, match="aware"):
        adapter.create_task(deal, owner_id=owner, subject="s", body="b",
                            due=datetime(2026, 11, 26, 9), key="k")  # fmt: skip
    with pytest.raises(ValueError, match="outbox key"):
        adapter.create_note(deal, body="b", at=DUE, key="")
    with pytest.raises(ValueError, match="priority"):
        adapter.create_task(deal, owner_id=owner, subject="s", body="b", due=DUE, key="k",
                            priority="URGENT")  # fmt: skip
    assert sum(state.counts().values()) == 0


def test_a_deleted_deal_is_not_found_and_gets_no_task(
    state: HubSpotState, adapter: HubSpotAdapter
) -> None:
    deal, owner = _deal_and_owner(state)
    state.archive_object("deals", deal)
    with pytest.raises(NotFound):
        _task(adapter, deal, owner)
    assert state.records("tasks") == []


def test_complete_sets_completed_once(state: HubSpotState, adapter: HubSpotAdapter) -> None:
    deal, owner = _deal_and_owner(state)
    task_id = _task(adapter, deal, owner)
    state.reset_counts()
    adapter.complete_task(task_id)
    adapter.complete_task(task_id)

    assert state.get_object("tasks", task_id)["hs_task_status"] == "COMPLETED"
    assert state.counts().get(UPDATE_TASK) == 1


def test_a_task_the_rep_completed_or_deleted_is_left_alone(
    state: HubSpotState, adapter: HubSpotAdapter
) -> None:
    deal, owner = _deal_and_owner(state)
    done, gone = _task(adapter, deal, owner, key="a"), _task(adapter, deal, owner, key="b")
    state.update_object("tasks", done, {"hs_task_status": "COMPLETED"})
    state.archive_object("tasks", gone)
    state.reset_counts()

    adapter.complete_task(done)
    adapter.complete_task(gone)
    adapter.complete_task("987654321")  # never existed: the same as deleted

    assert state.counts().get(UPDATE_TASK, 0) == 0
    assert not state.exists("tasks", gone)


def test_a_note_is_created_on_the_deal_once_per_key(
    state: HubSpotState, adapter: HubSpotAdapter
) -> None:
    deal, _ = _deal_and_owner(state)
    at = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    body = "Health grade: good -> poor (activity, stakeholders)"
    note_id = adapter.create_note(deal, body=body, at=at, key="grade:1")
    again = adapter.create_note(deal, body=body, at=at, key="grade:1")
    other = adapter.create_note(deal, body=body, at=at, key="grade:2")

    note = state.get_object("notes", note_id)
    assert note["hs_note_body"].startswith(body)
    assert parse_datetime(note["hs_timestamp"]) == at
    links = state.associations("notes", note_id, "deals")
    assert [(t.category, t.type_id) for t in links[deal]] == [("HUBSPOT_DEFINED", 214)]
    assert again == note_id and other != note_id
    assert len(state.records("notes")) == 2 and _creates(state, CREATE_NOTE) == 2


# -- failures on create --------------------------------------------------------------------------


class Faulty:
    """A proxy in front of the emulator that spoils the answers of the next creates: "lost"
    forwards the create (HubSpot made the record) but answers 502, as when the answer is lost
    on the way back; "refused" answers 503, 429, 423 or 477 without forwarding (a 477 with the
    Retry-After HubSpot's error handling guide says it carries); "expire" expires the access
    tokens, then forwards."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.plan: list[tuple[str, int]] = []
        self.expire: Callable[[], object] = lambda: None
        """What "expire" in the plan calls before forwarding (the emulator then answers 401)."""
        self.lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True,
                                   request_handler=_Quiet)  # fmt: skip
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()  # fmt: skip

    def _app(self, environ: dict, start_response):  # type: ignore[no-untyped-def]
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        query = environ.get("QUERY_STRING")
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        fault = None
        if method == "POST" and path in ("/crm/v3/objects/tasks", "/crm/v3/objects/notes"):
            with self.lock:
                fault = self.plan.pop(0) if self.plan else None
        if fault is not None and fault[0] == "expire":
            self.expire()
            fault = None
        if fault is None or fault[0] == "lost":
            connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port)
            headers = {k[5:].replace("_", "-"): v for k, v in environ.items()
                       if k.startswith("HTTP_") and k != "HTTP_HOST"}  # fmt: skip
            headers["Content-Type"] = environ.get("CONTENT_TYPE", "application/json")
            connection.request(method, path + (f"?{query}" if query else ""), body, headers)
            answer = connection.getresponse()
            status, data = answer.status, answer.read()
            content_type = answer.getheader("Content-Type", "application/json")
            connection.close()
        extra: list[tuple[str, str]] = []
        if fault is not None:
            status, content_type = fault[1], "application/json"
            data = b'{"status":"error","message":"Bad gateway","category":"INTERNAL"}'
            if status == 429:
                data = (b'{"status":"error","message":"Rate limited","errorType":"RATE_LIMIT",'
                        b'"policyName":"TEN_SECONDLY_ROLLING"}')  # fmt: skip
            if status == 477:
                extra = [("Retry-After", "7200")]
        start_response(f"{status} X", [("Content-Type", content_type),
                                       ("Content-Length", str(len(data))), *extra])  # fmt: skip
        return [data]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


@pytest.fixture
def faulty(server: ServerHandle) -> Iterator[Faulty]:
    proxy = Faulty(server.url)
    yield proxy
    proxy.stop()


@pytest.fixture
def behind(state: HubSpotState, faulty: Faulty, redis: Redis, sleeps) -> HubSpotAdapter:  # type: ignore[no-untyped-def]
    """An adapter whose requests pass through the faulty proxy."""
    return make_adapter(state, faulty, redis, sleep=sleeps.append)  # type: ignore[arg-type]


@pytest.mark.parametrize("what", ["task", "note"])
def test_a_lost_answer_to_a_create_does_not_make_a_second_record(
    state: HubSpotState, faulty: Faulty, behind: HubSpotAdapter, sleeps: list[float], what: str
) -> None:
    deal, owner = _deal_and_owner(state)
    faulty.plan = [("lost", 502), ("lost", 504)]
    if what == "task":
        made = _task(behind, deal, owner)
    else:
        made = behind.create_note(deal, body="grade changed", at=DUE, key="note:1")
    kind = f"{what}s"
    assert [r.id for r in state.records(kind)] == [made]
    assert _creates(state, f"POST /crm/v3/objects/{kind}") == 1, "found again, not sent again"
    assert len(sleeps) == 1


def test_refused_creates_are_sent_again_and_make_one_task(
    state: HubSpotState, faulty: Faulty, behind: HubSpotAdapter, sleeps: list[float]
) -> None:
    deal, owner = _deal_and_owner(state)
    faulty.plan = [("refused", 429), ("refused", 503), ("refused", 429)]
    made = _task(behind, deal, owner)
    assert [r.id for r in state.records("tasks")] == [made]
    assert len(sleeps) == 3
    counts = state.counts()
    # Looked up first, and again after the 503 only: a 429 is a refusal, nothing was made.
    assert counts.get(LIST_TASKS) == 2, counts


def test_an_outage_outlasting_the_tries_goes_to_the_job_and_its_retry_makes_one_task(
    state: HubSpotState, faulty: Faulty, behind: HubSpotAdapter, sleeps: list[float]
) -> None:
    deal, owner = _deal_and_owner(state)
    tries = behind.client.attempts
    faulty.plan = [("refused", 503)] * tries
    with pytest.raises(Transient):
        _task(behind, deal, owner)
    assert state.records("tasks") == [] and len(sleeps) == tries - 1
    # The outbox runs the job again later, with the same key.
    made = _task(behind, deal, owner)
    assert _task(behind, deal, owner) == made
    assert [r.id for r in state.records("tasks")] == [made]


def test_a_423_locked_is_waited_out_and_makes_one_task(
    state: HubSpotState, faulty: Faulty, behind: HubSpotAdapter, sleeps: list[float]
) -> None:
    """HubSpot answers 423 Locked to writes that come in bulk (a sweep's write-back): its locks
    last 2 s and its error handling guide asks for at least that delay before the next try.
    A refusal to wait out, not a request to fail for good (the rep would never get the task)."""
    deal, owner = _deal_and_owner(state)
    faulty.plan = [("refused", 423)]
    made = _task(behind, deal, owner)
    assert [r.id for r in state.records("tasks")] == [made]
    assert len(sleeps) == 1 and sleeps[0] >= 2.0
    assert state.counts().get(LIST_TASKS) == 1, "refused, so nothing was made to look for"


def test_a_portal_migrating_data_centres_sends_the_task_back_to_the_job_for_its_retry_after(
    state: HubSpotState, faulty: Faulty, behind: HubSpotAdapter, sleeps: list[float]
) -> None:
    """477 Migration in Progress comes with a Retry-After (hours): the job waits that long, not
    a worker asleep in the call, and the effect is not failed for good."""
    deal, owner = _deal_and_owner(state)
    faulty.plan = [("refused", 477)]
    with pytest.raises(RateLimited) as raised:
        _task(behind, deal, owner)
    assert raised.value.retry_after == 7200 and sleeps == []
    assert state.records("tasks") == []
    made = _task(behind, deal, owner)  # the outbox's retry, hours later
    assert [r.id for r in state.records("tasks")] == [made]


def test_a_429_storm_on_the_emulator_makes_each_task_once(redis: Redis) -> None:
    """The emulator allows 3 requests per 0.3 s: creates and look-ups meet 429s; every key
    still gets exactly one task, and asking again returns the same ones."""
    state = HubSpotState(PORTAL, clock=FlowingClock(), rate_limit=None, search_rate_limit=None)
    deal, owner = _deal_and_owner(state)
    try:
        with serve(state) as server:
            adapter = make_adapter(state, server, redis, budget=None, attempts=12)
            state.rate_limit, state.rate_window = 3, timedelta(seconds=0.3)
            started = time.monotonic()
            made = [_task(adapter, deal, owner, key=f"outbox:{i}") for i in range(8)]
            again = [_task(adapter, deal, owner, key=f"outbox:{i}") for i in range(8)]
            refused = state.counts()
    finally:
        state.webhooks.stop()
    assert time.monotonic() - started < 60
    assert again == made and len(set(made)) == 8
    assert sorted(r.id for r in state.records("tasks")) == sorted(made)
    # Unrefused, the 16 calls need 8 creates, 16 association reads and 15 batch reads.
    assert sum(refused.values()) > 39, "the storm refused some requests"
    assert refused[CREATE_TASK] >= 8


def test_an_expired_token_on_create_is_renewed_and_the_task_made_once(
    state: HubSpotState, faulty: Faulty, behind: HubSpotAdapter, sleeps: list[float]
) -> None:
    """The create is sent once per try; its repeat after a renewed token is not a try."""
    deal, owner = _deal_and_owner(state)
    faulty.expire = state.expire_access_tokens
    faulty.plan = [("expire", 401)]
    made = _task(behind, deal, owner)
    assert [r.id for r in state.records("tasks")] == [made]
    assert behind.client.tokens.renewals == 1 and sleeps == []  # type: ignore[attr-defined]


def test_our_own_tasks_and_notes_are_not_the_deals_activities(
    state: HubSpotState, adapter: HubSpotAdapter
) -> None:
    """An open task of ours must not count as the deal's next step (it would silence the alert
    it was made for), nor our note as an interaction; the rep's own task still counts."""
    deal, owner = _deal_and_owner(state)
    ours = _task(adapter, deal, owner)
    note = adapter.create_note(deal, body="Health went from good to poor", at=DUE, key="n:1")
    theirs = state.create_object(
        "tasks",
        {"hs_task_subject": "Call back", "hs_task_body": "Ask about the budget",
         "hs_task_status": "NOT_STARTED", "hs_timestamp": DUE, "hubspot_owner_id": owner},
    )  # fmt: skip
    state.associate("tasks", theirs, "deals", deal, [216])

    (bundle,) = adapter.pull([deal]).bundles
    ids = {a.id for a in bundle.activities}
    assert theirs in ids
    assert ours not in ids and note not in ids


def test_a_task_handed_to_another_owner_only_while_open(
    state: HubSpotState, adapter: HubSpotAdapter
) -> None:
    deal, owner = _deal_and_owner(state)
    other = state.add_owner("ann@example.com", "Ann", "Other")
    task, done, gone = (_task(adapter, deal, owner, key=k) for k in ("a", "b", "c"))
    state.update_object("tasks", done, {"hs_task_status": "COMPLETED"})
    state.archive_object("tasks", gone)
    state.reset_counts()

    assert adapter.reassign_task(task, other) is True
    assert adapter.reassign_task(task, other) is True  # already hers: nothing sent
    assert adapter.reassign_task(done, other) is False
    assert adapter.reassign_task(gone, other) is False

    assert state.get_object("tasks", task)["hubspot_owner_id"] == other
    assert state.get_object("tasks", done)["hubspot_owner_id"] == owner
    assert state.counts().get(UPDATE_TASK) == 1
