"""Failed-login limits on a real server's login form."""

from __future__ import annotations

import pytest
import requests

from tests.helpers.support import CSRF
from tests.helpers.support import add_users
from tests.helpers.support import login
from tests.helpers.support import running_server
from tests.helpers.testapp import PASSWORD


@pytest.mark.real
def test_real_server_limits_the_login_form(tmp_path_factory):
    with running_server(tmp_path_factory, "limits", [], PASSWORD,
                        GATEWAY_LOGIN_LIMIT_ACCOUNT="2") as server:
        add_users(server, PASSWORD, ["alice", "bob"])
        http = requests.Session()
        for expected in (401, 401, 429):
            token = CSRF.search(http.get(server.url + "/login", timeout=10).text).group(1)
            response = http.post(server.url + "/login", allow_redirects=False, timeout=10,
                                 data={"csrf_token": token, "name": "alice",
                                       "password": PASSWORD if expected == 429 else "wrong!"})
            assert response.status_code == expected, response.text
        assert 0 < int(response.headers["Retry-After"]) <= 900
        assert "Try again in 15 minutes." in response.text
        login(server.url, "bob", PASSWORD)  # another account still logs in (asserts 302)
    assert "Traceback" not in server.log()
