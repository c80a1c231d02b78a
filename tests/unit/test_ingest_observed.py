"""The listener app tells its observer (the metrics) every POST's outcome: events accepted, or
the error code it was refused with."""

from __future__ import annotations

from jobico.errors import QueueFull
from jobico.serve.app import create_app
from jobico.serve.routes import Routes
from tests.unit.test_listener_app import (
    DIGEST,
    EVENTS,
    JOHN,
    KEY,
    TENANT,
    Client,
    FakeBackend,
    revision,
)

Seen = tuple[str, str, int, str | None]


def observed_app(backend: FakeBackend) -> tuple[Client, list[Seen]]:
    routes = Routes(lambda tenant, digest: {DIGEST[s]: s for s in DIGEST}[digest])
    routes.apply({KEY: revision()})
    seen: list[Seen] = []

    def observe(tenant: str, event: str, accepted: int, refused: str | None) -> None:
        seen.append((tenant, event, accepted, refused))

    return Client(create_app(routes, backend, observe=observe)), seen


def test_an_accepted_batch_is_observed_with_its_event_count() -> None:
    client, seen = observed_app(FakeBackend())
    assert client.post(EVENTS, json={"data": [JOHN, JOHN]}).status_code == 202
    assert seen == [(TENANT, "evgo", 2, None)]


def test_each_refusal_is_observed_with_the_answers_error_code() -> None:
    backend = FakeBackend()
    client, seen = observed_app(backend)
    client.post(EVENTS, json={"data": [{"age": "old"}]})  # fails the schema
    client.post(f"/events/{TENANT}/nope", json={"data": [JOHN]})
    backend.error = QueueFull("full", retry_after=1.0)
    client.post(EVENTS, json={"data": [JOHN]})
    assert seen == [
        (TENANT, "evgo", 0, "event_rejected"),
        (TENANT, "nope", 0, "not_found"),
        (TENANT, "evgo", 0, "queue_full"),
    ]
