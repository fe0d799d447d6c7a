"""The names a rule condition may use, with their types.

Built from the feature service definition, so a rule is type-checked at load against
exactly the features the API reads: a misspelt feature or a string compared with a
number is a load error naming the rule, not a rule that never fires in production.
Feast's types map to CEL's (Int64 -> int, Float64 -> double, String -> string), and
epoch-second features also appear as timestamps (`last_unpurchased_cart_epoch_s` ->
`last_unpurchased_cart_at`) so conditions can use time arithmetic such as
`now - last_unpurchased_cart_at >= duration('10m')`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import cel
from feast import FeatureService
from feast.types import Bool, Float32, Float64, Int32, Int64, String

from serving.decision.rules.config import WEEKDAYS

EPOCH_SUFFIX = "_epoch_s"


class SymbolType(Enum):
    """A CEL type, with the sample value load-time checks evaluate conditions on."""

    INT = ("int", 1)
    DOUBLE = ("double", 1.0)
    STRING = ("string", "x")
    BOOL = ("bool", True)
    TIMESTAMP = ("timestamp", datetime(2026, 1, 1, tzinfo=UTC))

    @property
    def cel_name(self) -> str:
        return self.value[0]

    @property
    def sample(self) -> Any:
        return self.value[1]


_FEAST_TYPES = {
    Int32: SymbolType.INT,
    Int64: SymbolType.INT,
    Float32: SymbolType.DOUBLE,
    Float64: SymbolType.DOUBLE,
    String: SymbolType.STRING,
    Bool: SymbolType.BOOL,
}

REQUEST_SYMBOLS: Mapping[str, SymbolType] = {
    "user_id": SymbolType.INT,
    "placement": SymbolType.STRING,
    "device": SymbolType.STRING,
    "country": SymbolType.STRING,
    "page": SymbolType.STRING,
    "now": SymbolType.TIMESTAMP,
    "hour": SymbolType.INT,
    "weekday": SymbolType.STRING,
    "propensity": SymbolType.DOUBLE,
    "propensity_percentile": SymbolType.DOUBLE,
}


@dataclass(frozen=True)
class DecisionFacts:
    """What the request and the model contribute to a rule's symbols."""

    user_id: int
    placement: str
    device: str | None
    country: str | None
    page: str | None
    moment: datetime
    propensity: float | None
    propensity_percentile: float | None


_CONVERT = {SymbolType.INT: int, SymbolType.DOUBLE: float}


@dataclass(frozen=True)
class SymbolTable:
    types: Mapping[str, SymbolType]
    features: tuple[tuple[str, SymbolType], ...]
    epoch_features: tuple[str, ...]

    @classmethod
    def for_service(cls, service: FeatureService) -> SymbolTable:
        types: dict[str, SymbolType] = dict(REQUEST_SYMBOLS)
        features, epochs = [], []
        for projection in service.feature_view_projections:
            for field in projection.features:
                symbol_type = _FEAST_TYPES.get(field.dtype)
                if symbol_type is None or field.name in REQUEST_SYMBOLS:
                    continue
                types[field.name] = symbol_type
                features.append((field.name, symbol_type))
                if field.name.endswith(EPOCH_SUFFIX):
                    epochs.append(field.name)
                    types[_as_datetime_name(field.name)] = SymbolType.TIMESTAMP
        return cls(types, tuple(features), tuple(epochs))

    def sample_context(self) -> cel.Context:
        """Every symbol bound to a value of its type: a condition that fails on these
        has a type error, caught at load instead of on live traffic."""
        return cel.Context({name: symbol.sample for name, symbol in self.types.items()})

    def values(self, features: Mapping[str, Any], facts: DecisionFacts) -> dict[str, Any]:
        """Every symbol bound; a missing feature is null, which rules must allow for."""
        moment = facts.moment.astimezone(UTC)
        values: dict[str, Any] = {}
        for name, symbol_type in self.features:
            value = features.get(name)
            convert = _CONVERT.get(symbol_type)
            values[name] = value if value is None or convert is None else convert(value)
        for name in self.epoch_features:
            epoch = features.get(name)
            values[_as_datetime_name(name)] = (
                None if epoch is None else datetime.fromtimestamp(int(epoch), UTC)
            )
        values.update(
            user_id=facts.user_id,
            placement=facts.placement,
            device=facts.device,
            country=facts.country,
            page=facts.page,
            now=moment,
            hour=moment.hour,
            weekday=WEEKDAYS[moment.weekday()],
            propensity=facts.propensity,
            propensity_percentile=facts.propensity_percentile,
        )
        return values

    @staticmethod
    def context(values: Mapping[str, Any], names: Iterable[str]) -> cel.Context:
        """The CEL bindings a placement's rules read: converting only those keeps the
        per-decision cost to tens of microseconds."""
        return cel.Context({name: values[name] for name in names})

    def describe(self) -> dict[str, str]:
        """Symbol name -> CEL type, for the admin API and error messages."""
        return {name: symbol.cel_name for name, symbol in sorted(self.types.items())}


def _as_datetime_name(epoch_name: str) -> str:
    return epoch_name.removesuffix(EPOCH_SUFFIX) + "_at"
