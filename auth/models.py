"""Users, stored through SQLAlchemy; passwords hashed with Argon2."""

from __future__ import annotations

from datetime import datetime
from datetime import timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError
from argon2.exceptions import VerificationError
from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

db = SQLAlchemy()
_hasher = PasswordHasher()

NAME_MAX = 64


def _now() -> datetime:
    return datetime.now(timezone.utc)


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=_now)

    def __repr__(self) -> str:
        return f"<User {self.name}>"

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users at login
        return not self.disabled

    def set_password(self, password: str) -> None:
        self.password_hash = _hasher.hash(password)

    def check_password(self, password: str) -> bool:
        try:
            _hasher.verify(self.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        if _hasher.check_needs_rehash(self.password_hash):
            self.set_password(password)
            db.session.commit()
        return True

    @classmethod
    def by_name(cls, name: str) -> User | None:
        return db.session.execute(db.select(cls).filter_by(name=name)).scalar_one_or_none()


# A hash to verify against when the user does not exist, so a login takes the same
# time whether or not the name is known.
DUMMY_HASH = _hasher.hash("not a real password")


def verify_dummy(password: str) -> None:
    try:
        _hasher.verify(DUMMY_HASH, password)
    except VerificationError:
        pass
