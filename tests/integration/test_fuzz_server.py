"""Raw malformed Engine.IO / Socket.IO packets against a real server: it answers every one
below 500, never shows a traceback, and another session keeps working."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import websocket

from tests.helpers.support import ProtocolClient
from tests.helpers.support import ServerProcess
from tests.helpers.support import cookie_header
from tests.helpers.support import login
from tests.helpers.support import running_server

GARBAGE = [
    "", "4", "40", "40{", "41", "42", "42[", '42["event"', '42["event",{"id":1}',
    '421[]', '42["event",1,2,3]', '43[]', '44{}', '451-["event",{"_placeholder":true,"num":0}]',
    '46', "2probe", "3", "5", "6", "1", "9", "\x00", "4\x1e42[]", "\ud7ff" * 3,
    '42["event",' + "[" * 500 + "]" * 500 + "]", '42["ack",{"seq":1e999}]',
    '42["event",{"id":1,"name":"echo","data":' + '"x"' * 10 + "}]",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory, "fuzz", ["fuzzy", "calm"], "fuzz-test-password") as proc:
        yield proc


def test_raw_garbage_over_websocket_and_polling(server):
    cookie = cookie_header(login(server.url, "fuzzy", "fuzz-test-password"))
    calm_login = login(server.url, "calm", "fuzz-test-password")
    calm = ProtocolClient(server.url, cookie_header(calm_login))
    calm.connect("echo")
    ws_url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    for junk in GARBAGE + [b"\x00\xff\xfe", b"4" * 10]:
        ws = websocket.create_connection(ws_url, header=[f"Cookie: {cookie}"], timeout=5)
        try:
            ws.recv()  # the Engine.IO open packet
            ws.send('40{"app":"echo"}')
            (ws.send_binary if isinstance(junk, bytes) else ws.send)(junk)
            ws.send('42["event",{"id":1,"name":"echo","data":{"text":"after"}}]')
        except (websocket.WebSocketException, OSError):
            pass  # the server may drop a connection that sent garbage: that is fine
        finally:
            ws.close()
    base = server.url + "/socket.io/?EIO=4&transport=polling"
    for junk in GARBAGE:
        opened = requests.get(base, headers={"Cookie": cookie}, timeout=5)
        sid = opened.text[opened.text.index("{"):].split('"sid":"')[1].split('"')[0]
        for body in ('40{"app":"echo"}', junk, junk + "\x1e" + junk):
            response = requests.post(f"{base}&sid={sid}",
                                     data=body.encode("utf-8", "surrogatepass"),
                                     headers={"Cookie": cookie}, timeout=5)
            assert response.status_code in (200, 400), (body, response.status_code)
            assert "Traceback" not in response.text
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
    assert calm.event(1, "echo", {"text": "still here"}) == {"ok": True, "result": "still here"}
    calm.close()
