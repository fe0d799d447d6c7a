"""Delete one user's rows from Feast's online store (SQLite or Redis).

Feast 0.67 has no call that deletes an entity's rows (only whole tables and views), so
this deletes them the way Feast's own stores lay them out, with Feast's own helpers
for the entity key, the table names and the connections: a SQLite table per feature
view keyed by the serialized entity key, or one Redis hash per entity key and project
holding every view's fields. Views are taken from the registry, which knows every
view that has written rows, and only views keyed by the user alone can be erased by
key; a view keyed by the user and something else stops the erasure instead of leaving
rows behind unnoticed.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing

import redis
from feast import FeatureStore, FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import _redis_key, compute_table_id
from feast.infra.online_stores.redis import RedisOnlineStore
from feast.infra.online_stores.sqlite import SqliteOnlineStore, _quote_id
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.type_map import python_values_to_proto_values
from sqlalchemy.exc import SQLAlchemyError

from feature_repo.entities import user

SQLITE_BUSY_SECONDS = 5.0  # a materialization may hold the write lock this long


class OnlineStoreUnavailable(RuntimeError):
    """The online store (or its registry) failed; nothing is claimed erased there."""


def _user_views(store: FeatureStore) -> list[FeatureView]:
    views = store.list_feature_views(allow_cache=True)
    shared = [view.name for view in views if user.name in view.entities and len(view.entities) > 1]
    if shared:
        raise OnlineStoreUnavailable(
            f"feature views {shared} are keyed by the user and another entity; erasure "
            "by user key cannot reach their rows"
        )
    return [view for view in views if view.entities == [user.name]]


def _entity_key(user_id: int) -> EntityKey:
    return EntityKey(
        join_keys=[user.join_key],
        entity_values=python_values_to_proto_values([user_id], user.value_type),
    )


def _erase_sqlite(store: FeatureStore, views: list[FeatureView], key: EntityKey) -> int:
    config = store.config
    serialized = serialize_entity_key(
        key, entity_key_serialization_version=config.entity_key_serialization_version
    )
    versioned = config.registry.enable_online_feature_view_versioning
    path = SqliteOnlineStore._get_db_path(config)
    erased = 0
    with closing(sqlite3.connect(path, timeout=SQLITE_BUSY_SECONDS)) as connection, connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        for view in views:
            table = compute_table_id(config.project, view, versioned)
            if table not in tables:  # applied, never written
                continue
            deleted = connection.execute(
                f"DELETE FROM {_quote_id(table)} WHERE entity_key = ?", (serialized,)
            ).rowcount
            erased += deleted > 0
    return erased


def _erase_redis(store: FeatureStore, online: RedisOnlineStore, key: EntityKey) -> int:
    """One hash holds every view of the entity: its `_ts:<view>` fields say which."""
    config = store.config
    client = online._get_client(config.online_store)
    redis_key = _redis_key(config.project, key, config.entity_key_serialization_version)
    with client.pipeline(transaction=True) as pipe:
        pipe.hkeys(redis_key)
        pipe.delete(redis_key)
        fields, _ = pipe.execute()
    return sum(field.startswith(b"_ts:") for field in fields)


def erase_online_features(store: FeatureStore, user_id: int) -> int:
    """How many feature views held the user's row; raises `OnlineStoreUnavailable`."""
    online = store.provider.online_store
    key = _entity_key(user_id)
    try:
        views = _user_views(store)  # the registry: a file, or the SQL registry's database
        if isinstance(online, SqliteOnlineStore):
            return _erase_sqlite(store, views, key)
        if isinstance(online, RedisOnlineStore):
            return _erase_redis(store, online, key)
    except (sqlite3.Error, redis.RedisError, SQLAlchemyError, OSError) as error:
        raise OnlineStoreUnavailable(f"online store: {error}") from error
    raise OnlineStoreUnavailable(
        f"erasure knows the sqlite and redis online stores, not {type(online).__name__}"
    )
