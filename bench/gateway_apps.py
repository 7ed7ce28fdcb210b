"""The gateway side of the benchmark: one session app, ``bench``, loaded with
``GATEWAY_APPS=bench.gateway_apps``. bare_app.py and node_server.mjs do the same work.

- ``echo`` ``{"text"}``: sends the command ``output`` ``{"kind": "text", "content": text}``
  and acks with the text (the demo ``echo``, without its welcome command).
- ``push`` ``{"n", "size"}``: sends ``n`` commands ``data`` ``{"i", "payload"}`` with a
  payload of ``size`` bytes, acks with ``n``.
- ``broadcast`` ``{"t"}``: sends ``tick`` ``{"t"}`` to every session, acks with how many
  it reached.
"""

from __future__ import annotations

from typing import Any

from gateway import Session
from gateway import gateway

MAX_PUSH = 100_000
MAX_PAYLOAD = 64 * 1024


@gateway.on("echo", app="bench")
def echo(session: Session, data: Any) -> str:
    text = str(data["text"])
    session.send("output", kind="text", content=text)
    return text


@gateway.on("push", app="bench")
def push(session: Session, data: Any) -> int:
    count = min(int(data["n"]), MAX_PUSH)
    payload = "x" * min(int(data["size"]), MAX_PAYLOAD)
    for i in range(count):
        session.send("data", i=i, payload=payload)
    return count


@gateway.on("broadcast", app="bench")
def broadcast(session: Session, data: Any) -> int:
    return gateway.send("tick", {"t": data["t"]}, everyone=True)
