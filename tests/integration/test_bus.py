"""The Redis bus against a real redis-server: delivery, presence, dead workers, outages."""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.cluster.emitter import Emitter
from gateway.cluster.messages import Message
from gateway.cluster.messages import PresenceUpdate
from gateway.cluster.messages import Send
from gateway.cluster.messages import Snapshots
from gateway.cluster.redis_bus import RedisBus
from gateway.core.errors import BusUnavailable
from gateway.core.presence import Presence
from gateway.core.targets import Target
from tests.helpers.cluster import RedisServer
from tests.helpers.support import wait_for


class Worker:
    """A RedisBus with a Presence, as a hub wires them, recording what it delivers."""

    def __init__(self, url: str, name: str, heartbeat: float = 0.2) -> None:
        self.bus = RedisBus(url, worker_id=name, channel="test", heartbeat=heartbeat,
                            block=0.2, max_backoff=0.3)
        self.presence = Presence(name)
        self.delivered: list[Message] = []
        self.here: dict[tuple[str | None, str], str] = {}
        self.threads: list[threading.Thread] = []

    def deliver(self, message: Message) -> None:
        if isinstance(message, PresenceUpdate):
            self.presence.apply_change(message)
        elif isinstance(message, Snapshots):
            alive = {self.presence.worker_id}
            for snapshot in message.snapshots:
                if snapshot.worker != self.presence.worker_id:
                    self.presence.apply_snapshot(snapshot)
                    alive.add(snapshot.worker)
            self.presence.retain_workers(alive)
        else:
            self.delivered.append(message)

    def spawn(self, fn: Any) -> None:
        thread = threading.Thread(target=fn, daemon=True)
        thread.start()
        self.threads.append(thread)

    def start(self) -> Worker:
        self.bus.start(self.deliver, lambda: self.presence.snapshot(lambda: self.here),
                       self.spawn)
        wait_for(lambda: self.bus.healthy, 10, message=f"bus of {self.presence.worker_id} up")
        return self

    def arrive(self, user_id: str, name: str, topic: str | None = None) -> None:
        self.here[(topic, user_id)] = name
        self.bus.publish(self.presence.local_change({"id": user_id, "name": name}, topic, True))

    def stop(self) -> None:
        self.bus.stop()
        for thread in self.threads:
            thread.join(5)

    def texts(self) -> list[str]:
        return [m.args["text"] for m in self.delivered if isinstance(m, Send)]


@pytest.fixture
def workers(redis_server: RedisServer) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def make(name: str, **kw: Any) -> Worker:
        worker = Worker(redis_server.url, name, **kw).start()
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.stop()


def send(bus: RedisBus | Emitter, text: str) -> str:
    return bus.publish(Send.of(Target("user_name", "alice"), "toast", {"text": text}))


def test_messages_reach_every_other_worker_in_order_and_not_their_sender(workers, redis_server):
    a, b, c = workers("a"), workers("b"), workers("c")
    for n in range(200):
        send(a.bus, f"m{n}")
    with Emitter(redis_server.url, channel="test") as emitter:
        entry = emitter.send("toast", {"text": "from outside"}, user_name="alice")
        assert entry  # the accepted message's stream id
    expected = [f"m{n}" for n in range(200)]
    for worker in (b, c):
        wait_for(lambda w=worker: len(w.texts()) == 201, message="201 messages")
        assert worker.texts() == expected + ["from outside"]
    wait_for(lambda: a.texts() == ["from outside"], message="a gets the emitter's only")


def test_presence_agrees_and_a_dead_workers_users_leave(workers):
    a, b = workers("a"), workers("b", heartbeat=0.2)
    a.arrive("1", "alice")
    b.arrive("2", "bob", None)
    b.arrive("2", "bob", "lobby")
    for worker in (a, b):
        wait_for(lambda w=worker: [u["name"] for u in w.presence.online()] == ["alice", "bob"],
                 message="both online on both")
        wait_for(lambda w=worker: [u["name"] for u in w.presence.members("lobby")] == ["bob"],
                 message="bob in the lobby")
    left: list[Any] = []
    a.presence.subscribe(lambda change: left.append(change) if not change.present else None)
    # b dies without a word: its heartbeat key expires (3 beats) and its users leave.
    b.bus._stopping.set()  # stop its tasks, but leave its key to expire on its own
    wait_for(lambda: [u["name"] for u in a.presence.online()] == ["alice"], timeout=5,
             message="bob gone with his worker")
    assert {(c.user["name"], c.topic) for c in left} == {("bob", None), ("bob", "lobby")}


def test_redis_outage_fails_sends_loudly_and_every_worker_recovers(workers, redis_server):
    a, b = workers("a"), workers("b")
    send(a.bus, "before")
    wait_for(lambda: b.texts() == ["before"], message="before the outage")
    redis_server.stop()
    for worker in (a, b):
        wait_for(lambda w=worker: not w.bus.healthy, 5, message="bus reported down")
    with pytest.raises(BusUnavailable):
        send(a.bus, "during")
    with pytest.raises(BusUnavailable):
        Emitter(redis_server.url, channel="test").send("toast", {"text": "x"}, everyone=True)
    redis_server.start()
    for worker in (a, b):
        wait_for(lambda w=worker: w.bus.healthy, 10, message="bus back up")
    # Published before b's reader is back? The stream keeps it for b to read.
    send(a.bus, "after")
    send(b.bus, "after, from b")
    wait_for(lambda: b.texts() == ["before", "after"], message="b hears a again")
    wait_for(lambda: a.texts() == ["after, from b"], message="a hears b again")
