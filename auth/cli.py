"""``flask users create|delete``."""

from __future__ import annotations

import sys

import click
from flask import Blueprint

from .models import NAME_MAX
from .models import User
from .models import db

bp = Blueprint("users", __name__, cli_group="users")


@bp.cli.command("create")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--admin", is_flag=True, help="Give the user the admin flag.")
def create_user(name: str, password_stdin: bool, admin: bool) -> None:
    """Create the user NAME."""
    if not 0 < len(name) <= NAME_MAX or not name.isprintable() or name.strip() != name:
        raise click.UsageError(f"NAME must be 1 to {NAME_MAX} printable characters.")
    if User.by_name(name) is not None:
        raise click.ClickException(f"A user named {name!r} already exists.")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise click.ClickException("The password must have at least 8 characters.")
    user = User(name=name, is_admin=admin)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    click.echo(f"Created user {name}{' (admin)' if admin else ''}.")


@bp.cli.command("delete")
@click.argument("name")
def delete_user(name: str) -> None:
    """Delete the user NAME."""
    user = User.by_name(name)
    if user is None:
        raise click.ClickException(f"There is no user named {name!r}.")
    db.session.delete(user)
    db.session.commit()
    click.echo(f"Deleted user {name}.")
