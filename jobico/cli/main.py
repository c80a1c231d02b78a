"""The `jobico` command line: every command has --help; machine output with --json."""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml

from jobico import strictjson
from jobico.cli import access
from jobico.cli.common import client_for, emit, json_option
from jobico.cli.render import parse_since, render_record, render_status
from jobico.config import Settings
from jobico.errors import EXIT_CODE, InvalidInput, JobicoError, lookup
from jobico.model import Revision

F = TypeVar("F", bound=Callable[..., Any])

address_option = click.option(
    "--address",
    envvar="RAY_ADDRESS",
    default=None,
    help="Ray cluster address (default: the embedded Ray of JOBICO_HOME).",
)


def _errors_as_messages(fn: F) -> F:
    """A JobicoError reaches the user as one line on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except JobicoError as e:
            click.echo(f"error: {e.message}", err=True)
            sys.exit(lookup(EXIT_CODE, e))

    return wrapper  # type: ignore[return-value]


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        return _errors_as_messages(super().invoke)(ctx)


@click.group(cls=_Group)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="JOBICO_TOKEN_FILE",
    help="File holding the token to act with (default: JOBICO_TOKEN, else the admin token "
    "file under JOBICO_HOME). Never a token itself: arguments show in `ps` and shell history.",
)
@click.pass_context
def main(ctx: click.Context, token_file: Path | None) -> None:
    """Jobico on Ray: run tenants' WebAssembly programs on events posted to webhooks."""
    ctx.obj = Settings.from_env()
    ctx.meta["token_file"] = token_file


# --- lifecycle ---------------------------------------------------------------------------------


@main.command()
@click.option("--port", type=int, default=None, help="Listener port (default 8000).")
@click.option(
    "--dashboard-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="The embedded Ray's dashboard port (JOBICO_DASHBOARD_PORT; default: 8265, or the next "
    "free port when that is taken).",
)
@click.option(
    "--no-listener",
    is_flag=True,
    help="Leave the listener to `serve deploy cluster/serve.yaml` (or a KubeRay RayService).",
)
@address_option
@json_option
@click.pass_context
def up(
    ctx: click.Context,
    port: int | None,
    dashboard_port: int | None,
    no_listener: bool,
    address: str | None,
    as_json: bool,
) -> None:
    """Start Jobico (a local Ray unless --address), or attach to it; idempotent.

    A local Ray recorded in JOBICO_HOME that no longer answers (its GCS or raylet killed) is
    stopped, what is left of it killed, and a new one started on the same data."""
    from jobico import platform

    changes = {"port": port, "dashboard_port": dashboard_port}
    settings: Settings = ctx.obj.with_(**{k: v for k, v in changes.items() if v is not None})
    started = time.monotonic()
    info = platform.up(settings, address, listener=not no_listener)
    info["seconds"] = round(time.monotonic() - started, 2)
    lines = [f"note: {info['replaced']}"] if info.get("replaced") else []
    lines += [
        f"Jobico is up ({info['seconds']} s); data in {info['home']}",
        f"  listener:  {info['listener_url']}",
        f"  dashboard: {info['dashboard_url'] or 'not started (JOBICO_DASHBOARD=0)'}",
        f"  ray:       {info['ray_address']}",
        f"  admin token: {settings.home / 'admin.token'} (readable by you only)",
    ]
    emit(as_json, info, "\n".join(lines))


@main.command()
@address_option
@click.pass_context
def down(ctx: click.Context, address: str | None) -> None:
    """Stop what `jobico up` started; data stays on disk."""
    from jobico import platform

    stopped = platform.down(ctx.obj, address)
    click.echo("Jobico stopped" if stopped else "Jobico was not running")


@main.command()
@address_option
@json_option
@click.pass_context
def status(ctx: click.Context, address: str | None, as_json: bool) -> None:
    """Components, tenants, queues (waiting, in flight, dead, oldest) and executors."""
    report = client_for(ctx, address).status()
    emit(as_json, report, render_status(report))


# --- files and packages ------------------------------------------------------------------------


@main.command()
@click.argument("kind", type=click.Choice(["wasm", "json"]))
@click.argument("tenant")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@click.pass_context
def upload(
    ctx: click.Context, kind: str, tenant: str, name: str, file: Path, as_json: bool
) -> None:
    """Store FILE in TENANT's repository as NAME."""
    info = client_for(ctx).upload(tenant, kind, name, file)
    text = f"uploaded {tenant}/{name} version {info.version} sha256:{info.digest}"
    emit(as_json, info.to_dict(), text)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--update", is_flag=True, help="Deploy a new revision of an existing package.")
@json_option
@click.pass_context
def deploy(ctx: click.Context, file: Path, update: bool, as_json: bool) -> None:
    """Deploy the package in FILE; files it names are taken from FILE's folder when needed."""
    rev = client_for(ctx).deploy(file, update=update)
    emit(as_json, rev.to_dict(), f"deployed {rev.tenant}/{rev.package} revision {rev.number}")


@main.command()
@click.argument("tenant", required=False)
@json_option
@click.pass_context
def packages(ctx: click.Context, tenant: str | None, as_json: bool) -> None:
    """List packages (of TENANT, or of all tenants)."""
    rows = client_for(ctx).packages(tenant)
    lines = [f"{'TENANT':<16} {'PACKAGE':<24} {'REVISION':>8}  EVENTS"]
    lines += [
        f"{r['tenant']:<16} {r['package']:<24} {r['revision']:>8}  {' '.join(r['events'])}"
        for r in rows
    ]
    emit(as_json, rows, "\n".join(lines))


@main.command()
@click.argument("tenant")
@click.argument("package")
@click.option("--revision", type=int, default=None, help="A past revision (default: current).")
@json_option
@click.pass_context
def show(
    ctx: click.Context, tenant: str, package: str, revision: int | None, as_json: bool
) -> None:
    """Print a package as YAML, with the revision and the file digests it pins."""
    rev = client_for(ctx).show(tenant, package, revision)
    emit(as_json, rev.to_dict(), _as_yaml(rev))


@main.command()
@click.argument("tenant")
@click.argument("package")
@click.option("--to", "to", type=int, default=None, help="Revision to restore (default: previous).")
@json_option
@click.pass_context
def rollback(ctx: click.Context, tenant: str, package: str, to: int | None, as_json: bool) -> None:
    """Make a new revision that restores an earlier one's spec and files."""
    rev = client_for(ctx).rollback(tenant, package, to)
    text = f"rolled back {tenant}/{package}: revision {rev.number} ({rev.note})"
    emit(as_json, rev.to_dict(), text)


@main.command()
@click.argument("tenant")
@click.argument("package")
@click.pass_context
def delete(ctx: click.Context, tenant: str, package: str) -> None:
    """Remove a package (its history stays on disk)."""
    client_for(ctx).delete(tenant, package)
    click.echo(f"deleted {tenant}/{package}")


# --- events and executions ----------------------------------------------------------------------


@main.command()
@click.argument("tenant")
@click.argument("event")
@click.argument("data")
@json_option
@click.pass_context
def send(ctx: click.Context, tenant: str, event: str, data: str, as_json: bool) -> None:
    """POST DATA (a JSON event, or a list of events) to TENANT's EVENT through the listener.

    DATA is read as strictly as the listener reads it (no NaN, Infinity, numbers out of range
    or lone surrogates), and refused here with the listener's reason, exit status 2."""
    # surrogateescape: bytes of DATA that were not UTF-8 come back as they were, for the
    # parser to refuse as the listener would
    parsed = strictjson.loads(data.encode("utf-8", "surrogateescape"), "DATA")
    ids = client_for(ctx).send(tenant, event, parsed)
    emit(as_json, {"ids": ids}, "\n".join(ids))


@main.command()
@click.option("--tenant", help="Only this tenant's executions.")
@click.option("--package", help="Only this package's.")
@click.option("--event", help="Only this event's.")
@click.option(
    "--status",
    help="ok, error, or a failure: trap, timeout, out_of_fuel, out_of_memory, "
    "result_too_large, logs_too_large, invalid_result, lost, unavailable.",
)
@click.option("--since", help="Finished since: a duration (30s, 10m, 2h, 1d) or an ISO time.")
@click.option("--lines", type=int, default=None, help="Only the newest N.")
@click.option("--final", is_flag=True, help="Only each event's final attempt.")
@click.option("--follow", is_flag=True, help="Keep printing new records as they come.")
@json_option
@click.pass_context
def executions(
    ctx: click.Context,
    /,
    since: str | None,
    lines: int | None,
    follow: bool,
    final: bool,
    as_json: bool,
    **filters: str | None,
) -> None:
    """Query execution records, newest last (one JSON object a line with --json)."""
    client = client_for(ctx)
    query = {k: v for k, v in filters.items() if v is not None}
    start = parse_since(since) if since else None
    seen: set[tuple[str, int]] = set()
    while True:
        records = client.executions(**query, since=start, last=lines, final_only=final)
        for record in records:
            if (record["event_id"], record["attempt"]) not in seen:
                seen.add((record["event_id"], record["attempt"]))
                click.echo(json.dumps(record) if as_json else render_record(record))
        if not follow:
            return
        if records:
            start = max(r["finished_at"] for r in records)
        lines = None
        time.sleep(1.0)  # --follow polls the recorder once a second


# --- dead letters -------------------------------------------------------------------------------


@main.command()
@click.option("--tenant", help="Only this tenant's dead letters.")
@json_option
@click.pass_context
def deadletters(ctx: click.Context, tenant: str | None, as_json: bool) -> None:
    """Events parked after their last failed attempt, with their last error."""
    letters = client_for(ctx).dead_letters(tenant)
    if as_json:
        for letter in letters:
            click.echo(json.dumps(letter))
        return
    for d in letters:
        click.echo(
            f"{d['tenant']}/{d['event']} {d['id']} queue {d['queue']} "
            f"after {d['attempts']} attempts: {d['error']}"
        )


def _targets(event_id: str | None, every: bool) -> list[str] | None:
    if bool(event_id) == every:
        raise InvalidInput("name one EVENT_ID, or --all")
    return None if every else [event_id]  # type: ignore[list-item]


def _dead_letter_command(verb: str, past: str, doc: str) -> None:
    """`jobico replay` and `jobico drop`: one dead letter by id, or --all of a tenant's."""

    @main.command(name=verb, help=doc)
    @click.argument("tenant")
    @click.argument("event_id", required=False)
    @click.option("--all", "every", is_flag=True, help="Every dead letter of the tenant.")
    @click.pass_context
    def command(ctx: click.Context, tenant: str, event_id: str | None, every: bool) -> None:
        count = getattr(client_for(ctx), verb)(tenant, _targets(event_id, every))
        click.echo(f"{past} {count} event{'s' * (count != 1)}")


_dead_letter_command(
    "replay", "replayed", "Put dead letters back in their queue; each runs again as a new attempt."
)
_dead_letter_command("drop", "dropped", "Delete dead letters for good.")


# --- local runs ---------------------------------------------------------------------------------


@main.command(name="run-local")
@click.argument("module", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("event_json")
@click.option(
    "--kind", type=click.Choice(["jobicolet", "wasi"]), default="jobicolet", show_default=True
)
@click.option(
    "--main", "mainfunc", default="event", show_default=True, help="The runtime's mainfuncname."
)
@click.option("--timeout-ms", type=click.IntRange(min=1), help="Wall-clock limit.")
@click.option("--memory-mb", type=click.IntRange(min=1), help="Linear memory limit.")
@click.option("--fuel", type=click.IntRange(min=1), help="Fuel limit (default: none).")
@click.option("--result-kb", type=click.IntRange(min=1), help="Result size limit.")
@click.option("--log-kb", type=click.IntRange(min=1), help="Log size limit.")
@json_option
@click.pass_context
def run_local(
    ctx: click.Context,
    /,
    module: Path,
    event_json: str,
    kind: str,
    mainfunc: str,
    as_json: bool,
    **limits: int | None,
) -> None:
    """Run MODULE once on EVENT_JSON here, without a platform, as an executor would.

    EVENT_JSON is the event's JSON text, @FILE for a file's, or - for stdin. Limits left
    unset are the platform defaults (JOBICO_DEFAULT_*); its maxima do not apply here.

    Exit status: 0 when the guest answered code 0, 1 when it answered another code, 7 when
    the execution failed (trap, timeout, out of fuel or memory, result or logs too large, bad
    result); 2 when the module cannot serve a KIND runtime or the event is not JSON.
    """
    from jobico.cli import runlocal  # wasmtime loads only for the command that runs guests
    from jobico.model import Limits

    outcome = runlocal.run_local(
        module,
        runlocal.read_event(event_json, sys.stdin.buffer),
        kind=kind,
        mainfunc=mainfunc,
        limits=Limits(**limits),
        defaults=ctx.obj.guest_defaults,  # the platform's, as its executors use
    )
    emit(as_json, outcome.to_dict(), runlocal.render(outcome))
    sys.exit(runlocal.exit_status(outcome))


def _as_yaml(rev: Revision) -> str:
    deployed = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(rev.created_at))
    header = [f"# {rev.tenant}/{rev.package} revision {rev.number}, deployed {deployed}"]
    if rev.note:
        header.append(f"# {rev.note}")
    header += [f"# file {name}: sha256:{digest}" for name, digest in sorted(rev.files.items())]
    body = yaml.safe_dump(rev.spec.to_dict(), sort_keys=False, allow_unicode=True)
    return "\n".join(header) + "\n" + body.rstrip("\n")


for _group in (access.tenants, access.tokens, access.secrets):
    main.add_command(_group)

if __name__ == "__main__":
    main()
