"""The benchmark of the gateway against bare Flask-SocketIO and Node socket.io (see README.md)."""
