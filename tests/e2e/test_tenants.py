"""Tenants are who they say they are: tokens through the `jobico` command, every operation tried
across tenants, webhook signatures through Serve, and secrets nowhere they should not be."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from jobico.access import signatures
from tests.conftest import wait_for
from tests.e2e.packages import write_package
from tests.platform import Jobico, acting_as

FORBIDDEN, UNAUTHENTICATED, NOT_FOUND = 9, 8, 3

# A tenant of the `two` fixture: its name, its command, its first token's id, its package.
Tenant = tuple[str, Jobico, str, Path]


def new_tenant(jobico: Jobico) -> tuple[str, Jobico, str]:
    """A new tenant: its name, the command acting with its first token, and that token's id."""
    name = f"t{uuid.uuid4().hex[:10]}"
    made = json.loads(jobico("tenants", "create", name, "--json").stdout)
    assert made["tenant"] == name and made["token"].startswith("jbk_")
    return name, acting_as(jobico, made["token"]), made["id"]


@pytest.fixture(scope="module")
def two(jobico: Jobico, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Tenant]:
    """Two tenants, each with a package deployed with its own token and one event run."""
    found: dict[str, Tenant] = {}
    for label in ("acme", "globex"):
        tenant, cli, token_id = new_tenant(jobico)
        _, path = write_package(tmp_path_factory.mktemp(label), "echo", tenant=tenant)
        cli("deploy", str(path))
        found[label] = (tenant, cli, token_id, path)
    return found


def test_a_tenant_token_reaches_its_own_tenant(two: dict[str, Tenant]) -> None:
    tenant, cli, _, _ = two["acme"]
    assert tenant in cli("packages").stdout
    assert "pkg" in cli("show", tenant, "pkg").stdout
    assert json.loads(cli("tokens", "list", "--json").stdout)[0]["tenant"] == tenant


@pytest.mark.parametrize(
    "args",
    [
        ("show", "{t}", "pkg"),
        ("packages", "{t}"),
        ("rollback", "{t}", "pkg"),
        ("delete", "{t}", "pkg"),
        ("upload", "json", "{t}", "x.json", "{file}"),
        ("executions", "--tenant", "{t}"),
        ("deadletters", "--tenant", "{t}"),
        ("replay", "{t}", "--all"),
        ("drop", "{t}", "--all"),
        ("secrets", "list", "{t}"),
        ("tenants", "quota", "{t}"),
        ("tokens", "list", "--tenant", "{t}"),
        ("tokens", "create", "{t}"),
        ("tenants", "create", "new{t}"),
        ("tenants", "quota", "{t}", "--packages", "1000"),
    ],
)
def test_every_operation_on_another_tenant_is_forbidden(
    two: dict[str, Tenant], tmp_path: Path, args: tuple[str, ...]
) -> None:
    victim, _, _, _ = two["acme"]
    _, intruder, _, _ = two["globex"]
    (tmp_path / "x.json").write_text("{}")
    filled = [a.format(t=victim, file=tmp_path / "x.json") for a in args]
    proc = intruder(*filled, check=False)
    assert proc.returncode == FORBIDDEN, (filled, proc.stdout, proc.stderr)
    assert victim not in proc.stdout


def test_deploying_into_another_tenant_is_forbidden(two: dict[str, Tenant]) -> None:
    _, intruder, _, _ = two["globex"]
    _, _, _, acme_package = two["acme"]
    assert intruder("deploy", str(acme_package), "--update", check=False).returncode == FORBIDDEN


def test_listings_show_a_tenant_only_its_own(two: dict[str, Tenant]) -> None:
    acme, _, _, _ = two["acme"]
    globex, intruder, _, _ = two["globex"]
    for args in (("packages",), ("status",), ("executions",), ("deadletters",), ("tokens", "list")):
        out = intruder(*args).stdout
        assert acme not in out, args
    assert globex in intruder("status").stdout


def test_another_tenants_token_cannot_be_revoked_or_rotated(two: dict[str, Tenant]) -> None:
    _, intruder, _, _ = two["globex"]
    _, _, acme_token, _ = two["acme"]
    for verb in ("revoke", "rotate"):
        assert intruder("tokens", verb, acme_token, check=False).returncode == NOT_FOUND


def test_the_admin_sees_every_tenant(jobico: Jobico, two: dict[str, Tenant]) -> None:
    listed = jobico("packages").stdout
    assert two["acme"][0] in listed and two["globex"][0] in listed


def test_a_revoked_or_made_up_token_is_unauthenticated(jobico: Jobico) -> None:
    _, cli, token_id = new_tenant(jobico)
    cli("packages")
    jobico("tokens", "revoke", token_id)
    proc = cli("packages", check=False)
    assert proc.returncode == UNAUTHENTICATED and cli.env["JOBICO_TOKEN"] not in proc.stderr
    fake = acting_as(jobico, "jbk_000000000000_" + "x" * 43)
    assert fake("packages", check=False).returncode == UNAUTHENTICATED


def test_rotation_gives_a_working_token_and_retires_the_old(jobico: Jobico) -> None:
    _, cli, token_id = new_tenant(jobico)
    rotated = json.loads(cli("tokens", "rotate", token_id, "--json").stdout)
    assert acting_as(jobico, rotated["token"])("packages").returncode == 0
    assert cli("packages", check=False).returncode == UNAUTHENTICATED


def test_the_admin_token_file_is_readable_by_its_owner_only(jobico: Jobico) -> None:
    assert (Path(jobico.home) / "admin.token").stat().st_mode & 0o777 == 0o600


# --- signed webhooks through Serve ---------------------------------------------------------------


def test_a_signed_webhook_is_queued_and_a_bad_one_refused(
    jobico: Jobico, http: httpx.Client, tmp_path: Path
) -> None:
    tenant, cli, _ = new_tenant(jobico)
    _, path = write_package(tmp_path, "echo", tenant=tenant)
    data = yaml.safe_load(path.read_text())
    data["jobs"][0]["event"]["auth"] = {"kind": "github", "secret": "gh"}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    secret = f"gh-{uuid.uuid4().hex}"
    cli("secrets", "set", tenant, "gh", stdin=secret + "\n")
    cli("deploy", str(path))
    body = json.dumps({"firstName": "ann", "lastName": "lee"}).encode()
    url = f"/webhooks/{tenant}/ev"
    signed = {"X-Hub-Signature-256": signatures.sign_github(secret, body)}

    def accepted() -> bool:
        return http.post(url, content=body, headers=signed).status_code == 202

    wait_for(accepted, what="the route and the secret to reach the listener")
    # Replays are the same delivery, whatever unsigned key they add; results are not postable.
    again = http.post(url, content=body, headers=signed)
    fresh = http.post(url, content=body, headers={**signed, "Idempotency-Key": "fresh"})
    assert again.status_code == fresh.status_code == 202 and again.json() == fresh.json()
    forged = http.post(f"/webhooks/{tenant}/ev_ok", content=body, headers=signed)
    assert forged.status_code == 404
    wrong = {"X-Hub-Signature-256": signatures.sign_github("not-it", body)}
    for headers in ({}, wrong):
        answer = http.post(url, content=body, headers=headers)
        assert answer.status_code == 401 and secret not in answer.text
    query = ("executions", "--tenant", tenant, "--event", "ev", "--json")
    records = wait_for(lambda: cli(*query).stdout.splitlines(), what="the record")
    assert len(records) == 1  # the refused posts queued nothing
    listed = cli("secrets", "list", tenant).stdout
    shown = cli("show", tenant, "pkg").stdout + jobico("status", "--json").stdout
    assert "gh" in listed and secret not in listed + shown
    # Nowhere on disk but the vault: not in records, queues, pubsub topics or Ray's logs.
    leaks = [
        p
        for p in Path(jobico.home).rglob("*")
        if p.is_file() and "secrets" not in p.parts and secret.encode() in p.read_bytes()
    ]
    assert leaks == []
