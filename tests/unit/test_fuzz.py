"""Fuzzing (hypothesis): arbitrary JSON and malformed payloads at every client-facing
message and HTTP endpoint. The worker never crashes, answers with the documented error
shapes, never shows a traceback, and other sessions keep working."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from gateway.core.errors import EVENT_ERROR_CODES

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
event_like = st.fixed_dictionaries(
    {}, optional={"id": json_values | st.integers(min_value=-5, max_value=2**60),
                  "name": st.sampled_from(["echo", "input.reply", "x", "", "A", "a" * 70])
                  | st.text(max_size=70) | json_values,
                  "data": json_values, "extra": json_values})
CODES = {"unauthorized", "unknown_app", "too_many_sessions", "bad_request"}


def check_ack(ack: Any) -> None:
    assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), ack
    if not ack["ok"]:
        assert set(ack) == {"ok", "error"} and ack["error"]["code"] in EVENT_ERROR_CODES, ack
        assert "Traceback" not in ack["error"]["message"]


@pytest.fixture
def pair(connect, set_limits):
    set_limits(EVENT_RATE=1e6, EVENT_BURST=10**6)
    fuzzed, _ = connect("echo", user="alice")
    bystander, messages = connect("echo", user="bob")
    return fuzzed, bystander


@FUZZ
@given(message=event_like | json_values)
def test_events(pair, message):
    fuzzed, bystander = pair
    check_ack(fuzzed.emit("event", message, callback=True))
    assert fuzzed.is_connected() and bystander.is_connected()


@FUZZ
@given(message=json_values, extra=st.lists(json_values, max_size=2))
def test_acks_and_unknown_messages(pair, message, extra):
    fuzzed, bystander = pair
    fuzzed.emit("ack", message, *extra)
    check_ack(fuzzed.emit("whatever", message, callback=True))
    check_ack(fuzzed.emit("event", {"id": 10**9, "name": "echo", "data": {"text": "ok"}},
                          callback=True))
    assert bystander.emit("event", {"id": 1, "name": "echo", "data": {"text": "b"}},
                          callback=True)["ok"]


@pytest.fixture
def alice(app):
    """alice logged in, once for all the examples of a test (a login is an Argon2
    verification, slow on purpose: 150 of them took 14 s)."""
    from tests.helpers.testapp import login_client

    return login_client(app, "alice")


@FUZZ
@given(auth=json_values.filter(lambda value: isinstance(value, bool)
                               or not isinstance(value, (int, float)))
       | st.fixed_dictionaries({"app": json_values, "resume": json_values}))
def test_connect_auth(app, alice, auth):
    # (A bare number cannot be a CONNECT payload: the test client's own packet encoder
    # turns 0.0 into "00.0", which its decoder rejects before the server sees anything.
    # Raw malformed CONNECT packets go to a real server in
    # tests/integration/test_fuzz_server.py.)
    from gateway import socketio

    sio = socketio.test_client(app, flask_test_client=alice, auth=auth)
    if sio.is_connected():
        sio.disconnect()


@FUZZ
@given(path=st.text(max_size=30), method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
       form=st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=4))
def test_http_endpoints(app, path, method, form):
    client = app.test_client()
    for url in ("/" + path.lstrip("/"), "/login", "/logout", "/app/" + path[:10], "/readyz"):
        response = client.open(url, method=method, data=form)
        assert response.status_code < 500, (url, method, response.status_code)
        assert b"Traceback" not in response.data


@pytest.fixture
def api(app):
    """(an API token, an admin's HTTP client, a bystander session of bob)."""
    from auth.tokens import ApiToken
    from gateway import socketio
    from tests.helpers.testapp import login_client
    with app.app_context():
        token = ApiToken.issue("fuzz")
    bystander = socketio.test_client(app, flask_test_client=login_client(app, "bob"),
                                     auth={"app": "echo"})
    yield token, login_client(app, "root"), bystander
    bystander.disconnect()


push_like = st.fixed_dictionaries(
    {}, optional={"to": json_values | st.fixed_dictionaries(
        {}, optional={"user": json_values, "topic": json_values, "session": json_values,
                      "everyone": json_values}),
        "name": json_values, "args": json_values, "more": json_values})


@FUZZ
@given(body=push_like | json_values, raw=st.binary(max_size=64) | st.none(),
       auth=st.sampled_from(["token", "none", "garbage"]))
def test_api_endpoints(app, api, body, raw, auth):
    import json

    token, admin, bystander = api
    headers = {"Authorization": {"token": f"Bearer {token}", "none": "",
                                 "garbage": "Bearer \u00e9\x00"}[auth]}
    client = app.test_client()
    data = raw if raw is not None else json.dumps(body)
    for response in (
        client.post("/api/v1/push", data=data, headers=headers, content_type="application/json"),
        client.get("/api/v1/presence", query_string={"topic": str(body)[:20]}, headers=headers),
        admin.get("/api/v1/sessions"),
        admin.post(f"/api/v1/sessions/{str(body)[:30]}/kick", data=data),
        admin.post(f"/api/v1/{str(body)[:30]}", data=data),
    ):
        assert response.status_code < 500 and b"Traceback" not in response.data
        if response.status_code >= 400:
            error = response.get_json()["error"]
            assert error["code"] and error["message"]
    assert bystander.emit("event", {"id": 1, "name": "echo", "data": {"text": "b"}},
                          callback=True)["ok"]
