"""Build the streaming parts for the active profile from settings."""

from __future__ import annotations

import os

import redis
from feast import FeatureStore
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from pipelines.settings import TailorSettings
from pipelines.streaming.bus import EventBus, InProcessEventBus, RedisStreamBus
from pipelines.streaming.feature_push import SessionFeaturePusher
from pipelines.streaming.processor import SessionProcessor
from pipelines.streaming.state_store import InMemorySessionStore, RedisSessionStore


def redis_client(settings: TailorSettings) -> redis.Redis:
    """A client that gives up within about a timeout: callers fall back or retry later."""
    timeout = settings.servers.redis_timeout_seconds
    return redis.Redis.from_url(
        settings.servers.redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.01), retries=2),
    )


def session_processor(
    settings: TailorSettings, store: FeatureStore, writer: str
) -> SessionProcessor:
    """`writer` names this process in the offline log's part files (unique per worker)."""
    config = settings.stream
    pusher = SessionFeaturePusher(
        store, settings.session_log_dir, writer, config.offline_flush_seconds
    )
    if settings.profile == "redis":
        state = RedisSessionStore(
            redis_client(settings),
            prefix=settings.project,
            state_ttl_seconds=config.state_ttl_seconds,
            dedup_ttl_seconds=config.dedup_ttl_seconds,
        )
        return SessionProcessor(state, pusher)
    return SessionProcessor(InMemorySessionStore(config.dedup_ttl_seconds), pusher)


def event_bus(settings: TailorSettings, store: FeatureStore) -> EventBus:
    if settings.profile == "redis":
        return RedisStreamBus(redis_client(settings), settings.stream.stream_key)
    return InProcessEventBus(session_processor(settings, store, f"api-{os.getpid()}"))
