"""The names a rule condition may use, with their types.

Built from the feature service definition, so a rule is type-checked at load against
exactly the features the API reads: a misspelt feature or a string compared with a
number is a load error naming the rule, not a rule that never fires in production.
Epoch-second features also appear as datetimes (`last_unpurchased_cart_epoch_s` ->
`last_unpurchased_cart_at`) so conditions can use time arithmetic such as
`now - last_unpurchased_cart_at >= t'PT10M'`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rule_engine
from feast import FeatureService
from feast.types import Bool, Float32, Float64, Int32, Int64, String

from serving.rules.config import WEEKDAYS

DataType = rule_engine.DataType
EPOCH_SUFFIX = "_epoch_s"

_FEAST_TYPES = {
    Int32: DataType.FLOAT,
    Int64: DataType.FLOAT,
    Float32: DataType.FLOAT,
    Float64: DataType.FLOAT,
    String: DataType.STRING,
    Bool: DataType.BOOLEAN,
}

REQUEST_SYMBOLS: Mapping[str, Any] = {
    "user_id": DataType.FLOAT,
    "placement": DataType.STRING,
    "device": DataType.STRING,
    "country": DataType.STRING,
    "page": DataType.STRING,
    "now": DataType.DATETIME,
    "hour": DataType.FLOAT,
    "weekday": DataType.STRING,
    "propensity": DataType.FLOAT,
    "propensity_percentile": DataType.FLOAT,
}


@dataclass(frozen=True)
class DecisionFacts:
    """What the request and the model contribute to a rule's symbols."""

    user_id: int
    placement: str
    device: str
    country: str
    page: str | None
    moment: datetime
    propensity: float | None
    propensity_percentile: float | None


@dataclass(frozen=True)
class SymbolTable:
    types: Mapping[str, Any]
    numeric_features: tuple[str, ...]
    other_features: tuple[str, ...]
    epoch_features: tuple[str, ...]

    @classmethod
    def for_service(cls, service: FeatureService) -> SymbolTable:
        types: dict[str, Any] = dict(REQUEST_SYMBOLS)
        numeric, other, epochs = [], [], []
        for projection in service.feature_view_projections:
            for field in projection.features:
                data_type = _FEAST_TYPES.get(field.dtype)
                if data_type is None or field.name in REQUEST_SYMBOLS:
                    continue
                types[field.name] = data_type
                (numeric if data_type is DataType.FLOAT else other).append(field.name)
                if field.name.endswith(EPOCH_SUFFIX):
                    epochs.append(field.name)
                    types[_as_datetime_name(field.name)] = DataType.DATETIME
        return cls(types, tuple(numeric), tuple(other), tuple(epochs))

    def context(self) -> rule_engine.Context:
        """A fresh context per rule: it records the symbols that rule references."""
        return rule_engine.Context(
            type_resolver=rule_engine.type_resolver_from_dict(dict(self.types)),
            default_timezone=UTC,
        )

    def values(self, features: Mapping[str, Any], facts: DecisionFacts) -> dict[str, Any]:
        """Every symbol bound; a missing feature is null, which rules must allow for."""
        moment = facts.moment.astimezone(UTC)
        values: dict[str, Any] = {
            name: None if (value := features.get(name)) is None else float(value)
            for name in self.numeric_features
        }
        values.update((name, features.get(name)) for name in self.other_features)
        for name in self.epoch_features:
            epoch = features.get(name)
            values[_as_datetime_name(name)] = (
                None if epoch is None else datetime.fromtimestamp(int(epoch), UTC)
            )
        values.update(
            user_id=float(facts.user_id),
            placement=facts.placement,
            device=facts.device,
            country=facts.country,
            page=facts.page,
            now=moment,
            hour=float(moment.hour),
            weekday=WEEKDAYS[moment.weekday()],
            propensity=facts.propensity,
            propensity_percentile=facts.propensity_percentile,
        )
        return values

    def describe(self) -> dict[str, str]:
        """Symbol name -> type name, for the admin API and error messages."""
        return {name: data_type.name for name, data_type in sorted(self.types.items())}


def _as_datetime_name(epoch_name: str) -> str:
    return epoch_name.removesuffix(EPOCH_SUFFIX) + "_at"
