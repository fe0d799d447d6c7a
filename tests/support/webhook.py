"""A real webhook endpoint for trigger delivery tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.services import free_port


@dataclass
class Receiver:
    """A webhook endpoint whose answer to the n-th request (from 1) is `status(n)`."""

    status: Callable[[int], int]
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    """A real HTTP server on a free port recording every POST and its Idempotency-Key."""
    endpoint = Receiver(status=lambda _: 200)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with endpoint.lock:
                endpoint.requests.append({"key": self.headers["Idempotency-Key"], "body": body})
                status = endpoint.status(len(endpoint.requests))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    endpoint.url = f"http://127.0.0.1:{server.server_port}/hook"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
