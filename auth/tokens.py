"""API tokens for ``POST /api/v1/push``: random, shown once, stored as SHA-256 only.

``flask --app wsgi tokens create NAME`` prints a new token on its last line;
``flask --app wsgi tokens revoke NAME`` deletes it; ``tokens list`` shows the names.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC
from datetime import datetime

import click
from flask import Blueprint
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from .models import NAME_MAX
from .models import db

bp = Blueprint("tokens", __name__, cli_group="tokens")

#: Every token starts with this, so a leaked one is easy to recognise (and to scan for).
PREFIX = "gwt_"


def _now() -> datetime:
    return datetime.now(UTC)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class ApiToken(db.Model):  # type: ignore[name-defined]
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)

    @classmethod
    def issue(cls, name: str) -> str:
        """Create the token ``name``; return the plain token (it is not kept)."""
        token = PREFIX + secrets.token_urlsafe(32)
        db.session.add(cls(name=name, token_hash=_digest(token)))
        db.session.commit()
        return token

    @classmethod
    def verify(cls, token: str) -> ApiToken | None:
        """The token row ``token`` stands for, or None."""
        if not token.startswith(PREFIX) or len(token) > 256:
            return None
        digest = _digest(token)
        row = db.session.execute(
            db.select(cls).filter_by(token_hash=digest)).scalar_one_or_none()
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            return None
        return row


@bp.cli.command("create")
@click.argument("name")
def create_token(name: str) -> None:
    """Create the API token NAME and print it (once) on the last line."""
    if not 0 < len(name) <= NAME_MAX or not name.isprintable():
        raise click.UsageError(f"NAME must be 1 to {NAME_MAX} printable characters.")
    if db.session.execute(db.select(ApiToken.id).filter_by(name=name)).first() is not None:
        raise click.ClickException(f"A token named {name!r} already exists; revoke it first.")
    token = ApiToken.issue(name)
    click.echo(f"Created API token {name}. It is shown only this once:", err=True)
    click.echo(token)


@bp.cli.command("revoke")
@click.argument("name")
def revoke_token(name: str) -> None:
    """Revoke (delete) the API token NAME."""
    row = db.session.execute(db.select(ApiToken).filter_by(name=name)).scalar_one_or_none()
    if row is None:
        raise click.ClickException(f"There is no token named {name!r}.")
    db.session.delete(row)
    db.session.commit()
    click.echo(f"Revoked API token {name}.")


@bp.cli.command("list")
def list_tokens() -> None:
    """List the API tokens' names and creation times (never the tokens)."""
    for row in db.session.execute(db.select(ApiToken).order_by(ApiToken.name)).scalars():
        click.echo(f"{row.name}\t{row.created_at:%Y-%m-%d %H:%M}")
