"""Administration on a real server: an admin lists the sessions and kicks one."""

from __future__ import annotations

import pytest
import requests

from tests.helpers.support import ProtocolClient
from tests.helpers.support import add_users
from tests.helpers.support import cookie_header
from tests.helpers.support import csrf_token
from tests.helpers.support import login
from tests.helpers.support import running_server
from tests.helpers.support import wait_for
from tests.helpers.testapp import PASSWORD


@pytest.mark.real
def test_real_server_admin_lists_and_kicks(tmp_path_factory):
    with running_server(tmp_path_factory, "admin", [], PASSWORD) as server:
        add_users(server, PASSWORD, ["alice", "bob"], admins=["root"])
        alice = ProtocolClient(server.url, cookie_header(login(server.url, "alice", PASSWORD)))
        bob = ProtocolClient(server.url, cookie_header(login(server.url, "bob", PASSWORD)))
        try:
            alice.connect("echo")
            bob.connect("echo")
            target = wait_for(lambda: alice.named("session"), 5)[0]["session"]
            root = login(server.url, "root", PASSWORD)
            rows = root.get(server.url + "/api/v1/sessions", timeout=10).json()["sessions"]
            assert sorted(row["user"]["name"] for row in rows) == ["alice", "bob"]
            assert requests.get(server.url + "/api/v1/sessions", timeout=10).status_code == 401
            token = csrf_token(root.get(server.url + "/", timeout=10).text)
            response = root.post(f"{server.url}/api/v1/sessions/{target}/kick", timeout=10,
                                 headers={"X-CSRFToken": token})
            assert response.status_code == 202, response.text
            assert wait_for(lambda: alice.named("close"), 5)[0]["reason"] == "kicked"
            assert bob.event(1, "echo", {"text": "on"}) == {"ok": True, "result": "on"}
        finally:
            alice.close()
            bob.close()
    assert "Traceback" not in server.log()
