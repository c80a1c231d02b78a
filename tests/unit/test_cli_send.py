"""`jobico send` reads DATA as strictly as the listener reads a body (jobico.strictjson): what the
listener refuses, the CLI refuses before sending, for the same reason, with exit status 2.
No platform runs: the listener is its app in-process, the CLI's client a fake."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner, Result

from jobico.cli import main as cli_main
from jobico.errors import EXIT_CODE, InvalidInput
from jobico.serve.app import create_app
from jobico.serve.routes import Routes
from tests.unit.test_listener_app import DIGEST, JOHN, KEY, WEBHOOK, Client, FakeBackend, revision

REFUSED = [
    '{"firstName": NaN}',
    '{"firstName": Infinity}',
    '{"age": 1e400}',
    '{"firstName": "\\ud800", "lastName": "x"}',
    '{"firstName": "john",}',
]


class FakeClient:
    """Takes what `jobico send` would post; answers an id per event."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []

    def send(self, tenant: str, event: str, data: Any) -> list[str]:
        self.sent.append((tenant, event, data))
        return [f"id{n}" for n in range(len(data) if isinstance(data, list) else 1)]


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    fake = FakeClient()
    monkeypatch.setattr(cli_main, "client_for", lambda ctx, address=None: fake)
    return fake


def send(data: str) -> Result:
    return CliRunner().invoke(cli_main.main, ["send", "demogo", "evgo", data])


def listener_reason(body: str) -> str:
    routes = Routes(lambda tenant, digest: {DIGEST[s]: s for s in DIGEST}[digest])
    routes.apply({KEY: revision()})
    answer = Client(create_app(routes, FakeBackend())).post(WEBHOOK, content=body.encode())
    assert answer.status_code == 400, answer.text
    message: str = answer.json()["error"]["message"]
    return message.removeprefix("body is not valid JSON: ")


@pytest.mark.parametrize("data", REFUSED)
def test_send_refuses_what_the_listener_refuses_for_the_same_reason_sending_nothing(
    client: FakeClient, data: str
) -> None:
    result = send(data)
    assert result.exit_code == EXIT_CODE[InvalidInput] == 2
    assert result.stderr == f"error: DATA is not valid JSON: {listener_reason(data)}\n"
    assert client.sent == []


def test_send_posts_data_as_parsed(client: FakeClient) -> None:
    result = send('[{"firstName": "john", "lastName": "connor", "age": 50}, {"a": "\\u00e9"}]')
    assert (result.exit_code, result.stdout) == (0, "id0\nid1\n")
    assert client.sent == [("demogo", "evgo", [JOHN, {"a": "é"}])]


def test_send_refuses_data_that_is_not_utf8(client: FakeClient) -> None:
    """Bytes of an argument that are not UTF-8 reach the parser as they were (as bytes posted
    to the listener would), not as the escapes Python keeps them in."""
    result = send(b'{"a": "\xff"}'.decode("utf-8", "surrogateescape"))
    assert result.exit_code == 2 and "DATA is not valid JSON" in result.stderr
    assert client.sent == []
