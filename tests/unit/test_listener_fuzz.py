"""Schemathesis against the listener's own OpenAPI document, in-process (ASGI) with a fake
backend: no 5xx, answers as documented, and a refused request never enqueues anything.

A short run here; `scripts/fuzz_listener.py` runs the same checks for as long as asked."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import schemathesis
from hypothesis import HealthCheck, settings

from jobico.access import signatures
from jobico.model import EventAuth, Revision
from jobico.serve.app import create_app
from jobico.serve.gate import Gate
from jobico.serve.routes import Routes
from tests.unit.test_listener_app import DIGEST, KEY, TENANT, FakeBackend, revision

if TYPE_CHECKING:
    from schemathesis.specs.openapi.schemas import OpenApiCase

SECRET = "fuzz-secret"
# Posts go to an event with a schema, one that requires a GitHub signature (a result event
# with an auth of its own), one that takes any JSON, or anywhere at all.
OPEN, SIGNED, ANY = "evgo", "evgo_ok", "evany"


def build() -> tuple[object, FakeBackend]:
    rev = Revision.from_dict(revision())
    job = rev.spec.jobs[0]
    assert job.result is not None and job.result.ok is not None
    ok = dataclasses.replace(job.result.ok, auth=EventAuth(kind="github", secret="gh"))
    result = dataclasses.replace(job.result, ok=ok)
    anything = dataclasses.replace(job.event, id=ANY, schema=None)
    jobs = [
        dataclasses.replace(job, result=result),
        dataclasses.replace(job, event=anything, result=None),
    ]
    spec = dataclasses.replace(rev.spec, jobs=jobs)
    routes = Routes(lambda tenant, digest: {DIGEST[s]: s for s in DIGEST}[digest])
    routes.apply({KEY: dataclasses.replace(rev, spec=spec).to_dict()})
    gate = Gate()
    gate.apply(TENANT, {"secrets": {"gh": [SECRET]}, "events_per_s": 0})
    backend = FakeBackend()
    return create_app(routes, backend, max_body_bytes=64 * 1024, gate=gate), backend


APP, BACKEND = build()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


def aim(case: OpenApiCase) -> None:
    """Send three of four posts to a real event, so most cases reach parsing and the gate."""
    if case.path_parameters is not None and "event" in case.path_parameters:
        pick = len(repr(case.body)) % 4
        if pick < 3:
            case.path_parameters = {"tenant": TENANT, "event": (OPEN, SIGNED, ANY)[pick]}


def check_answer(case: OpenApiCase, before: int) -> int:
    """Call the app with the case; fail on a 5xx, a refused request that queued something, or
    an error out of shape. The status."""
    response = case.call()
    assert response.status_code < 500, (response.status_code, response.text)
    queued = len(BACKEND.events()) - before
    if response.status_code == 202:
        assert (case.path_parameters or {}).get("event") != SIGNED, "unsigned event accepted"
        assert queued == len(response.json()["ids"]) > 0
    else:
        assert queued == 0, f"{response.status_code} answered but {queued} queued"
    if response.status_code >= 400:
        assert set(response.json()) == {"error"}  # the one error shape
    return int(response.status_code)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_listener_answers_any_request_without_a_server_error(case: OpenApiCase) -> None:
    aim(case)
    check_answer(case, len(BACKEND.events()))


def test_a_correctly_signed_post_to_the_signed_event_is_accepted() -> None:
    """The fuzzed route is reachable at all: otherwise 'no 202' above proves nothing."""
    from tests.unit.test_listener_app import Client

    body = b'{"firstName": "a", "lastName": "b", "age": 1}'
    sig = signatures.sign_github(SECRET, body)
    answer = Client(APP).post(  # type: ignore[arg-type]
        f"/webhooks/{TENANT}/{SIGNED}", content=body, headers={"X-Hub-Signature-256": sig}
    )
    assert answer.status_code == 202, answer.text
