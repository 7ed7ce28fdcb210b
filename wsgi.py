"""Entry point: ``app`` for gunicorn; ``python wsgi.py`` runs the embedded eventlet server."""

import os

if __name__ == "__main__" and os.environ.get("GATEWAY_ASYNC_MODE", "eventlet") == "eventlet":
    # Must happen before anything else is imported (the gunicorn eventlet worker
    # patches by itself before it imports this module).
    import eventlet

    eventlet.monkey_patch()

import logging  # noqa: E402

from gateway import create_app  # noqa: E402
from gateway import socketio  # noqa: E402

app = create_app()


def main() -> None:
    import auth

    settings = app.config["GATEWAY"]
    with app.app_context():
        password = auth.create_demo_user()
    if password is not None:
        print(f"Created the user 'demo' with password: {password}", flush=True)
        print("(shown once; create more with: flask --app wsgi users create NAME)", flush=True)
    host, port = settings["HOST"], settings["PORT"]
    logging.getLogger("gateway").info("serving on http://%s:%d (%s)", host, port,
                                      settings["ASYNC_MODE"])
    print(f"Gateway listening on http://{host}:{port}/", flush=True)
    socketio.run(app, host=host, port=port, log_output=False,
                 allow_unsafe_werkzeug=settings["ASYNC_MODE"] == "threading")


if __name__ == "__main__":
    main()
