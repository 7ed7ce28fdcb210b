"""Addressing (``Target``) and the ``Emitter``, with no Redis: ids and names kept apart,
and what is not JSON refused before it is sent."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.cluster.emitter import Emitter
from gateway.cluster.messages import encode
from gateway.core.errors import GatewayError
from gateway.core.targets import Target


def test_targets_keep_user_ids_and_user_names_apart():
    # No Redis needed: addressing, and the bus's wire form of each address.
    assert Target.of(user=5) == Target.of(user="5") == Target("user", "5")
    assert Target.of(user_name="5") == Target("user_name", "5") != Target.of(user=5)
    assert Target.of(user=5).to_dict() == {"user": {"id": 5}}
    assert Target.of(user_name="alice").to_dict() == {"user": {"name": "alice"}}
    with pytest.raises(GatewayError, match="user_name="):
        Target.of(user="alice")  # a name where an id belongs: refused, not guessed
    with pytest.raises(GatewayError):
        Target("user", "alice")
    with pytest.raises(GatewayError, match="exactly one"):
        Target.of(user=5, user_name="alice")
    for target in (Target.of(user=5), Target.of(user_name="2"), Target.of(topic="lobby"),
                   Target.of(session="abc"), Target.of(everyone=True)):
        assert Target.from_dict(target.to_dict()) == target  # every worker reads it back
    with pytest.raises(GatewayError, match='{"name": NAME}'):
        Target.from_dict({"user": "alice"})


def test_emitter_addresses_ids_and_names(monkeypatch):
    emitter = Emitter("redis://127.0.0.1:1/0")  # never reached: publish is captured
    published: list[dict[str, Any]] = []
    monkeypatch.setattr(emitter, "publish", lambda m: published.append(encode(m)) or "1-0")
    emitter.send("toast", {"text": "a"}, user=7)
    emitter.send("toast", {"text": "b"}, user_name="alice")
    emitter.close_user(7)
    emitter.close_user(user_name="alice")
    assert [m["to"] for m in published] == [{"user": {"id": 7}}, {"user": {"name": "alice"}},
                                            {"user": {"id": 7}}, {"user": {"name": "alice"}}]
    with pytest.raises(GatewayError):
        emitter.send("toast", {}, user="alice")
    emitter.close()


def test_emitter_refuses_what_is_not_json(monkeypatch):
    from gateway.core.errors import GatewayError

    emitter = Emitter("redis://127.0.0.1:1/0")  # never reached: xadd is captured
    added: list = []
    monkeypatch.setattr(emitter._stream.redis, "xadd", lambda *a, **k: added.append(a) or b"1-0")
    for args in ({"n": float("nan")}, {"n": [float("-inf")]}, {"n": {1, 2}}):
        with pytest.raises(GatewayError) as refused:
            emitter.send("toast", args, everyone=True)
        assert refused.value.code == "bad_request" and isinstance(refused.value, ValueError)
    assert added == []
    assert emitter.send("toast", {"n": 1.5}, everyone=True) == "1-0" and len(added) == 1
    emitter.close()
