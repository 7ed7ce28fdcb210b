"""The registry of this worker's live sessions (no IO, safe under threads and green threads)."""

from __future__ import annotations

import threading
from collections import Counter
from collections import OrderedDict

from .errors import CLOSED
from .errors import TOO_MANY_SESSIONS
from .errors import GatewayError
from .session import Session
from .session import SessionState

#: Closed session ids remembered, so a late resume is told "expired", not "unknown".
TOMBSTONES = 10_000


class LimitReached(GatewayError):
    """No room for another session (on this worker, or for this user)."""

    code = TOO_MANY_SESSIONS


class SessionRegistry:
    """Owns every live session of one worker, indexed every way the gateway addresses them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, Session] = {}  # session id -> session (attached or detached)
        self._by_sid: dict[str, Session] = {}  # connection sid -> the session it carries
        self._sid_of: dict[str, str] = {}  # session id -> its connection sid, when attached
        self._by_user: dict[str, set[str]] = {}  # user id -> session ids
        self._user_ids: dict[str, str] = {}  # user name -> user id, for users with sessions
        self._topics: dict[str, set[str]] = {}  # topic -> session ids
        self._topic_users: dict[str, Counter[str]] = {}  # topic -> user id -> sessions in it
        self._online_watchers: set[str] = set()  # session ids told who comes and goes
        # id -> (user id, close reason)
        self._tombstones: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_id)

    def add(self, session: Session, sid: str, *, max_sessions: int | None = None,
            max_per_user: int | None = None) -> bool:
        """Index a new session; True when it is its user's first here (presence).

        Raises :class:`LimitReached` (and indexes nothing) when this worker already holds
        ``max_sessions`` sessions, or the user ``max_per_user``: checked and added under one
        lock, so two connections at once cannot both take the last place."""
        with self._lock:
            if max_sessions is not None and len(self._by_id) >= max_sessions:
                raise LimitReached("This server is full; try again shortly.")
            held = len(self._by_user.get(session.user.id, ()))
            if max_per_user is not None and held >= max_per_user:
                raise LimitReached(f"You already have {max_per_user} sessions open; "
                                   "close one first.")
            self._by_id[session.id] = session
            self._by_sid[sid] = session
            self._sid_of[session.id] = sid
            ids = self._by_user.setdefault(session.user.id, set())
            ids.add(session.id)
            self._user_ids[session.user.name] = session.user.id
            return len(ids) == 1

    def rebind(self, session: Session, old_sid: str | None, sid: str) -> bool:
        """``session`` now travels on connection ``sid`` (a resume). False, and nothing
        indexed, if it was removed meanwhile (closed after the resume, before this), or
        is no longer on ``sid`` (resumed again on another connection, whose own rebind
        indexes it, or detached): ``old_sid`` is unindexed all the same."""
        with self._lock:
            if self._by_id.get(session.id) is not session:
                return False
            if old_sid is not None and self._by_sid.get(old_sid) is session:
                del self._by_sid[old_sid]
                if self._sid_of.get(session.id) == old_sid:
                    del self._sid_of[session.id]
            if session.sid != sid:
                return False
            self._by_sid[sid] = session
            self._sid_of[session.id] = sid
            return True

    def unbind(self, sid: str) -> Session | None:
        """Forget connection ``sid``; return the session it carried, if any."""
        with self._lock:
            session = self._by_sid.pop(sid, None)
            if session is not None and self._sid_of.get(session.id) == sid:
                del self._sid_of[session.id]
            return session

    def remove(self, session: Session) -> list[str | None]:
        """Drop a closed session from every index.

        Returns where its user is no longer present on this worker: ``None`` for
        the worker itself (the user's last session), else topic names.
        """
        gone: list[str | None] = []
        with self._lock:
            if self._by_id.pop(session.id, None) is None:
                return gone
            sid = self._sid_of.pop(session.id, None)
            if sid is not None:
                self._by_sid.pop(sid, None)
            ids = self._by_user.get(session.user.id)
            if ids is not None:
                ids.discard(session.id)
                if not ids:
                    del self._by_user[session.user.id]
                    if self._user_ids.get(session.user.name) == session.user.id:
                        # (A deleted account's name may belong to a new account now.)
                        del self._user_ids[session.user.name]
                    gone.append(None)
            for topic in list(self._topics):
                if session.id in self._topics[topic] and self._leave(session, topic):
                    gone.append(topic)
            self._online_watchers.discard(session.id)
            self._tombstones[session.id] = (session.user.id, session.close_reason or CLOSED)
            while len(self._tombstones) > TOMBSTONES:
                self._tombstones.popitem(last=False)
        return gone

    def tombstone(self, session_id: str) -> tuple[str, str] | None:
        """(user id, close reason) of a recently closed session."""
        with self._lock:
            return self._tombstones.get(session_id)

    def get(self, session_id: str) -> Session | None:
        with self._lock:
            return self._by_id.get(session_id)

    def by_sid(self, sid: str) -> Session | None:
        with self._lock:
            return self._by_sid.get(sid)

    def for_user(self, user_id: str) -> list[Session]:
        """Sessions of the user with this id (never matched against names)."""
        with self._lock:
            return [self._by_id[i] for i in self._by_user.get(user_id, ()) if i in self._by_id]

    def for_user_name(self, name: str) -> list[Session]:
        """Sessions of the user with this name (never matched against ids)."""
        with self._lock:
            user_id = self._user_ids.get(name)
            ids = self._by_user.get(user_id, ()) if user_id is not None else ()
            return [self._by_id[i] for i in ids if i in self._by_id]

    def present(self, user_id: str, topic: str | None = None) -> bool:
        """Whether the user has a session here (in ``topic``, unless None)."""
        with self._lock:
            if topic is None:
                return user_id in self._by_user
            users = self._topic_users.get(topic)
            return users is not None and users[user_id] > 0

    def count_for_user(self, user_id: str) -> int:
        with self._lock:
            return len(self._by_user.get(user_id, ()))

    def join(self, session: Session, topic: str) -> bool:
        """Add ``session`` to ``topic``; True when its user was not in it here before."""
        with self._lock:
            if session.id not in self._by_id:
                return False
            members = self._topics.setdefault(topic, set())
            if session.id in members:
                return False
            members.add(session.id)
            users = self._topic_users.setdefault(topic, Counter())
            users[session.user.id] += 1
            return users[session.user.id] == 1

    def leave(self, session: Session, topic: str) -> bool:
        """Take ``session`` out of ``topic``; True when its user has left it here."""
        with self._lock:
            return self._leave(session, topic)

    def _leave(self, session: Session, topic: str) -> bool:
        members = self._topics.get(topic)
        if members is None or session.id not in members:
            return False
        members.discard(session.id)
        if not members:
            del self._topics[topic]
        users = self._topic_users[topic]
        users[session.user.id] -= 1
        if users[session.user.id] > 0:
            return False
        del users[session.user.id]
        if not users:
            del self._topic_users[topic]
        return True

    def watch_online(self, session: Session) -> None:
        """``session`` is told when users come online or go offline."""
        with self._lock:
            if session.id in self._by_id:
                self._online_watchers.add(session.id)

    def online_watchers(self) -> list[Session]:
        with self._lock:
            return [self._by_id[i] for i in self._online_watchers if i in self._by_id]

    def in_topic(self, topic: str) -> list[Session]:
        with self._lock:
            return [self._by_id[i] for i in self._topics.get(topic, ()) if i in self._by_id]

    def topics(self) -> dict[str, int]:
        with self._lock:
            return {topic: len(members) for topic, members in self._topics.items()}

    def presence(self) -> dict[tuple[str | None, str], str]:
        """Who is here: ``{(None, user id): name}`` and ``{(topic, user id): name}``."""
        with self._lock:
            names = {user_id: name for name, user_id in self._user_ids.items()}
            here: dict[tuple[str | None, str], str] = {
                (None, user_id): names.get(user_id, user_id) for user_id in self._by_user}
            for topic, users in self._topic_users.items():
                for user_id in users:
                    here[(topic, user_id)] = names.get(user_id, user_id)
            return here

    def all(self) -> list[Session]:
        with self._lock:
            return list(self._by_id.values())

    def counts(self) -> dict[str, int]:
        """Sessions by lifecycle state."""
        with self._lock:
            counted = Counter(
                (SessionState.ATTACHED if s.lifecycle is SessionState.NEW else s.lifecycle).value
                for s in self._by_id.values()
            )
        return {state.value: counted.get(state.value, 0)
                for state in (SessionState.ATTACHED, SessionState.DETACHED)}
