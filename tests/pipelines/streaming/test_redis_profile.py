"""The redis profile: Redis online store and Feast's SQL registry on PostgreSQL."""

from __future__ import annotations

import duckdb
import psycopg
import pytest

from feature_repo.store import open_store, redis_connection_string


def test_materialized_features_read_back_from_redis(redis_flow):
    settings = redis_flow.settings()
    latest = duckdb.sql(
        f"""
        SELECT user_id, sessions_30d, top_category_30d, revenue_30d
        FROM read_parquet('{settings.marts_dir / "user_daily_features.parquet"}')
        QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY snapshot_date DESC) = 1
        ORDER BY user_id LIMIT 50
        """
    ).fetchall()
    online = (
        open_store(settings)
        .get_online_features(
            features=[
                "user_behavior:sessions_30d",
                "user_behavior:top_category_30d",
                "user_behavior:revenue_30d",
            ],
            entity_rows=[{"user_id": row[0]} for row in latest],
        )
        .to_dict()
    )
    assert online["sessions_30d"] == [row[1] for row in latest]
    assert online["top_category_30d"] == [row[2] for row in latest]
    assert online["revenue_30d"] == pytest.approx([row[3] for row in latest])


def test_the_registry_lives_in_postgresql(redis_flow):
    settings = redis_flow.settings()
    assert not (settings.feature_store_dir / "registry.db").exists()
    url = settings.servers.registry_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as connection:
        views = connection.execute(
            "SELECT feature_view_name FROM feature_views WHERE project_id = %s", ["tailor"]
        ).fetchall()
    assert {"user_behavior", "category_stats", "session_activity"} <= {v[0] for v in views}


def test_redis_urls_translate_to_feasts_connection_string():
    assert redis_connection_string("redis://:secret@cache:6380/2", 0.5) == (
        "cache:6380,db=2,password=secret,socket_timeout=0.5,socket_connect_timeout=0.5"
    )
    with pytest.raises(ValueError, match="redis://"):
        redis_connection_string("http://cache:6379", 1)
