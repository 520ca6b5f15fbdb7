"""A HubSpot answer the emulator does not give by itself (it ignores scopes), served in front of
it over real HTTP: a batch read (of objects, or of associations v4) whose 207 refuses some
inputs for a scope.

HubSpot's spec gives that read a 207 whose `errors` are StandardErrors, and its ErrorDetail's
context example is `{"missingScopes": [...]}`; everything else is the emulator's own answer."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from sandbox.hubspot import HubSpotState, create_app
from sandbox.serving import BackgroundServer, QuietHandler


def missing_scopes(from_ids: list[str], scope: str, *, context: str = "fromObjectId") -> dict:
    """One StandardError refusing these inputs for want of `scope`, every required field set
    (the SDK's model loads it); `context` names the inputs (an objects read's `ids`)."""
    return {
        "status": "error",
        "category": "MISSING_SCOPES",
        "message": "This app hasn't been granted all required scopes to make this call.",
        "context": {context: from_ids},
        "links": {},
        "errors": [
            {
                "message": "One or more of the following scopes are required.",
                "context": {"missingScopes": [scope]},
            }
        ],
    }


@contextmanager
def refusing_inputs(
    state: HubSpotState,
    path: str,
    refused: set[str] | None,
    refusal: Callable[[list[str]], dict],
) -> Iterator[BackgroundServer]:
    """The emulator served with its answer to `path` changed: the inputs in `refused` (None:
    every input) lose their results (and their errors) and are refused together by
    `refusal(ids)`, in a 207."""
    emulator = create_app(state)

    @Request.application
    def front(request: Request) -> Response:
        sent = request.get_data()
        environ = {**request.environ, "wsgi.input": io.BytesIO(sent)}
        answer = Response.from_app(emulator, environ, buffered=True)
        if request.path != path or answer.status_code not in (200, 207):
            return answer
        asked = [str(i["id"]) for i in json.loads(sent)["inputs"]]
        denied = [i for i in asked if refused is None or i in refused]
        if not denied:
            return answer
        body = json.loads(answer.get_data())
        body["results"] = [r for r in body["results"] if _input_of(r) not in denied]
        errors = [
            e for e in body.get("errors", ())
            if not set(_inputs_of(e)) & set(denied)
        ]  # fmt: skip
        body["errors"] = [*errors, refusal(denied)]
        body["numErrors"] = len(body["errors"])
        return Response(json.dumps(body), 207, content_type="application/json")

    server = make_server("127.0.0.1", 0, front, threaded=True, request_handler=QuietHandler)
    with BackgroundServer(server, "hubspot-refusing") as running:
        yield running


def _input_of(result: dict) -> str:
    """The input a result answers: an associations read's `from`, an objects read's record."""
    return str(result["from"]["id"] if "from" in result else result["id"])


def _inputs_of(error: dict) -> list[str]:
    context = error.get("context", {})
    return [str(i) for i in context.get("fromObjectId") or context.get("ids") or ()]
