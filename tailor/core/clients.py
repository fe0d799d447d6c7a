"""Clients for the servers of the redis profile, built the same way everywhere."""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from tailor.core.settings import TailorSettings


def redis_client(settings: TailorSettings, retries: int = 2) -> redis.Redis:
    """A client that gives up within about a timeout: callers fall back or retry later.
    Each retry waits another timeout; a caller bound by an answer's deadline (the event
    bus) asks for none."""
    timeout = settings.servers.redis_timeout_seconds
    return redis.Redis.from_url(
        settings.servers.redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.01), retries=retries),
    )
