"""Everything the tests share that is not a fixture, in one package:

* ``support``: deadline waits, free ports, real server processes (``ServerProcess``,
  ``running_server``), logging in over HTTP, ``ProtocolClient``.
* ``testapp``: the users of the ``app`` fixture, logging in with Flask's test client, and
  what a Socket.IO test client received (``Messages``).
* ``fakes``: in-memory transport, runtimes and clock for the IO-free core.
* ``browser``: Debian's Chromium for the end-to-end tests.
* ``cluster``: real Redis, nginx and several gunicorn workers.
* ``chaos``: a TCP proxy that cuts connections on demand.
* ``fault_app``: the session apps of the fault tests, loaded by real servers through
  ``GATEWAY_APPS=tests.helpers.fault_app``.
* ``hostile``: the hostile suite's attacks and the harness that runs them.
* ``node/``: Node.js clients (the official socket.io-client) that integration tests run.

Imported by server processes (``fault_app``): keep this file free of imports.
"""
