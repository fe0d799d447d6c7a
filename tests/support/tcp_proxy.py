"""A TCP relay a test can cut: the network path between a service and a server it
uses, broken and mended while both ends keep running."""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.support.services import free_port

ACCEPT_POLL_SECONDS = 0.05  # a blocked accept() is not woken by close() on every OS


class TcpProxy:
    """Relays 127.0.0.1:`port` to `target`. `cut` stops listening and breaks every
    relayed connection, so connects are refused and calls in flight fail, as clients
    see a crashed or restarting host; `mend` listens on the same port again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.port = free_port()
        self._target = target
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._relayed: set[socket.socket] = set()
        self._flowing = threading.Event()
        self._flowing.set()
        self.mend()

    def freeze(self) -> None:
        """Connections stay open but nothing passes, as with a frozen server or a path
        that swallows packets: calls in flight hang instead of failing."""
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def mend(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR on POSIX
        listener.settimeout(ACCEPT_POLL_SECONDS)
        with self._lock:
            assert self._listener is None, "the proxy is already listening"
            self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def cut(self) -> None:
        """Refusing from the moment it returns: the listening socket is shut and its
        acceptor gone (one still polling it would keep it listening until it wakes)."""
        with self._lock:
            listener, self._listener = self._listener, None
            relayed, self._relayed = self._relayed, set()
        if listener is not None and self._acceptor is not None:
            _break(listener)
            self._acceptor.join()
            listener.close()
        for sock in relayed:
            _break(sock)

    def _listening(self, listener: socket.socket) -> bool:
        with self._lock:
            return self._listener is listener

    def _accept(self, listener: socket.socket) -> None:
        while self._listening(listener):
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by `cut`
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()  # the target itself is down: so is the relay
                continue
            for sock in (client, upstream):
                sock.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut while connecting
                    client.close()
                    upstream.close()
                    return
                self._relayed |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._relayed -= {source, sink}
            for sock in (source, sink):
                _break(sock)
                sock.close()


def _break(sock: socket.socket) -> None:
    """Shut both directions: this wakes a thread blocked in recv(), which close() does not."""
    with contextlib.suppress(OSError):  # already closed or reset
        sock.shutdown(socket.SHUT_RDWR)
