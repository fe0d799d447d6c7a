"""Sample decisions for the end of `tailor demo`: users whose behavior differs."""

from __future__ import annotations

import duckdb
from rich.table import Table

from pipelines.settings import TailorSettings
from serving.app import build_engine
from serving.schemas import PersonalizeRequest

SAMPLE_SQL = """
WITH latest AS (
    SELECT * FROM read_parquet($path)
    WHERE snapshot_date = (SELECT max(snapshot_date) FROM read_parquet($path))
      AND top_category_share_30d >= 0.5
),
by_taste AS (
    SELECT user_id FROM latest
    QUALIFY row_number() OVER (
        PARTITION BY top_category_30d ORDER BY sessions_30d DESC, user_id) = 1
    ORDER BY user_id LIMIT $per_taste
),
open_cart AS (
    SELECT user_id FROM latest WHERE has_open_cart = 1
    ORDER BY sessions_30d DESC, user_id LIMIT 1
)
SELECT user_id FROM by_taste UNION SELECT user_id FROM open_cart ORDER BY user_id
"""


def sample_users(settings: TailorSettings, per_taste: int = 5) -> list[int]:
    path = str(settings.marts_dir / "user_daily_features.parquet")
    with duckdb.connect() as connection:
        rows = connection.execute(SAMPLE_SQL, {"path": path, "per_taste": per_taste}).fetchall()
    return [int(row[0]) for row in rows]


def sample_decisions(settings: TailorSettings) -> Table:
    engine = build_engine(settings)
    users = sample_users(settings)
    unknown_user = 10**12  # no such user: shows the cold-start decision
    table = Table(
        "user",
        "placement",
        "device",
        "top category (share)",
        "propensity pct",
        "variant",
        "score",
        "winning rule",
        "degraded",
        title="Sample decisions",
    )
    snapshot = engine.config.current
    try:
        for index, user_id in enumerate([*users, unknown_user]):
            device = ("mobile", "desktop", "tablet")[index % 3]
            for placement in snapshot.placements.config.placements:
                request = PersonalizeRequest.model_validate(
                    {
                        "user_id": user_id,
                        "placement": placement,
                        "context": {"device": device, "country": "US", "page": "product"},
                    }
                )
                decision = engine.decide(request, snapshot)
                signals = decision.signals
                taste = (
                    f"{signals['top_category_30d']} ({signals['top_category_share_30d']:.2f})"
                    if signals["top_category_30d"]
                    else "new user"
                )
                percentile = decision.propensity_percentile
                table.add_row(
                    str(user_id),
                    placement,
                    device,
                    taste,
                    "-" if percentile is None else f"{percentile:.2f}",
                    decision.variant.id,
                    f"{decision.score:.3f}",
                    decision.winning_rule or "-",
                    ", ".join(decision.degraded) or "-",
                )
    finally:
        engine.close()
    return table
