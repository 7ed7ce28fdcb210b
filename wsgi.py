"""Entry point: ``app`` for gunicorn; ``python wsgi.py`` runs the embedded eventlet server.

Both drain on SIGTERM: new sessions are refused, every client is told ``close`` with
``server_shutdown``, apps run their ``on_close``, and the process exits once the clients
have their close (at most ``GATEWAY_DRAIN_SECONDS``).
"""

import os

if __name__ == "__main__" and os.environ.get("GATEWAY_ASYNC_MODE", "eventlet") == "eventlet":
    # Must happen before anything else is imported (the gunicorn eventlet worker
    # patches by itself before it imports this module).
    import eventlet

    eventlet.monkey_patch()

import gc
import logging
import signal
import time
from typing import Any

from gateway import create_app
from gateway import hub_for
from gateway import socketio

app = create_app()
logger = logging.getLogger("gateway")


def drain(previous: Any, signum: int, frame: Any) -> None:
    """Close every session, wait (bounded) for the closes to go out, then stop."""
    settings = app.config["GATEWAY"]
    logger.info("SIGTERM: draining (at most %.0f s)", settings.DRAIN_SECONDS)
    with app.app_context():  # on_close callbacks may use the app
        hub_for(app).shutdown()
    deadline = time.monotonic() + settings.DRAIN_SECONDS
    engine = socketio.server.eio
    while engine.sockets and time.monotonic() < deadline:
        socketio.sleep(0.05)  # the writers send each close, then the sockets go away
    logger.info("drained; %d connection(s) left", len(engine.sockets))
    if callable(previous):
        previous(signum, frame)  # gunicorn's own handler: the worker stops its way
    else:
        logging.shutdown()
        os._exit(0)


def install_drain() -> None:
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        # Signal context: do the work in a task of the configured async mode.
        socketio.start_background_task(drain, previous, signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def install_drain_eventlet() -> None:
    """SIGTERM for the embedded eventlet server.

    Python runs a signal handler while eventlet's hub sits in epoll, which then goes
    back to waiting: a task the handler spawns would only start on the next network
    event. So the signal also writes to a socket a green thread waits on.
    """
    import socket

    reader, writer = socket.socketpair()  # green sockets: monkey-patched
    writer.setblocking(False)
    signal.set_wakeup_fd(writer.fileno())
    received = []

    def on_sigterm(signum: int, frame: Any) -> None:
        received.append(signum)  # the watcher drains; a second SIGTERM exits at once
        if len(received) > 1:
            os._exit(1)

    signal.signal(signal.SIGTERM, on_sigterm)

    def watch(wakeup: socket.socket = writer) -> None:  # holds the fd: it must stay open
        while True:
            signum = reader.recv(1)
            if not signum:
                return  # the wakeup socket is closed: nothing left to watch
            if signum == bytes([signal.SIGTERM]):
                break
        drain(None, signal.SIGTERM, None)

    socketio.start_background_task(watch)


if __name__ != "__main__" and callable(signal.getsignal(signal.SIGTERM)):
    install_drain()  # under gunicorn, whose worker has installed its SIGTERM handler


def settle_heap() -> None:
    """Move everything start-up made (Flask, SQLAlchemy, the runtime, the app: some
    hundreds of thousands of objects, alive for good) out of the garbage collector's
    reach. A full collection walks every tracked object while the worker's only thread
    waits: under a ramp of connections that was 90-170 ms, for every connection of the
    worker; frozen, it walks only what was made since. (Python's documentation gives
    ``gc.freeze()`` for this.)"""
    gc.collect()
    gc.freeze()


def main() -> None:
    import auth

    settings = app.config["GATEWAY"]
    with app.app_context():
        password = auth.create_demo_user()
    if password is not None:
        print(f"Created the user 'demo' with password: {password}", flush=True)
        print("(shown once; create more with: flask --app wsgi users create NAME)", flush=True)
    host, port = settings.HOST, settings.PORT
    if settings.ASYNC_MODE == "eventlet":
        install_drain_eventlet()
    else:
        install_drain()
    hub_for(app).start()  # bus and periodic tasks, before the first request
    settle_heap()
    logger.info("serving on http://%s:%d (%s)", host, port, settings.ASYNC_MODE)
    print(f"Gateway listening on http://{host}:{port}/", flush=True)
    if settings.ASYNC_MODE == "eventlet":
        from gateway.transport.eventlet import HeaderWaits
        from gateway.transport.eventlet import serve
        from gateway.web.extension import runtime_for

        waits = HeaderWaits(settings.MAX_ANONYMOUS, settings.MAX_ANONYMOUS_PER_ADDRESS)
        runtime_for(app).header_waits = waits  # for /metrics
        serve(app, host, port, waits)
    else:
        socketio.run(app, host=host, port=port, log_output=False, allow_unsafe_werkzeug=True)


if __name__ == "__main__":
    main()
