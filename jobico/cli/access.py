"""`jobico tenants`, `jobico tokens` and `jobico secrets`: who may act, and with what.

A token or secret is printed once, when made, and read only from stdin or a hidden prompt:
never from the command line, where `ps` and shell history would keep it.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import click

from jobico.cli.common import client_for, emit, json_option
from jobico.errors import InvalidInput

if TYPE_CHECKING:
    from jobico.access.auth import Issued, TokenInfo


def _issued(as_json: bool, issued: Issued, what: str) -> None:
    text = f"{what} (token id {issued.info.id}); shown this once:\n{issued.token}"
    emit(as_json, {**issued.info.to_dict(), "token": issued.token}, text)


def _when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


# --- tenants -------------------------------------------------------------------------------------


@click.group()
def tenants() -> None:
    """Tenants and their quotas (admin)."""


@tenants.command(name="create")
@click.argument("tenant")
@json_option
@click.pass_context
def create_tenant(ctx: click.Context, tenant: str, as_json: bool) -> None:
    """Register TENANT and print its first token."""
    _issued(as_json, client_for(ctx).create_tenant(tenant), f"created tenant {tenant}")


@tenants.command(name="list")
@json_option
@click.pass_context
def list_tenants(ctx: click.Context, as_json: bool) -> None:
    """The tenants this token sees."""
    names = client_for(ctx).tenants()
    emit(as_json, names, "\n".join(names))


@tenants.command()
@click.argument("tenant")
@click.option("--events-per-second", "events_per_s", type=click.IntRange(min=0))
@click.option("--repository-mb", type=click.IntRange(min=0))
@click.option("--packages", type=click.IntRange(min=0))
@json_option
@click.pass_context
def quota(
    ctx: click.Context,
    tenant: str,
    events_per_s: int | None,
    repository_mb: int | None,
    packages: int | None,
    as_json: bool,
) -> None:
    """Show TENANT's quotas; with options, set them (admin). 0 lifts a ceiling."""
    client = client_for(ctx)
    repository_bytes = None if repository_mb is None else repository_mb * 1024 * 1024
    wanted = {"events_per_s": events_per_s, "repository_bytes": repository_bytes}
    changes = {k: v for k, v in {**wanted, "packages": packages}.items() if v is not None}
    quotas = client.set_quotas(tenant, **changes) if changes else client.quotas(tenant)
    text = "\n".join(f"{k:<18} {v or 'no limit'}" for k, v in quotas.to_dict().items())
    emit(as_json, quotas.to_dict(), text)


# --- tokens --------------------------------------------------------------------------------------


@click.group()
def tokens() -> None:
    """Tokens: list (never their secrets), create, rotate, revoke."""


@tokens.command(name="list")
@click.option("--tenant", help="Only this tenant's tokens.")
@json_option
@click.pass_context
def list_tokens(ctx: click.Context, tenant: str | None, as_json: bool) -> None:
    """Tokens this token may see: all for an admin, its tenant's for a tenant."""
    found = client_for(ctx).tokens(tenant)
    emit(as_json, [t.to_dict() for t in found], "\n".join(_token_line(t) for t in found))


def _token_line(t: TokenInfo) -> str:
    state = f"revoked {_when(t.revoked_at)}" if t.revoked_at else "active"
    return f"{t.id}  {t.tenant or '(admin)':<16} created {_when(t.created_at)}  {state}"


@tokens.command(name="create")
@click.argument("tenant", required=False)
@click.option("--admin", is_flag=True, help="An admin token (admins only).")
@json_option
@click.pass_context
def create_token(ctx: click.Context, tenant: str | None, admin: bool, as_json: bool) -> None:
    """Another token for TENANT, or --admin."""
    if bool(tenant) == admin:
        raise InvalidInput("name one TENANT, or --admin")
    issued = client_for(ctx).issue_token(None if admin else tenant)
    _issued(as_json, issued, f"new token for {tenant or 'admin'}")


@tokens.command()
@click.argument("token_id")
@json_option
@click.pass_context
def rotate(ctx: click.Context, token_id: str, as_json: bool) -> None:
    """Revoke TOKEN_ID and print a new token for the same tenant."""
    _issued(as_json, client_for(ctx).rotate_token(token_id), f"rotated {token_id}")


@tokens.command()
@click.argument("token_id")
@json_option
@click.pass_context
def revoke(ctx: click.Context, token_id: str, as_json: bool) -> None:
    """Revoke TOKEN_ID: refused from now on (grants it bought lapse within JOBICO_GRANT_TTL_S)."""
    info = client_for(ctx).revoke_token(token_id)
    emit(as_json, info.to_dict(), f"revoked {info.id}")


# --- secrets -------------------------------------------------------------------------------------


@click.group()
def secrets() -> None:
    """Ingest secrets that packages name in `auth:` (values never shown)."""


@secrets.command(name="set")
@click.argument("tenant")
@click.argument("name")
@click.option("--keep", is_flag=True, help="Keep earlier values valid too (rotating a secret).")
@json_option
@click.pass_context
def set_secret(ctx: click.Context, tenant: str, name: str, keep: bool, as_json: bool) -> None:
    """Set TENANT's secret NAME to a value read from stdin, or a hidden prompt."""
    if sys.stdin.isatty():
        value = click.prompt(f"value of {tenant}/{name}", hide_input=True)
    else:
        value = sys.stdin.readline().rstrip("\r\n")
    described = client_for(ctx).set_secret(tenant, name, value, keep=keep)
    text = f"set {tenant}/{name} ({described['values']} value(s) valid)"
    emit(as_json, described, text)


@secrets.command(name="list")
@click.argument("tenant")
@json_option
@click.pass_context
def list_secrets(ctx: click.Context, tenant: str, as_json: bool) -> None:
    """TENANT's secret names, how many values each holds and when set."""
    found = client_for(ctx).secrets(tenant)
    lines = [f"{s['name']:<24} {s['values']} value(s), set {_when(s['updated_at'])}" for s in found]
    emit(as_json, found, "\n".join(lines))


@secrets.command(name="delete")
@click.argument("tenant")
@click.argument("name")
@click.pass_context
def delete_secret(ctx: click.Context, tenant: str, name: str) -> None:
    """Delete TENANT's secret NAME: events requiring it are refused (401) until it is set."""
    client_for(ctx).delete_secret(tenant, name)
    click.echo(f"deleted {tenant}/{name}")
