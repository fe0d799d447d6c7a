"""How a placement mixes its three signals; experiments override them per arm."""

from __future__ import annotations

from pydantic import Field, model_validator

from serving.decision.rules.config import Strict


class Weights(Strict):
    behavioral: float = Field(ge=0)
    contextual: float = Field(ge=0)
    predictive: float = Field(ge=0)

    @model_validator(mode="after")
    def _not_all_zero(self) -> Weights:
        if self.behavioral + self.contextual + self.predictive == 0:
            raise ValueError("at least one weight must be positive")
        return self
