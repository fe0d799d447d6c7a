"""Throwaway Redis and PostgreSQL for tests and benchmarks on one machine.

A private `redis-server` on a free port and a scratch database keep runs from
touching anyone's data; a missing service raises with the way to get it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import psycopg
import redis

POSTGRES_ADMIN_URL = os.environ.get(
    "TAILOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


class ServiceUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PrivateRedis:
    port: int
    process: subprocess.Popen
    # Set: the server keeps an append-only file there, so one restarted on the same
    # port and directory has every write it acknowledged before it died.
    data_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL, as a crash does: no shutdown save, clients' sockets reset."""
        self.process.kill()
        self.process.wait(timeout=10)


def start_private_redis(port: int | None = None, data_dir: Path | None = None) -> PrivateRedis:
    """A fresh server on a free port; with `data_dir` (and the port of one that died),
    the same server back, its data reloaded from the append-only file there.

    `appendfsync always`: every acknowledged write is on disk before the reply, so a
    test that kills the server checks Tailor's recovery, not Redis's fsync window."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceUnavailable(
            "redis-server is not on PATH: a private one is started for this run. Install "
            "Redis (Debian/Ubuntu: `apt-get install redis-server`, macOS: `brew install redis`)."
        )
    port = port or free_port()
    persistence = ["--appendonly", "no"]
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        persistence = ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(data_dir)]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", *persistence],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    server = PrivateRedis(port, process, data_dir)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if server.client().ping():
                return server
        except redis.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise ServiceUnavailable(f"redis-server did not answer on port {port} within 10 s")


@contextmanager
def scratch_database() -> Iterator[str]:
    """A new empty PostgreSQL database, dropped afterwards; yields its SQLAlchemy URL."""
    name = f"tailor_scratch_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        raise ServiceUnavailable(
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} ({error}). Start it "
            "(Debian: `pg_ctlcluster 15 main start`; Docker: `docker run -p 5432:5432 "
            "-e POSTGRES_HOST_AUTH_METHOD=trust postgres`) or point TAILOR_TEST_POSTGRES_URL "
            "at a server where this user may CREATE DATABASE."
        ) from error
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass(frozen=True)
class ApiProcess:
    url: str
    process: subprocess.Popen
    log: IO[bytes]  # the server's output; a file, since an unread pipe would stall it

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def start_api(env: dict[str, str], startup_seconds: float = 90) -> ApiProcess:
    """`tailor serve` on a free port, returned once /health answers."""
    port = free_port()
    tailor = Path(sys.executable).parent / "tailor"
    log = tempfile.TemporaryFile()  # noqa: SIM115 - owned by ApiProcess, closed in stop()
    process = subprocess.Popen(
        [str(tailor), "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    server = ApiProcess(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + startup_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceUnavailable(f"tailor serve exited early:\n{server.output()}")
        try:
            # 503 is an answer too: degraded (no model, no store) is a state tests start in.
            if httpx.get(f"{server.url}/health", timeout=1).status_code in (200, 503):
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise ServiceUnavailable(
        f"tailor serve did not answer /health within {startup_seconds:.0f} s:\n{server.output()}"
    )
