"""``flask --app wsgi send``: a send to live sessions from the command line."""

from __future__ import annotations

import click
from flask import Blueprint
from flask import current_app

from ..cluster.emitter import Emitter
from ..cluster.messages import Send
from ..core.errors import GatewayError
from ..core.jsonsafe import loads_strict
from ..core.targets import Target
from ..settings import Settings

bp = Blueprint("gateway_cli", __name__, cli_group=None)


@bp.cli.command("send")
@click.option("--user", "user_name", metavar="NAME",
              help="A user's name: all their sessions.")
@click.option("--user-id", metavar="ID", help="A user's id: all their sessions.")
@click.option("--topic", help="Every session in this topic.")
@click.option("--session", "session_id", help="One session id.")
@click.option("--everyone", is_flag=True, help="Every session.")
@click.argument("command")
@click.argument("json_args", default="{}")
def send(user_name: str | None, user_id: str | None, topic: str | None,
         session_id: str | None, everyone: bool, command: str, json_args: str) -> None:
    """Send COMMAND with JSON_ARGS (an object) to live sessions on every worker.

    It goes through the message queue (GATEWAY_MESSAGE_QUEUE), which the running
    workers read; it exits non-zero when the message was not accepted.
    """
    if user_id is not None and not (user_id.isascii() and user_id.isdigit()):
        raise click.BadParameter(f"{user_id!r} is not a user id (a number); address a user "
                                 "by name with --user NAME.", param_hint="--user-id")
    try:
        args = loads_strict(json_args)  # strict: no NaN/Infinity, bounded depth
        target = Target.of(session=session_id, user=user_id, user_name=user_name,
                           topic=topic, everyone=everyone)
        message = Send.of(target, command, args)
    except ValueError as exc:
        raise click.UsageError(f"JSON_ARGS is not valid JSON: {exc}") from None
    except GatewayError as exc:
        raise click.UsageError(str(exc)) from None
    settings: Settings = current_app.config["GATEWAY"]
    if not settings.MESSAGE_QUEUE:
        raise click.ClickException(
            "GATEWAY_MESSAGE_QUEUE is not set: without a message queue no other process "
            "can reach the server's sessions (use POST /api/v1/push instead).")
    with Emitter(settings.MESSAGE_QUEUE, settings.BUS_CHANNEL) as emitter:
        try:
            entry = emitter.publish(message)
        except GatewayError as exc:
            click.echo(f"Error: not sent: {exc}", err=True)
            raise SystemExit(2) from None
    click.echo(f"accepted {entry}")
