"""A TCP proxy owned by the tests, that cuts every connection through it on demand."""

from __future__ import annotations

import random
import socket
import struct
import threading
import time

from .support import free_port


class CuttingProxy:
    """Forwards 127.0.0.1:port to an upstream port; ``cut()`` kills live connections."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._listener = socket.create_server(("127.0.0.1", self.port), backlog=128)
        self._stopping = False
        self.accepted = 0
        self.cuts = 0
        self._new_connection = threading.Event()
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._pairs.append((client, server))
                self.accepted += 1
            self._new_connection.set()
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            return  # cut
        with self._lock:
            if (src, dst) not in self._pairs and (dst, src) not in self._pairs:
                return  # cut: cut() resets both sides
        try:
            dst.shutdown(socket.SHUT_WR)  # pass an orderly close on
        except OSError:
            pass

    def cut(self) -> int:
        """Reset every live connection (RST, as a network failure would); return how many."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                try:
                    # Linger 0 makes close() send a RST; SHUT_RD first wakes the pump
                    # thread blocked in recv() (close alone would not).
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    sock.shutdown(socket.SHUT_RD)
                except OSError:
                    pass
            for sock in pair:
                sock.close()
        if pairs:
            self.cuts += 1
        return len(pairs)

    def run_chaos(self, cuts: int, done: threading.Event, min_gap: float = 0.01,
                  max_gap: float = 0.15, deadline: float = 120.0) -> None:
        """Cut at random moments until ``cuts`` cuts are made and ``done`` is set, or the deadline.

        Each cut comes a random ``min_gap``..``max_gap`` seconds after the client's
        newest connection was accepted: mostly mid-stream, sometimes mid-handshake.
        """
        rng = random.Random(20261122)
        end = time.monotonic() + deadline
        while time.monotonic() < end and not (self.cuts >= cuts and done.is_set()):
            if self.cuts >= cuts:
                done.wait(0.1)
                continue
            if not self._new_connection.wait(0.5):
                continue
            time.sleep(rng.uniform(min_gap, max_gap))  # the random point to cut at
            self._new_connection.clear()
            self.cut()

    def close(self) -> None:
        self._stopping = True
        self._listener.close()
        self.cut()
