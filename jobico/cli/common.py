"""What every command module shares: the --json option, the Client a command acts through
(with the token file `jobico --token-file` named), and how an answer is printed."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from jobico.client import Client

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


def client_for(ctx: click.Context, address: str | None = None) -> Client:
    # Ray (a third of a second to import) loads only for the commands that talk to a platform.
    from jobico.client import Client

    return Client(ctx.obj, address=address, token_file=ctx.find_root().meta.get("token_file"))


def emit(as_json: bool, data: Any, text: str) -> None:
    """`data` as one line of JSON with --json, else `text` for people."""
    click.echo(json.dumps(data, default=str) if as_json else text)
