"""A Python client of protocol v1 that keeps the delivery guarantees across reconnects.

For scripts, load tests and the tests of session apps: it resumes its session after a
drop, applies every command exactly once in seq order, acknowledges them, and resends
unacknowledged events with their ids. ``drop()`` cuts the connection at a chosen point.

    client = GatewayClient("http://127.0.0.1:5000", "echo", cookie=cookie).connect()
    assert client.call("echo", {"text": "hi"}) == "hi"
    client.drop()        # the server detaches the session
    client.connect()     # and this resumes it: nothing lost, nothing twice
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import engineio
import socketio

from .client_state import ClientState
from .client_state import KeepsBooks
from .core.errors import SESSION_CLOSED
from .core.errors import UNAUTHORIZED

__all__ = ["EventFailed", "GatewayClient", "Resume"]


class _OrderedEngineIOClient(engineio.Client):
    """python-engineio's client, handing each message on in the order it arrived.

    Its read loop starts a new thread for every ``message`` (``Client._receive_packet``
    calls ``_trigger_event("message", ..., run_async=True)``), so a client could handle
    ``commands`` before the ``session`` that precedes them (counting a new session's
    commands as duplicates of the old one's), or the CONNECT packet before ``session``
    (acknowledging and resending the old session's events into a new one). There is no
    setting for this: the message handler runs in the read loop instead, as it does on
    the server with ``async_handlers=False``. The handlers only update the books and
    queue writes. (Upstream: python-engineio runs every client message handler as a
    background task; see its ``Client._receive_packet``.)
    """

    def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "message":
            kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)

    def disconnect(self, abort: bool = False, reason: Any = None) -> None:
        # A message handled in the read loop may end the connection (the server's
        # DISCONNECT packet: python-socketio then disconnects Engine.IO), and the read loop
        # cannot wait for itself to end (it would raise "cannot join current thread"):
        # it ends on its own once this returns.
        if threading.current_thread() is getattr(self, "read_loop_task", None):
            abort = True
        super().disconnect(abort=abort, reason=reason)


class _OrderedClient(socketio.Client):
    """python-socketio's client on :class:`_OrderedEngineIOClient`."""

    def _engineio_client_class(self) -> type[engineio.Client]:
        return _OrderedEngineIOClient


class EventFailed(Exception):
    """The server answered an event with ``{"ok": false}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class Resume:
    """What happened to one reconnect: resumed, or a fresh session and why."""

    resumed: bool
    reason: str | None
    seconds: float  # from the drop to the session message


@dataclass
class _Pending:
    name: str
    data: Any
    done: threading.Event = field(default_factory=threading.Event)
    ack: Any = None


class GatewayClient(KeepsBooks):
    """One tab's worth of protocol v1 over python-socketio, with resume."""

    def __init__(self, url: str, app: str, *, cookie: str | None = None,
                 transports: list[str] | None = None, reconnect: bool = True,
                 on_command: Callable[[dict[str, Any]], None] | None = None,
                 max_backoff: float = 2.0, attempt_timeout: float = 2.0) -> None:
        from engineio.payload import Payload

        # python-engineio's client drops a polling response of more than 16 packets;
        # a gateway batches more than that under load. Let the byte limit govern.
        Payload.max_decode_packets = max(Payload.max_decode_packets, 100_000)
        self.url, self.app = url, app
        self.headers = {"Cookie": cookie} if cookie else {}
        self.transports = transports or ["websocket"]
        self.reconnect = reconnect
        self.on_command = on_command
        self.max_backoff = max_backoff
        self.attempt_timeout = attempt_timeout
        self._lock = threading.RLock()
        self._room = threading.Condition(self._lock)  # notified when an event is settled
        self.state = ClientState()  # session, token, seqs, unacked events; under _lock
        self.applied: list[dict[str, Any]] = []  # commands applied, in order
        self.sessions: list[dict[str, Any]] = []  # every `session` message
        self.closed: dict[str, Any] | None = None  # the `close` message, if any
        self.resumes: list[Resume] = []
        self.connect_error: Any = None
        self._dropped_at: float | None = None
        self._stopping = False
        self._welcomed = threading.Event()
        self._lost = threading.Event()  # set when the connection is lost
        self._supervisor: threading.Thread | None = None
        self.sio = self._new_sio()

    def _new_sio(self) -> socketio.Client:
        """A python-socketio client bound to this one; a new one for every reconnect,
        because a cut in mid-handshake can leave the old one's state inconsistent."""
        sio = _OrderedClient(reconnection=False)

        def current(handler: Callable[..., None]) -> Callable[..., None]:
            def run(*args: Any) -> None:
                if sio is self.sio:  # late news from a replaced client is ignored
                    handler(*args)
            return run

        sio.on("session", current(self._on_session))
        sio.on("commands", current(self._on_commands))
        sio.on("close", current(self._on_close))
        sio.on("connect_error", current(self._on_connect_error))
        sio.on("disconnect", current(self._on_disconnect))
        sio.on("connect", current(self._on_connect))
        return sio

    @property
    def _token(self) -> str | None:
        return self.state.token

    # -- connection ------------------------------------------------------

    def _auth(self) -> dict[str, Any]:
        with self._lock:
            return {"app": self.app, "resume": self.state.resume_request()}

    def connect(self, timeout: float = 10.0) -> GatewayClient:
        """Connect (resuming the session if there is one) and wait for its session message."""
        self._welcomed.clear()
        if self._supervisor is None and self.reconnect:
            self._supervisor = threading.Thread(target=self._supervise, daemon=True)
            self._supervisor.start()
        self.sio.connect(self.url, headers=self.headers, auth=self._auth,
                         transports=self.transports, wait_timeout=timeout)
        if not self._welcomed.wait(timeout):
            raise TimeoutError("no session message from the gateway")
        return self

    def drop(self) -> None:
        """Cut the connection without closing the session (as a network failure would)."""
        with self._lock:
            self._dropped_at = time.monotonic()
        reconnect, self.reconnect = self.reconnect, False
        try:
            self.sio.disconnect()
        finally:
            self.reconnect = reconnect

    def close(self) -> None:
        """Disconnect for good."""
        self._stopping = True
        if self.sio.connected:
            self.sio.disconnect()

    def _reset_transport(self) -> None:
        old, self.sio = self.sio, self._new_sio()
        if old.eio.state != "disconnected":
            try:
                old.disconnect()
            except (socketio.exceptions.SocketIOError, OSError):  # a cut left it half open
                pass

    def _on_connect_error(self, data: Any) -> None:
        self.connect_error = data

    def _on_disconnect(self, *args: Any) -> None:
        with self._lock:
            if self._dropped_at is None:
                self._dropped_at = time.monotonic()
        if self.reconnect and not self._stopping and self.closed is None:
            self._lost.set()

    def _supervise(self) -> None:
        """One thread for the client's life: reconnects whenever the connection is lost."""
        while not self._stopping:
            if not self._lost.wait(0.25):
                # A cut in the middle of a handshake can leave python-socketio believing
                # it is connected while its Engine.IO transport is gone.
                if self.sio.connected and self.sio.eio.state != "connected" \
                        and self.closed is None and self.reconnect:
                    self._lost.set()
                continue
            self._lost.clear()
            if self.reconnect and self.closed is None:
                self._reconnect_loop()

    @property
    def connected(self) -> bool:
        return bool(self.sio.connected)

    def _reconnect_loop(self) -> None:
        delay = 0.02
        while not self._stopping and self.closed is None:
            self._reset_transport()
            try:
                self.connect(timeout=self.attempt_timeout)
                return
            except (socketio.exceptions.ConnectionError, TimeoutError):
                if isinstance(self.connect_error, dict) \
                        and self.connect_error.get("message") == UNAUTHORIZED:
                    return
                time.sleep(delay)  # back-off between reconnect attempts
                delay = min(self.max_backoff, delay * 2)

    # -- server messages --------------------------------------------------

    def _on_session(self, data: dict[str, Any]) -> None:
        with self._lock:
            requested = self.session_id is not None
            self.sessions.append(data)
            if requested:
                dropped = self._dropped_at
                seconds = time.monotonic() - dropped if dropped is not None else 0.0
                self.resumes.append(Resume(bool(data["resumed"]), data.get("reason"), seconds))
            self._dropped_at = None
            # A fresh session: what was in flight belongs to the old one.
            for pending in self.state.welcome(data):
                pending.ack = {"ok": False, "error": {
                    "code": SESSION_CLOSED, "message": "The session was replaced."}}
                pending.done.set()
            self._room.notify_all()
        self._welcomed.set()

    def _on_connect(self) -> None:
        # The session message comes before the CONNECT packet, when nothing can be
        # emitted yet: acknowledge and resend from here.
        self._ack_applied()
        with self._lock:
            resend = self.state.unsettled()
        for event_id, pending in resend:
            self._emit_event(event_id, pending)

    def _on_commands(self, batch: list[dict[str, Any]]) -> None:
        # Messages are handled in arrival order (_OrderedClient); a command ahead of a
        # gap (never expected from the server) is still held until the gap is filled.
        with self._lock:
            applied = self.state.accept(batch)
            self.applied.extend(applied)
            seq = self.state.last_seq
            if self.on_command is not None:
                for command in applied:
                    self.on_command(command)
        if applied:
            self._ack_applied(seq)

    def _ack_applied(self, seq: int | None = None) -> None:
        seq = self.last_seq if seq is None else seq
        if seq > 0:
            try:
                self.sio.emit("ack", {"seq": seq})
            except socketio.exceptions.BadNamespaceError:
                pass  # commands came before the CONNECT packet: acked on connect

    def _on_close(self, data: dict[str, Any]) -> None:
        self.closed = data

    # -- events -------------------------------------------------------------

    def send(self, name: str, data: Any = None, timeout: float = 30.0) -> _Pending:
        """Send an event; it is resent after a resume until acknowledged. Waits (at most
        ``timeout`` seconds, then TimeoutError) while as many events as the session
        remembers results of (``event_memory``) await their ack."""
        with self._room:
            # (Never from this client's own reader, a message handler: the acks that
            # make room arrive there.)
            reader = threading.current_thread() is getattr(self.sio.eio, "read_loop_task", None)
            if not reader and not self._room.wait_for(self.state.has_room, timeout):
                raise TimeoutError(f"{self.state.unacked_events} events still await "
                                   f"their ack after {timeout} s")
            pending = _Pending(name, data)
            event_id = self.state.track(pending)
        self._emit_event(event_id, pending)
        return pending

    def _emit_event(self, event_id: int, pending: _Pending) -> None:
        def on_ack(ack: Any) -> None:
            with self._room:
                if not self.state.settle(event_id, pending):
                    return
                self._room.notify_all()
            pending.ack = ack
            pending.done.set()

        try:
            self.sio.emit("event", {"id": event_id, "name": pending.name, "data": pending.data},
                          callback=on_ack)
        except (socketio.exceptions.BadNamespaceError, KeyError):
            # disconnected (KeyError: python-socketio cleared its callbacks while we
            # emitted, a cut racing the resend): resent on the next resume
            pass

    def call(self, name: str, data: Any = None, timeout: float = 10.0) -> Any:
        """Send an event and wait for its result; raise EventFailed on an error ack."""
        pending = self.send(name, data)
        if not pending.done.wait(timeout):
            raise TimeoutError(f"no ack for {name!r} within {timeout} s")
        if not pending.ack.get("ok"):
            error = pending.ack["error"]
            raise EventFailed(error["code"], error["message"])
        return pending.ack.get("result")

    @property
    def gaps(self) -> int:
        """Commands held because an earlier one has not arrived (0 once all is delivered)."""
        with self._lock:
            return self.state.held

    @property
    def unacked_events(self) -> int:
        with self._lock:
            return self.state.unacked_events
