"""The registry of this worker's live sessions (no IO, safe under threads and green threads)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections import Counter

from .session import Session
from .session import SessionState

#: Closed session ids remembered, so a late resume is told "expired", not "unknown".
TOMBSTONES = 10_000


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
        self._tombstones: OrderedDict[str, tuple[str, str]] = OrderedDict()  # id -> (user id, reason)

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_id)

    def add(self, session: Session, sid: str) -> None:
        with self._lock:
            self._by_id[session.id] = session
            self._by_sid[sid] = session
            self._sid_of[session.id] = sid
            self._by_user.setdefault(session.user.id, set()).add(session.id)
            self._user_ids[session.user.name] = session.user.id

    def rebind(self, session: Session, old_sid: str | None, sid: str) -> None:
        """``session`` now travels on connection ``sid`` (a resume)."""
        with self._lock:
            if old_sid is not None and self._by_sid.get(old_sid) is session:
                del self._by_sid[old_sid]
            self._by_sid[sid] = session
            self._sid_of[session.id] = sid

    def unbind(self, sid: str) -> Session | None:
        """Forget connection ``sid``; return the session it carried, if any."""
        with self._lock:
            session = self._by_sid.pop(sid, None)
            if session is not None and self._sid_of.get(session.id) == sid:
                del self._sid_of[session.id]
            return session

    def remove(self, session: Session) -> None:
        """Drop a closed session from every index."""
        with self._lock:
            if self._by_id.pop(session.id, None) is None:
                return
            sid = self._sid_of.pop(session.id, None)
            if sid is not None:
                self._by_sid.pop(sid, None)
            ids = self._by_user.get(session.user.id)
            if ids is not None:
                ids.discard(session.id)
                if not ids:
                    del self._by_user[session.user.id]
                    self._user_ids.pop(session.user.name, None)
            for topic in session.topics:
                self._leave(session.id, topic)
            self._tombstones[session.id] = (session.user.id, session.close_reason or "closed")
            while len(self._tombstones) > TOMBSTONES:
                self._tombstones.popitem(last=False)

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

    def for_user(self, user: str) -> list[Session]:
        """Sessions of the user with this id, or else this name."""
        with self._lock:
            ids = self._by_user.get(user)
            if ids is None and user in self._user_ids:
                ids = self._by_user.get(self._user_ids[user])
            return [self._by_id[i] for i in ids or () if i in self._by_id]

    def count_for_user(self, user_id: str) -> int:
        with self._lock:
            return len(self._by_user.get(user_id, ()))

    def join(self, session: Session, topic: str) -> None:
        with self._lock:
            if session.id in self._by_id:
                self._topics.setdefault(topic, set()).add(session.id)

    def leave(self, session: Session, topic: str) -> None:
        with self._lock:
            self._leave(session.id, topic)

    def _leave(self, session_id: str, topic: str) -> None:
        members = self._topics.get(topic)
        if members is not None:
            members.discard(session_id)
            if not members:
                del self._topics[topic]

    def in_topic(self, topic: str) -> list[Session]:
        with self._lock:
            return [self._by_id[i] for i in self._topics.get(topic, ()) if i in self._by_id]

    def topics(self) -> dict[str, int]:
        with self._lock:
            return {topic: len(members) for topic, members in self._topics.items()}

    def all(self) -> list[Session]:
        with self._lock:
            return list(self._by_id.values())

    def counts(self) -> dict[str, int]:
        """Sessions by lifecycle state."""
        with self._lock:
            counted = Counter(
                (s.lifecycle or SessionState.ATTACHED).value for s in self._by_id.values()
            )
        return {state.value: counted.get(state.value, 0)
                for state in (SessionState.ATTACHED, SessionState.DETACHED)}
