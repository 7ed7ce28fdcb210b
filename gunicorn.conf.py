"""gunicorn settings for the gateway, read from the working directory by default.

``gunicorn -k eventlet -w 1 -b 127.0.0.1:5000 wsgi:app`` (run from this folder) picks
them up; the command line overrides them. The same serving defaults as ``python wsgi.py``:

- worker_connections: every WebSocket holds one of the eventlet worker's green threads
  for its lifetime; gunicorn's default (1,000) makes the next client hang. Sized past
  ``GATEWAY_MAX_SESSIONS`` so a full worker refuses with ``too_many_sessions`` instead.
- backlog: ``GATEWAY_BACKLOG`` (default 2048, gunicorn's own default), capped by the
  kernel's ``net.core.somaxconn``.
- TCP_NODELAY: gunicorn sets it on its TCP listener, and accepted sockets inherit it.
- WebSocket compression: off unless ``GATEWAY_WEBSOCKET_COMPRESSION`` (see EngineGuard).

Only the environment is read here: importing the gateway in the master, before the
worker monkey-patches eventlet, would import its modules unpatched. So the three
defaults below repeat those of ``gateway/settings.py``; tests/test_config.py checks
that this file sizes the worker as ``serving_options`` does for the embedded server.
"""

import os

worker_connections = (int(os.environ.get("GATEWAY_MAX_SESSIONS") or 10_000)
                      + 2 * int(os.environ.get("GATEWAY_MAX_ANONYMOUS") or 1024) + 1024)
backlog = int(os.environ.get("GATEWAY_BACKLOG") or 2048)


def post_worker_init(worker):
    """Start the gateway's bus and periodic tasks as soon as the worker is up (otherwise
    the first request would, and /readyz would say "not ready" until then)."""
    if "gateway" in getattr(worker.wsgi, "extensions", {}):
        from gateway import hub_for

        hub_for(worker.wsgi).start()
        from wsgi import settle_heap  # the app's module, imported by the worker already

        settle_heap()  # start-up's objects out of the collector's reach (see wsgi.py)
