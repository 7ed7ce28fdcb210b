"""``flask users create|delete|disable|enable|passwd|list``.

Disabling a user, changing their password or deleting them ends their logins: the
login cookie is refused from the next request, and each worker closes their live
sessions (``logged_out``) within ``GATEWAY_ACCOUNT_CHECK_SECONDS``.
"""

from __future__ import annotations

import sys

import click
from flask import Blueprint
from flask import current_app

from .models import NAME_MAX
from .models import User
from .models import db

bp = Blueprint("users", __name__, cli_group="users")

PASSWORD_MIN = 8


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < PASSWORD_MIN:
        raise click.ClickException(f"The password must have at least {PASSWORD_MIN} characters.")
    return password


def existing(name: str) -> User:
    user = User.by_name(name)
    if user is None:
        raise click.ClickException(f"There is no user named {name!r}.")
    return user


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
    password = read_password(password_stdin)
    user = User(name=name, is_admin=admin)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    click.echo(f"Created user {name}{' (admin)' if admin else ''}.")


@bp.cli.command("delete")
@click.argument("name")
def delete_user(name: str) -> None:
    """Delete the user NAME (their live sessions are closed)."""
    db.session.delete(existing(name))
    db.session.commit()
    click.echo(f"Deleted user {name}.")


@bp.cli.command("disable")
@click.argument("name")
def disable_user(name: str) -> None:
    """Disable the user NAME: no more logins; their live sessions are closed."""
    existing(name).disable()
    db.session.commit()
    click.echo(f"Disabled user {name}; their sessions close within "
               f"{current_app.config['GATEWAY'].ACCOUNT_CHECK_SECONDS:g} s.")


@bp.cli.command("enable")
@click.argument("name")
def enable_user(name: str) -> None:
    """Enable the user NAME again (they log in afresh)."""
    existing(name).disabled = False
    db.session.commit()
    click.echo(f"Enabled user {name}.")


@bp.cli.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def change_password(name: str, password_stdin: bool) -> None:
    """Set a new password for NAME; their existing logins and sessions end."""
    user = existing(name)
    user.change_password(read_password(password_stdin))
    db.session.commit()
    click.echo(f"Changed the password of {name}; their existing logins end.")


@bp.cli.command("list")
def list_users() -> None:
    """List the users: name, flags, creation time."""
    users = db.session.execute(db.select(User).order_by(User.name)).scalars().all()
    for user in users:
        flags = [flag for flag, on in (("admin", user.is_admin), ("disabled", user.disabled))
                 if on]
        click.echo(f"{user.name}\t{','.join(flags) or '-'}\t"
                   f"{user.created_at:%Y-%m-%d %H:%M}")
