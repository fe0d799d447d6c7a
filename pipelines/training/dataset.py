"""Point-in-time-correct training rows from Feast, and the model's feature list."""

from __future__ import annotations

import pandas as pd
from feast import FeatureService, FeatureStore
from feast.types import PrimitiveFeastType

from feature_repo.feature_views import INPUT_ONLY

# A decision that opens a session is asked for before the stream has seen that session's
# first event, and Feast joins every row dated at or before an entity's instant: a
# snapshot of the first event is dated at that very instant (see
# pipelines/streaming/backfill.py). So the join is made this much before the session
# starts, where serving stands, and the observation keeps its own timestamp.
DECISION_LEAD = pd.Timedelta(microseconds=1)

NUMERIC_TYPES = {
    PrimitiveFeastType.INT32,
    PrimitiveFeastType.INT64,
    PrimitiveFeastType.FLOAT32,
    PrimitiveFeastType.FLOAT64,
    PrimitiveFeastType.BOOL,
}


def model_features(service: FeatureService) -> list[str]:
    """Numeric features of the service, minus fields tagged as inputs to on-demand views."""
    names: list[str] = []
    for projection in service.feature_view_projections:
        for field in projection.features:
            is_input_only = all(field.tags.get(k) == v for k, v in INPUT_ONLY.items())
            if field.dtype in NUMERIC_TYPES and not is_input_only:
                names.append(field.name)
    return names


def historical_features(
    store: FeatureStore, service: FeatureService, observations: pd.DataFrame
) -> pd.DataFrame:
    """Join each observation with the feature values known just before its timestamp."""
    moments = observations["event_timestamp"] - DECISION_LEAD
    job = store.get_historical_features(
        entity_df=observations.assign(event_timestamp=moments), features=service
    )
    frame = job.to_df()
    frame["event_timestamp"] = frame["event_timestamp"] + DECISION_LEAD
    return frame.sort_values(["event_timestamp", "session_id"], ignore_index=True)
