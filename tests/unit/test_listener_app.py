"""The listener's HTTP app (jobico.serve.app) against a fake backend: every status of
docs/contract.md#http-interface."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from jobico.errors import QueueFull, Unavailable
from jobico.model import Revision, load_package_yaml
from jobico.queue.events import NewEvent
from jobico.serve.app import create_app
from jobico.serve.routes import Routes
from tests.conftest import EXAMPLE

TENANT, PACKAGE, KEY = "demogo", "go-demo-job", "demogo/go-demo-job"
GREET = (EXAMPLE / "greet-schema.json").read_bytes()
# The second deploy's schema: a different shape of the same event.
NAMED = json.dumps({"type": "object", "required": ["name"]}).encode()
DIGEST = {s: hashlib.sha256(s).hexdigest() for s in (GREET, NAMED)}
JOHN = {"firstName": "john", "lastName": "connor", "age": 50}
EVENTS, WEBHOOK = f"/events/{TENANT}/evgo", f"/webhooks/{TENANT}/evgo"


def revision(number: int = 1, schema: bytes = GREET, orderingkey: str | None = None) -> Any:
    spec = load_package_yaml((EXAMPLE / "package.yaml").read_text())
    job = spec.jobs[0]
    event = dataclasses.replace(job.event, orderingkey=orderingkey)
    spec = dataclasses.replace(spec, jobs=[dataclasses.replace(job, event=event)])
    files = {"greet-schema.json": DIGEST[schema], "greet.wasm": "0" * 64}
    return Revision(
        tenant=TENANT, package=PACKAGE, number=number, spec=spec, files=files, created_at=1.0
    ).to_dict()


class Client:
    """A synchronous client calling the app in-process (starlette's Client is deprecated)."""

    def __init__(self, app: FastAPI, *, raise_app_exceptions: bool = True) -> None:
        self.app, self.raise_app_exceptions = app, raise_app_exceptions

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(
                app=self.app, raise_app_exceptions=self.raise_app_exceptions
            )
            async with httpx.AsyncClient(transport=transport, base_url="http://listener") as c:
                return await c.request(method, url, **kwargs)

        return asyncio.run(call())

    def get(self, url: str) -> httpx.Response:
        return self.request("GET", url)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


class FakeBackend:
    """Records what was enqueued; can be made to fail or to look unhealthy."""

    def __init__(self) -> None:
        self.enqueued: list[tuple[str, list[NewEvent]]] = []
        self.keys: list[str | None] = []
        self.error: Exception | None = None
        self.ok = True

    async def enqueue(self, tenant: str, events: list[NewEvent], key: str | None) -> list[str]:
        if self.error is not None:
            raise self.error
        first = sum(len(batch) for _, batch in self.enqueued)
        self.enqueued.append((tenant, events))
        self.keys.append(key)
        return [f"id{first + i}" for i in range(len(events))]

    async def healthy(self) -> bool:
        return self.ok

    def events(self) -> list[NewEvent]:
        return [ev for _, batch in self.enqueued for ev in batch]


@pytest.fixture
def routes() -> Routes:
    table = Routes(lambda tenant, digest: {DIGEST[s]: s for s in DIGEST}[digest])
    table.apply({KEY: revision()})
    return table


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def client(routes: Routes, backend: FakeBackend) -> Client:
    return Client(create_app(routes, backend, max_body_bytes=4096, max_events=3))


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The one error shape, checked; its inner object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    inner: dict[str, Any] = body["error"]
    return inner


# --- accepted ------------------------------------------------------------------------------------


def test_batch_is_accepted_with_ids_in_order(client: Client, backend: FakeBackend) -> None:
    batch = [{**JOHN, "age": n} for n in range(3)]
    response = client.post(EVENTS, json={"data": batch})
    assert response.status_code == 202
    assert response.json() == {"ids": ["id0", "id1", "id2"]}
    assert [json.loads(ev.payload)["age"] for ev in backend.events()] == [0, 1, 2]
    assert backend.enqueued[0][0] == TENANT and len(backend.enqueued) == 1


@pytest.mark.parametrize("header", ["Idempotency-Key", "webhook-id"])
def test_the_senders_idempotency_key_reaches_the_queue_scoped_to_the_event(
    client: Client, backend: FakeBackend, header: str
) -> None:
    client.post(WEBHOOK, json=JOHN, headers={header: "msg_1"})
    client.post(WEBHOOK, json=JOHN)
    assert backend.keys == [f"{WEBHOOK.rsplit('/', 1)[1]}/msg_1", None]


def test_webhook_accepts_one_bare_event(client: Client, backend: FakeBackend) -> None:
    response = client.post(WEBHOOK, json=JOHN)
    assert response.status_code == 202 and response.json() == {"ids": ["id0"]}
    assert len(backend.events()) == 1


def test_enqueued_event_carries_route_and_compact_sorted_payload(
    client: Client, backend: FakeBackend
) -> None:
    client.post(WEBHOOK, content=b'{"firstName": "john", "lastName": "connor", "age": 50}')
    (ev,) = backend.events()
    assert ev.payload == b'{"age":50,"firstName":"john","lastName":"connor"}'
    assert (ev.queue, ev.event, ev.package, ev.revision, ev.key, ev.limit) == (
        "queue-default",
        "evgo",
        PACKAGE,
        1,
        None,
        100_000,
    )
    assert ev.received_at > 0


@pytest.mark.parametrize("event", ["evgo_ok", "evgo_error"])
def test_a_result_event_without_auth_of_its_own_cannot_be_posted(
    client: Client, backend: FakeBackend, event: str
) -> None:
    for path in (f"/webhooks/{TENANT}/{event}", f"/events/{TENANT}/{event}"):
        error = error_of(client.post(path, json={"data": [JOHN]}), 404, "not_found")
        assert "result" in error["message"] and error["event"] == event
    assert backend.enqueued == []


def test_ordering_key_is_compact_json_of_the_pointed_value(
    routes: Routes, client: Client, backend: FakeBackend
) -> None:
    routes.apply({KEY: revision(orderingkey="/lastName")})
    client.post(EVENTS, json={"data": [JOHN, {**JOHN, "lastName": "o'neil"}]})
    assert [ev.key for ev in backend.events()] == ['"connor"', '"o\'neil"']


def test_ordering_key_that_names_nothing_is_422(
    routes: Routes, client: Client, backend: FakeBackend
) -> None:
    routes.apply({KEY: revision(orderingkey="/customer/id")})
    error = error_of(client.post(WEBHOOK, json=JOHN), 422, "event_rejected")
    assert "ordering key /customer/id names nothing" in error["message"]
    assert error["path"] == "/customer/id" and backend.enqueued == []


# --- 400 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"data": [', "not valid JSON"),
        (b'{"data": [NaN]}', "not valid JSON"),
        (b'{"data": [1e400]}', "not valid JSON"),
        (b"\xff\xfe{", "not valid JSON"),
        (b'[{"data": []}]', "must be a JSON object"),
        (b"{}", '"data" must be a non-empty list'),
        (b'{"data": []}', '"data" must be a non-empty list'),
        (b'{"data": {"a": 1}}', '"data" must be a non-empty list'),
        (b'{"data": [{}, {}, {}, {}]}', "4 events in one request, at most 3"),
    ],
)
def test_bad_envelope_is_400_and_enqueues_nothing(
    client: Client, backend: FakeBackend, body: bytes, says: str
) -> None:
    error = error_of(client.post(EVENTS, content=body), 400, "invalid_input")
    assert says in error["message"] and backend.enqueued == []


def test_malformed_webhook_body_is_400(client: Client, backend: FakeBackend) -> None:
    error_of(client.post(WEBHOOK, content=b"{'single': 'quotes'}"), 400, "invalid_input")
    assert backend.enqueued == []


def test_nesting_deeper_than_the_limit_is_400(routes: Routes, backend: FakeBackend) -> None:
    client = Client(create_app(routes, backend, max_depth=5))
    ok = {"data": [{**JOHN, "x": [["deepest"]]}]}  # five levels, the envelope included
    assert client.post(EVENTS, json=ok).status_code == 202
    deeper = {"data": [{**JOHN, "x": [[["too deep"]]]}]}
    error = error_of(client.post(EVENTS, json=deeper), 400, "invalid_input")
    assert "nested deeper than 5" in error["message"]
    assert len(backend.enqueued) == 1


def test_brackets_inside_strings_do_not_count_as_nesting(
    routes: Routes, backend: FakeBackend
) -> None:
    client = Client(create_app(routes, backend, max_depth=3))
    event = {**JOHN, "a": '\\"[[[[{{{{"', "b": "]]]]"}
    assert client.post(EVENTS, json={"data": [event] * 3}).status_code == 202


def test_hugely_nested_body_is_400_not_a_crash(routes: Routes, backend: FakeBackend) -> None:
    client = Client(create_app(routes, backend, max_body_bytes=1 << 20))
    body = b"[" * 200_000 + b"]" * 200_000
    error_of(client.post(WEBHOOK, content=body), 400, "invalid_input")


# --- 404, 413 ------------------------------------------------------------------------------------


def test_unknown_tenant_is_404_naming_the_tenant(client: Client, backend: FakeBackend) -> None:
    error = error_of(client.post("/events/nobody/evgo", json={"data": [JOHN]}), 404, "not_found")
    assert error["tenant"] == "nobody" and "unknown tenant 'nobody'" in error["message"]
    assert backend.enqueued == []


def test_unknown_event_is_404_naming_the_event(client: Client, backend: FakeBackend) -> None:
    error = error_of(client.post(f"/webhooks/{TENANT}/nope", json=JOHN), 404, "not_found")
    assert error["event"] == "nope" and "has no event 'nope'" in error["message"]
    assert backend.enqueued == []


def test_body_over_the_limit_is_413(client: Client, backend: FakeBackend) -> None:
    big = {"data": [{**JOHN, "pad": "x" * 5000}]}
    error = error_of(client.post(EVENTS, json=big), 413, "body_too_large")
    assert error["limit"] == 4096 and backend.enqueued == []


def test_body_exactly_at_the_limit_is_accepted(client: Client) -> None:
    body = json.dumps({**JOHN, "pad": ""}).encode()
    body = body.replace(b'""', b'"' + b"x" * (4096 - len(body)) + b'"')
    assert len(body) == 4096
    assert client.post(WEBHOOK, content=body).status_code == 202


def test_chunked_body_without_length_is_cut_off_at_the_limit(
    routes: Routes, backend: FakeBackend
) -> None:
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        yield b'{"data": [{"pad": "'
        while pulled < 10_000:  # bounded only so a broken app fails the test instead of hanging
            pulled += 1
            yield b"x" * 1024

    async def post() -> httpx.Response:
        app = create_app(routes, backend, max_body_bytes=64 * 1024)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post(EVENTS, content=endless())

    response = asyncio.run(post())
    assert "content-length" not in response.request.headers
    error_of(response, 413, "body_too_large")
    assert pulled <= 65 and backend.enqueued == []  # stopped reading right past 64 KiB


# --- 422 -----------------------------------------------------------------------------------------


def test_element_failing_its_schema_is_422_and_nothing_is_enqueued(
    client: Client, backend: FakeBackend
) -> None:
    batch = [JOHN, {**JOHN, "age": "x"}, {"firstName": 1}]
    error = error_of(client.post(EVENTS, json={"data": batch}), 422, "event_rejected")
    assert error["message"] == "data[1] at /age: 'x' is not of type 'integer'"
    assert (error["index"], error["path"], error["reason"]) == (
        1,
        "/age",
        "'x' is not of type 'integer'",
    )
    assert backend.enqueued == []


def test_webhook_event_failing_its_schema_is_422_at_the_root(client: Client) -> None:
    error = error_of(client.post(WEBHOOK, json={"firstName": "x"}), 422, "event_rejected")
    assert error["message"] == "event: 'lastName' is a required property"
    assert (error["index"], error["path"]) == (0, "")


# --- definition changes --------------------------------------------------------------------------


def test_redeploy_with_another_schema_changes_what_is_accepted(
    routes: Routes, client: Client, backend: FakeBackend
) -> None:
    routes.apply({KEY: revision(2, schema=NAMED)})
    error_of(client.post(WEBHOOK, json={"firstName": "john"}), 422, "event_rejected")
    assert client.post(WEBHOOK, json={"name": "john"}).status_code == 202
    assert [ev.revision for ev in backend.events()] == [2]


def test_deleted_package_is_404(routes: Routes, client: Client) -> None:
    routes.apply({KEY: None})
    error_of(client.post(EVENTS, json={"data": [JOHN]}), 404, "not_found")


# --- backend failures and health -----------------------------------------------------------------


def test_full_queue_is_429_with_retry_after_from_the_error(
    client: Client, backend: FakeBackend
) -> None:
    backend.error = QueueFull("queue 'queue-default' is full", queue="queue-default", retry_after=7)
    response = client.post(WEBHOOK, json=JOHN)
    assert error_of(response, 429, "queue_full")["queue"] == "queue-default"
    assert response.headers["retry-after"] == "7"


def test_full_queue_without_retry_after_says_one_second(
    client: Client, backend: FakeBackend
) -> None:
    backend.error = QueueFull("full")
    assert client.post(WEBHOOK, json=JOHN).headers["retry-after"] == "1"


@pytest.mark.parametrize(("seconds", "header"), [(2.5, "3"), (0, "1"), ("soon", "1")])
def test_retry_after_is_whole_seconds_and_at_least_one(
    client: Client, backend: FakeBackend, seconds: object, header: str
) -> None:
    backend.error = QueueFull("full", retry_after=seconds)
    assert client.post(WEBHOOK, json=JOHN).headers["retry-after"] == header


def test_unexpected_failure_is_500_in_the_error_shape(routes: Routes, backend: FakeBackend) -> None:
    backend.error = RuntimeError("a bug")
    client = Client(create_app(routes, backend), raise_app_exceptions=False)
    error = error_of(client.post(WEBHOOK, json=JOHN), 500, "jobico_error")
    assert error["message"] == "internal error"  # no internals leak to the sender


def test_unavailable_queue_is_503(client: Client, backend: FakeBackend) -> None:
    backend.error = Unavailable("queue actor of tenant 'demogo' is unreachable")
    error_of(client.post(EVENTS, json={"data": [JOHN]}), 503, "unavailable")


def test_a_503_answers_a_plain_message_and_logs_the_cause(
    client: Client, backend: FakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    cause = "internal error in a Jobico actor: OSError('/var/jobico/queues/demogo.db')"
    backend.error = Unavailable(cause, actor="queue:demogo")
    caplog.set_level(logging.WARNING)
    answer = client.post(WEBHOOK, json=JOHN)
    error = error_of(answer, 503, "unavailable")
    assert set(error) == {"code", "message"} and "try again" in error["message"]
    assert not any(part in answer.text for part in ("OSError", "/var", "actor", "queue:"))
    assert cause in caplog.text and "queue:demogo" in caplog.text


def test_schema_that_cannot_be_loaded_is_503_without_the_cause(
    backend: FakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    def unreachable(tenant: str, digest: str) -> bytes:
        raise ConnectionError("repository down")

    table = Routes(unreachable)
    table.apply({KEY: revision()})
    client = Client(create_app(table, backend))
    caplog.set_level(logging.WARNING)
    answer = client.post(WEBHOOK, json=JOHN)
    error_of(answer, 503, "unavailable")
    assert "repository down" not in answer.text and "cannot be loaded" not in answer.text
    assert "repository down" in caplog.text


def test_healthz_is_200_when_the_backend_is_healthy(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_healthz_is_503_when_the_backend_is_not(client: Client, backend: FakeBackend) -> None:
    backend.ok = False
    error_of(client.get("/healthz"), 503, "unavailable")


# --- FastAPI's own answers and the OpenAPI document ----------------------------------------------


def test_unknown_path_is_404_in_the_error_shape(client: Client) -> None:
    error_of(client.get("/nowhere"), 404, "not_found")


def test_wrong_method_is_405_in_the_error_shape(client: Client) -> None:
    response = client.get(EVENTS)
    error_of(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


def test_openapi_documents_both_post_routes(client: Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/events/{tenant}/{event}", "/webhooks/{tenant}/{event}"):
        post = paths[path]["post"]
        assert "application/json" in post["requestBody"]["content"]
        ids = post["responses"]["202"]["content"]["application/json"]["schema"]
        assert ids["properties"]["ids"]["type"] == "array"
        for status in ("400", "404", "413", "422", "429", "503"):
            schema = post["responses"][status]["content"]["application/json"]["schema"]
            assert schema["required"] == ["error"]
    batch = paths["/events/{tenant}/{event}"]["post"]["requestBody"]["content"]
    assert batch["application/json"]["schema"]["required"] == ["data"]


@pytest.mark.parametrize(
    ("url", "body"),
    [
        (EVENTS, json.dumps({"data": [JOHN, JOHN]})),
        (WEBHOOK, json.dumps(JOHN)),
        (EVENTS, json.dumps({"data": [{"age": "fifty"}]})),
        (EVENTS, "{not json"),
        (EVENTS, json.dumps({"data": [JOHN] * 4})),
        (f"/events/{TENANT}/nosuch", json.dumps({"data": [JOHN]})),
        (EVENTS, json.dumps({"data": ["x" * 5000]})),
    ],
)
def test_fastapis_own_routes_answer_exactly_as_the_fast_lane(
    routes: Routes, url: str, body: str
) -> None:
    """The fast lane skips FastAPI's routing for the two POSTs; the routes FastAPI declares
    for them (the OpenAPI document's, and any path the lane passes on) answer the same."""

    def app() -> FastAPI:
        return create_app(routes, FakeBackend(), max_body_bytes=4096, max_events=3)

    plain = app()

    async def routed_by_fastapi(scope: Any, receive: Any, send: Any) -> None:
        await FastAPI.__call__(plain, scope, receive, send)

    lane = Client(app()).post(url, content=body)
    routed = Client(routed_by_fastapi).post(url, content=body)  # type: ignore[arg-type]
    assert (routed.status_code, routed.json()) == (lane.status_code, lane.json())


def test_the_fast_lane_serves_an_app_mounted_under_a_root_path(
    routes: Routes, backend: FakeBackend
) -> None:
    app = create_app(routes, backend)

    async def mounted(scope: Any, receive: Any, send: Any) -> None:
        await app(
            {**scope, "root_path": "/jobico", "path": "/jobico" + scope["path"]}, receive, send
        )

    answer = Client(mounted).post(EVENTS, json={"data": [JOHN]})  # type: ignore[arg-type]
    assert (answer.status_code, answer.json()) == (202, {"ids": ["id0"]})
    assert (
        backend.events()[0].payload
        == json.dumps(JOHN, separators=(",", ":"), sort_keys=True).encode()
    )


@pytest.mark.parametrize(
    "text",
    [
        rb'{"firstName": "\ud800", "lastName": "x"}',
        rb'{"firstName": "a\uDFFFb", "lastName": "x"}',
        rb'{"firstName": "a", "lastName": "x", "\udc00": 1}',
        rb'{"firstName": "\ude00\ud83d", "lastName": "x"}',  # a pair the wrong way round
    ],
)
def test_a_lone_surrogate_is_400_and_enqueues_nothing(
    client: Client, backend: FakeBackend, text: bytes
) -> None:
    error = error_of(client.post(WEBHOOK, content=text), 400, "invalid_input")
    assert "surrogate" in error["message"] and backend.enqueued == []
    batch = b'{"data": [' + text + b"]}"
    error_of(client.post(EVENTS, content=batch), 400, "invalid_input")
    assert backend.enqueued == []


def test_a_lone_surrogate_in_raw_bytes_is_400_not_an_internal_error(
    client: Client, backend: FakeBackend
) -> None:
    body = b'{"firstName": "\xed\xa0\x80", "lastName": "x"}'  # the parser decodes it leniently
    error = error_of(client.post(WEBHOOK, content=body), 400, "invalid_input")
    assert "surrogate" in error["message"] and backend.enqueued == []


def test_an_escaped_surrogate_pair_is_the_character_it_encodes(
    client: Client, backend: FakeBackend
) -> None:
    body = rb'{"firstName": "\ud83d\ude00", "lastName": "x", "age": 1}'
    assert client.post(WEBHOOK, content=body).status_code == 202
    assert json.loads(backend.events()[0].payload)["firstName"] == "\U0001f600"
