"""The listener's gate through the app: credentials an event requires, and tenants' rates.

A refused request enqueues nothing; secrets never show in answers or logs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from typing import Any

import pytest

from jobico.access import signatures
from jobico.errors import RateLimited
from jobico.model import AuthKind, EventAuth, Revision
from jobico.serve.app import create_app
from jobico.serve.gate import Bucket, Gate
from jobico.serve.routes import Routes
from tests.unit.test_listener_app import (
    DIGEST,
    JOHN,
    KEY,
    TENANT,
    Client,
    FakeBackend,
    error_of,
    revision,
)

SECRET = "gh-very-secret-value"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = json.dumps(JOHN).encode()
HOOK, BATCH = f"/webhooks/{TENANT}/evgo", f"/events/{TENANT}/evgo"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def requiring(kind: AuthKind, secret: str = "hook") -> dict[str, Any]:
    """The example package's revision with its first event requiring `kind` credentials."""
    rev = Revision.from_dict(revision())
    job = rev.spec.jobs[0]
    event = dataclasses.replace(job.event, auth=EventAuth(kind=kind, secret=secret))
    spec = dataclasses.replace(rev.spec, jobs=[dataclasses.replace(job, event=event)])
    return dataclasses.replace(rev, spec=spec).to_dict()


@pytest.fixture
def wall() -> Clock:
    return Clock(time.time())


@pytest.fixture
def gate(wall: Clock) -> Gate:
    g = Gate(wall=wall)
    g.apply(TENANT, {"secrets": {"hook": [SECRET], "sw": [WHSEC]}, "events_per_s": 0})
    return g


def app_for(kind: AuthKind, gate: Gate, backend: FakeBackend, secret: str = "hook") -> Client:
    routes = Routes(lambda tenant, digest: {DIGEST[s]: s for s in DIGEST}[digest])
    routes.apply({KEY: requiring(kind, secret)})
    return Client(create_app(routes, backend, gate=gate))


def test_github_signed_webhook_is_accepted(gate: Gate) -> None:
    backend = FakeBackend()
    sig = signatures.sign_github(SECRET, BODY)
    answer = app_for("github", gate, backend).post(
        HOOK, content=BODY, headers={"X-Hub-Signature-256": sig}
    )
    assert answer.status_code == 202 and len(backend.events()) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Hub-Signature-256": signatures.sign_github(SECRET, BODY + b" ")},
        {"X-Hub-Signature-256": signatures.sign_github("another", BODY)},
    ],
)
def test_missing_or_bad_signature_is_401_and_nothing_is_enqueued(
    gate: Gate, headers: dict[str, str]
) -> None:
    backend = FakeBackend()
    answer = app_for("github", gate, backend).post(HOOK, content=BODY, headers=headers)
    error = error_of(answer, 401, "unauthenticated")
    assert backend.enqueued == [] and SECRET not in answer.text
    assert "missing or bad credentials" in error["message"]


def test_an_event_whose_secret_is_not_set_refuses_every_post(
    gate: Gate, caplog: pytest.LogCaptureFixture
) -> None:
    backend = FakeBackend()
    caplog.set_level(logging.WARNING)
    client = app_for("bearer", gate, backend, secret="unset")
    answer = client.post(BATCH, json={"data": [JOHN]}, headers={"Authorization": "Bearer x"})
    error_of(answer, 401, "unauthenticated")
    assert backend.enqueued == [] and "'unset'" in caplog.text


def test_bearer_ingest_key_guards_the_batch_route(gate: Gate) -> None:
    backend = FakeBackend()
    client = app_for("bearer", gate, backend)
    ok = client.post(BATCH, json={"data": [JOHN]}, headers={"Authorization": f"Bearer {SECRET}"})
    bad = client.post(BATCH, json={"data": [JOHN]}, headers={"Authorization": "Bearer nope"})
    assert ok.status_code == 202 and bad.status_code == 401 and len(backend.events()) == 1


def test_standard_webhooks_signature_is_checked_on_the_raw_body(gate: Gate, wall: Clock) -> None:
    backend = FakeBackend()
    key = signatures.standard_key(WHSEC)
    assert key is not None
    stamp = int(wall.now)
    sig = signatures.sign_standard_webhooks(key, "msg_1", stamp, BODY)
    sent = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": f"v1,{sig}",
    }
    client = app_for("standard-webhooks", gate, backend, secret="sw")
    assert client.post(HOOK, content=BODY, headers=sent).status_code == 202
    wall.now += 301  # the same delivery replayed after the tolerance
    assert client.post(HOOK, content=BODY, headers=sent).status_code == 401
    assert len(backend.events()) == 1


def test_the_secret_changing_in_the_gate_takes_effect_at_once(gate: Gate) -> None:
    backend = FakeBackend()
    client = app_for("github", gate, backend)
    sig = {"X-Hub-Signature-256": signatures.sign_github(SECRET, BODY)}
    gate.apply(TENANT, {"secrets": {"hook": ["rotated"]}})
    assert client.post(HOOK, content=BODY, headers=sig).status_code == 401
    gate.apply(TENANT, {"secrets": {"hook": ["rotated", SECRET]}})
    assert client.post(HOOK, content=BODY, headers=sig).status_code == 202


def test_events_without_auth_stay_open(gate: Gate) -> None:
    routes = Routes(lambda tenant, digest: {DIGEST[s]: s for s in DIGEST}[digest])
    routes.apply({KEY: revision()})
    answer = Client(create_app(routes, FakeBackend(), gate=gate)).post(HOOK, json=JOHN)
    assert answer.status_code == 202


def test_the_gates_config_never_shows_secret_values() -> None:
    gate = Gate()
    gate.apply(TENANT, {"secrets": {"hook": [SECRET]}})
    assert SECRET not in repr(gate._configs)


# --- rates ---------------------------------------------------------------------------------------


def test_a_tenant_over_its_rate_gets_429_with_retry_after_and_nothing_is_enqueued() -> None:
    clock = Clock(100.0)
    gate = Gate(clock=clock)
    gate.apply(TENANT, {"events_per_s": 2})
    backend = FakeBackend()
    routes = Routes(lambda tenant, digest: {DIGEST[s]: s for s in DIGEST}[digest])
    routes.apply({KEY: revision()})
    client = Client(create_app(routes, backend, gate=gate))
    assert client.post(BATCH, json={"data": [JOHN, JOHN]}).status_code == 202
    refused = client.post(BATCH, json={"data": [JOHN]})
    error_of(refused, 429, "rate_limited")
    assert refused.headers["Retry-After"] == "1" and len(backend.events()) == 2
    clock.now += 0.5
    assert client.post(BATCH, json={"data": [JOHN]}).status_code == 202


def test_the_default_rate_applies_to_tenants_without_their_own() -> None:
    gate = Gate(default_rate=1, clock=Clock(0.0))
    gate.take("t", 1)
    with pytest.raises(Exception, match="rate of 1 events"):
        gate.take("t", 1)
    gate.take("other", 1)  # each tenant its own bucket


def test_a_bucket_lets_a_large_batch_through_when_full_then_waits_for_the_debt() -> None:
    bucket = Bucket(rate=10, now=0.0)
    assert bucket.take(25, 0.0) == 0.0  # full: passes, 15 in debt
    assert bucket.take(1, 1.0) == pytest.approx(0.6)  # -5 after a second: 1 needs 0.6 s more
    assert bucket.take(1, 2.0) == 0.0


def test_another_tenants_config_change_leaves_a_tenants_spent_bucket_as_it_is() -> None:
    gate = Gate(clock=Clock(0.0))
    gate.apply(TENANT, {"events_per_s": 1})
    gate.take(TENANT, 1)
    gate.apply("other", {"events_per_s": 5})
    gate.apply(TENANT, {"secrets": {"hook": [SECRET]}, "events_per_s": 1})  # secrets only
    with pytest.raises(RateLimited):
        gate.take(TENANT, 1)


def test_a_tenants_new_rate_takes_effect_at_once() -> None:
    gate = Gate(clock=Clock(0.0))
    gate.apply(TENANT, {"events_per_s": 1})
    gate.take(TENANT, 1)
    gate.apply(TENANT, {"events_per_s": 10})
    gate.take(TENANT, 5)


def test_a_refilled_bucket_is_dropped_and_a_tenant_gets_the_same_full_one_back() -> None:
    clock = Clock(0.0)
    gate = Gate(default_rate=2, clock=clock)
    gate.take(TENANT, 2)
    clock.now = 1.5  # refilled by 1.0; the next take sweeps first
    gate.take("other", 1)
    assert gate.buckets == 1  # only other's
    gate.take(TENANT, 2)  # a full bucket's worth, as it would have had
    with pytest.raises(RateLimited):
        gate.take(TENANT, 1)


def test_a_spent_bucket_is_kept_however_many_tenants_post_so_its_rate_holds() -> None:
    clock = Clock(0.0)
    gate = Gate(default_rate=1, clock=clock)
    gate.take(TENANT, 5)  # a batch: 4 events in debt, 5 s to pay it off
    for n in range(1000):
        clock.now += 0.004
        gate.take(f"t{n}", 1)
    assert clock.now == pytest.approx(4.0) and gate.buckets <= 1000 // 4 + 2  # swept each second
    with pytest.raises(RateLimited):
        gate.take(TENANT, 1)  # still in debt: a dropped bucket would have let it through
    clock.now = 5.0
    gate.take(TENANT, 1)


# --- the dedupe key of a signed event ------------------------------------------------------------


def test_a_standard_webhooks_replay_keeps_its_signed_id_whatever_idempotency_key_it_sends(
    gate: Gate, wall: Clock
) -> None:
    backend = FakeBackend()
    key = signatures.standard_key(WHSEC)
    assert key is not None
    stamp = int(wall.now)
    signed = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": "v1," + signatures.sign_standard_webhooks(key, "msg_1", stamp, BODY),
    }
    client = app_for("standard-webhooks", gate, backend, secret="sw")
    for fresh in ("a", "b"):
        sent = {**signed, "Idempotency-Key": fresh}
        assert client.post(HOOK, content=BODY, headers=sent).status_code == 202
    assert backend.keys == ["evgo/msg_1", "evgo/msg_1"]


def test_a_github_replay_is_keyed_by_its_signed_body_not_its_delivery_header(gate: Gate) -> None:
    backend = FakeBackend()
    client = app_for("github", gate, backend)
    other = json.dumps({**JOHN, "age": 51}).encode()
    for body, delivery in ((BODY, "d1"), (BODY, "d2"), (other, "d2")):
        sent = {
            "X-Hub-Signature-256": signatures.sign_github(SECRET, body),
            "X-GitHub-Delivery": delivery,
            "Idempotency-Key": delivery,
        }
        assert client.post(HOOK, content=body, headers=sent).status_code == 202
    first, replay, different = backend.keys
    assert first == replay != different and first is not None
    assert first.startswith("evgo/sha256:")


def test_a_stripe_replay_keeps_its_key_and_a_retry_signed_anew_gets_a_new_one(
    wall: Clock,
) -> None:
    gate = Gate(wall=wall)
    gate.apply(TENANT, {"secrets": {"hook": [SECRET]}})
    backend = FakeBackend()
    client = app_for("stripe", gate, backend)
    stamp = int(wall.now)
    for t, fresh in ((stamp, "a"), (stamp, "b"), (stamp + 60, "b")):
        sent = {
            "Stripe-Signature": signatures.sign_stripe(SECRET, t, BODY),
            "Idempotency-Key": fresh,
        }
        assert client.post(HOOK, content=BODY, headers=sent).status_code == 202
    first, replay, retry = backend.keys
    assert first == replay != retry


def test_a_bearer_event_keeps_the_senders_idempotency_key(gate: Gate) -> None:
    backend = FakeBackend()
    sent = {"Authorization": f"Bearer {SECRET}", "Idempotency-Key": "k1"}
    assert app_for("bearer", gate, backend).post(HOOK, json=JOHN, headers=sent).status_code == 202
    assert backend.keys == ["evgo/k1"]


# --- result events -------------------------------------------------------------------------------


def result_requiring(kind: AuthKind, secret: str = "hook") -> dict[str, Any]:
    """The example package's revision with its ok result event requiring `kind` credentials."""
    rev = Revision.from_dict(revision())
    job = rev.spec.jobs[0]
    assert job.result is not None and job.result.ok is not None
    ok = dataclasses.replace(job.result.ok, auth=EventAuth(kind=kind, secret=secret))
    result = dataclasses.replace(job.result, ok=ok)
    spec = dataclasses.replace(rev.spec, jobs=[dataclasses.replace(job, result=result)])
    return dataclasses.replace(rev, spec=spec).to_dict()


def test_a_result_event_with_auth_of_its_own_is_postable_with_those_credentials(
    gate: Gate,
) -> None:
    backend = FakeBackend()
    routes = Routes(lambda tenant, digest: {DIGEST[s]: s for s in DIGEST}[digest])
    routes.apply({KEY: result_requiring("bearer")})
    client = Client(create_app(routes, backend, gate=gate))
    ok_path = f"/webhooks/{TENANT}/evgo_ok"
    error_of(client.post(ok_path, json=JOHN), 401, "unauthenticated")
    sent = {"Authorization": f"Bearer {SECRET}"}
    assert client.post(ok_path, json=JOHN, headers=sent).status_code == 202
    error_of(
        client.post(f"/webhooks/{TENANT}/evgo_error", json=JOHN, headers=sent), 404, "not_found"
    )
    assert [ev.queue for ev in backend.events()] == ["queue-default_ok"]


def test_a_result_event_stays_closed_when_its_main_event_requires_credentials(gate: Gate) -> None:
    backend = FakeBackend()
    client = app_for("github", gate, backend)
    body = json.dumps({"code": 0, "result": "forged"}).encode()
    sent = {"X-Hub-Signature-256": signatures.sign_github(SECRET, body)}
    for event in ("evgo_ok", "evgo_error"):
        path = f"/webhooks/{TENANT}/{event}"
        error_of(client.post(path, content=body, headers=sent), 404, "not_found")
    assert backend.enqueued == []
