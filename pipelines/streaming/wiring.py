"""Build the streaming parts for the active profile from settings."""

from __future__ import annotations

import os

from feast import FeatureStore

from pipelines.streaming.bus import InProcessEventBus
from pipelines.streaming.feature_push import SessionFeaturePusher
from pipelines.streaming.processor import SessionProcessor
from pipelines.streaming.state_store import InMemorySessionStore, RedisSessionStore
from tailor.core.clients import redis_client
from tailor.core.event_stream import EventBus, redis_stream_bus
from tailor.core.settings import TailorSettings


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
            clock=settings.clock,
        )
        return SessionProcessor(state, pusher)
    return SessionProcessor(InMemorySessionStore(config.dedup_ttl_seconds, settings.clock), pusher)


def event_bus(settings: TailorSettings, store: FeatureStore) -> EventBus:
    """Where the API's accepted events go: the Redis Stream, or this process's processor."""
    if settings.profile == "redis":
        return redis_stream_bus(settings)
    return InProcessEventBus(session_processor(settings, store, f"api-{os.getpid()}"))
