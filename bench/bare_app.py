"""The bare baseline: Flask-SocketIO on eventlet, written the way a user would.

The stack's defaults throughout (``socketio.run``, its eventlet pool and backlog,
permessage-deflate when offered, Flask-SocketIO's task per event), a Flask-Login cookie
checked on connect, and the gateway's protocol v1 messages done by hand: a ``session``
message on connect, ``commands`` lists with a per-connection seq (one emit per command),
acks by the handler's return value, cumulative ``ack`` messages recorded.

    BENCH_PORT=5001 BENCH_SECRET=... BENCH_USER=bench BENCH_PASSWORD=... python bench/bare_app.py

``BENCH_BARE_MAX_SIZE`` (unset: eventlet's default of 1,024) raises the server's pool,
which is what a user must do before more than 1,024 clients can connect at all; the
driver sets it only for scenarios above 1,000 sessions that are not about connecting.
"""

import eventlet

eventlet.monkey_patch()

import os  # noqa: E402
import secrets  # noqa: E402

from flask import Flask  # noqa: E402
from flask import redirect  # noqa: E402
from flask import request  # noqa: E402
from flask_login import LoginManager  # noqa: E402
from flask_login import UserMixin  # noqa: E402
from flask_login import current_user  # noqa: E402
from flask_login import login_user  # noqa: E402
from flask_socketio import ConnectionRefusedError  # noqa: E402
from flask_socketio import SocketIO  # noqa: E402
from flask_socketio import emit  # noqa: E402

app = Flask(__name__)
app.config["SECRET_KEY"] = os.environ["BENCH_SECRET"]
login_manager = LoginManager(app)
socketio = SocketIO(app)


class User(UserMixin):
    def __init__(self, name: str) -> None:
        self.id = name
        self.name = name


USERS = {os.environ.get("BENCH_USER", "bench"): os.environ.get("BENCH_PASSWORD", "")}
seqs: dict[str, int] = {}  # sid -> last seq sent
acked: dict[str, int] = {}  # sid -> last seq acknowledged


@login_manager.user_loader
def load_user(user_id: str):
    return User(user_id) if user_id in USERS else None


@app.get("/healthz")
def healthz():
    return "ok"


@app.post("/login")
def login():
    name = request.form.get("name", "")
    password = request.form.get("password", "")
    if name not in USERS or not secrets.compare_digest(USERS[name], password):
        return "no", 401
    login_user(User(name))
    return redirect("/")


def send_command(sid: str, name: str, args: dict) -> None:
    seqs[sid] += 1
    socketio.emit("commands", [{"seq": seqs[sid], "name": name, "args": args}], to=sid)


@socketio.on("connect")
def connect(auth=None):
    if not current_user.is_authenticated:
        raise ConnectionRefusedError("unauthorized", {"code": "unauthorized",
                                                      "message": "Log in first."})
    seqs[request.sid] = 0
    acked[request.sid] = 0
    emit("session", {"session": secrets.token_urlsafe(12), "token": secrets.token_urlsafe(24),
                     "app": (auth or {}).get("app"),
                     "user": {"id": current_user.id, "name": current_user.name},
                     "resumed": False, "reason": None, "last_seq": 0})


@socketio.on("disconnect")
def disconnect(reason=None):
    seqs.pop(request.sid, None)
    acked.pop(request.sid, None)


@socketio.on("ack")
def ack(message):
    acked[request.sid] = max(acked.get(request.sid, 0), int(message["seq"]))


@socketio.on("event")
def event(message):
    name, data = message["name"], message["data"]
    if name == "echo":
        text = str(data["text"])
        send_command(request.sid, "output", {"kind": "text", "content": text})
        return {"ok": True, "result": text}
    if name == "push":
        count = min(int(data["n"]), 100_000)
        payload = "x" * min(int(data["size"]), 64 * 1024)
        for i in range(count):
            send_command(request.sid, "data", {"i": i, "payload": payload})
        return {"ok": True, "result": count}
    if name == "broadcast":
        reached = 0
        for sid in list(seqs):
            if sid in seqs:
                send_command(sid, "tick", {"t": data["t"]})
                reached += 1
        return {"ok": True, "result": reached}
    return {"ok": False, "error": {"code": "unknown_event", "message": name}}


if __name__ == "__main__":
    options = {}
    if os.environ.get("BENCH_BARE_MAX_SIZE"):
        options["max_size"] = int(os.environ["BENCH_BARE_MAX_SIZE"])
    socketio.run(app, host="127.0.0.1", port=int(os.environ["BENCH_PORT"]), **options)
