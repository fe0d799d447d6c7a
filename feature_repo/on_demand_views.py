"""Contextual signals computed from the request, in python mode (~0.2 ms a call).

Training computes the same function over the entity frame, so the model sees exactly
what serving computes. Hours are UTC.
"""

from typing import Any

from feast import Field
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, Int64

from feature_repo.data_sources import request_context
from feature_repo.feature_views import session_activity, user_behavior

# The recency outputs and the view each is measured from: where serving blanks a view's
# values (past its TTL, or a session after the decision's instant), it blanks these too,
# as training's point-in-time join leaves them empty when the view has no row.
DERIVED_FROM_VIEW: dict[str, str] = {
    "hours_since_last_event_now": user_behavior.name,
    "minutes_since_session_event_now": session_activity.name,
    "minutes_since_cart_abandoned_now": session_activity.name,
}


@on_demand_feature_view(
    sources=[user_behavior, session_activity, request_context],
    schema=[
        Field(name="is_mobile", dtype=Int64),
        Field(name="is_tablet", dtype=Int64),
        Field(name="hour_of_day", dtype=Int64),
        Field(name="is_weekend", dtype=Int64),
        Field(name="hours_since_last_event_now", dtype=Float64),
        Field(name="minutes_since_session_event_now", dtype=Float64),
        Field(name="minutes_since_cart_abandoned_now", dtype=Float64),
    ],
    mode="python",
    description="Device, time of day, weekend and recency measured at request time.",
    tags={"signal": "contextual"},
)
def request_features(inputs: dict[str, Any]) -> dict[str, Any]:
    # Feast stores this function as source text and runs it without the module's
    # globals, so its imports live inside it.
    from datetime import UTC, datetime

    def since(now: int, then: Any, unit_seconds: int) -> float | None:
        return None if then is None else max(0.0, (now - int(then)) / unit_seconds)

    out: dict[str, list[Any]] = {
        "is_mobile": [],
        "is_tablet": [],
        "hour_of_day": [],
        "is_weekend": [],
        "hours_since_last_event_now": [],
        "minutes_since_session_event_now": [],
        "minutes_since_cart_abandoned_now": [],
    }
    for device, request_ts, last_event, session_event, cart in zip(
        inputs["device"],
        inputs["request_ts_s"],
        inputs["last_event_epoch_s"],
        inputs["session_last_event_epoch_s"],
        inputs["last_unpurchased_cart_epoch_s"],
        strict=True,
    ):
        now = int(request_ts)
        moment = datetime.fromtimestamp(now, tz=UTC)
        # An unknown device is missing for the model, not a desktop.
        out["is_mobile"].append(None if device is None else int(device == "mobile"))
        out["is_tablet"].append(None if device is None else int(device == "tablet"))
        out["hour_of_day"].append(moment.hour)
        out["is_weekend"].append(int(moment.weekday() >= 5))
        out["hours_since_last_event_now"].append(since(now, last_event, 3600))
        out["minutes_since_session_event_now"].append(since(now, session_event, 60))
        out["minutes_since_cart_abandoned_now"].append(since(now, cart, 60))
    return out
