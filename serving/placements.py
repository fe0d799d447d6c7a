"""Placements, their variants and signal weights: declarative, validated at load.

The file is versioned twice over: an explicit `version` the authors bump, and a hash
of the content, so every decision can name the exact configuration it used.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipelines.events import Device


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContextFit(_Strict):
    """Where a variant fits; an empty criterion is neutral."""

    devices: tuple[Device, ...] = ()
    hours: tuple[int, int] | None = Field(
        None, description="[start, end) in UTC hours; start > end wraps past midnight."
    )
    pages: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _hours_in_range(self) -> ContextFit:
        if self.hours is not None and not all(0 <= hour <= 24 for hour in self.hours):
            raise ValueError("hours must be two numbers between 0 and 24, e.g. [18, 23]")
        return self


class Variant(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    content: dict[str, Any]
    category: str | None = None
    tags: tuple[str, ...] = ()
    goal: Literal["conversion", "engagement"] = Field(
        "conversion",
        description="conversion variants suit likely buyers; engagement ones the rest.",
    )
    context: ContextFit = ContextFit()


class Weights(_Strict):
    behavioral: float = Field(ge=0)
    contextual: float = Field(ge=0)
    predictive: float = Field(ge=0)

    @model_validator(mode="after")
    def _not_all_zero(self) -> Weights:
        if self.behavioral + self.contextual + self.predictive == 0:
            raise ValueError("at least one weight must be positive")
        return self


class Placement(_Strict):
    description: str = ""
    weights: Weights
    fallback_variant: str
    variants: tuple[Variant, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _ids_consistent(self) -> Placement:
        ids = [variant.id for variant in self.variants]
        duplicates = sorted({vid for vid in ids if ids.count(vid) > 1})
        if duplicates:
            raise ValueError(f"variant ids must be unique; repeated: {duplicates}")
        if self.fallback_variant not in ids:
            raise ValueError(
                f"fallback_variant {self.fallback_variant!r} is not one of the variants {ids}"
            )
        return self

    def variant(self, variant_id: str) -> Variant:
        return next(variant for variant in self.variants if variant.id == variant_id)


class PlacementsFile(_Strict):
    version: str = Field(min_length=1)
    placements: dict[str, Placement] = Field(min_length=1)


class PlacementsConfigError(ValueError):
    """An invalid placements file; the message lists every problem with its field path."""


@dataclass(frozen=True)
class LoadedPlacements:
    config: PlacementsFile
    path: Path
    digest: str

    @property
    def version(self) -> str:
        return f"{self.config.version}+{self.digest}"


def load_placements(path: Path) -> LoadedPlacements:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise PlacementsConfigError(f"cannot read placements file {path}: {error}") from error
    try:
        document = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise PlacementsConfigError(f"{path} is not valid YAML: {error}") from error
    try:
        config = PlacementsFile.model_validate(document)
    except ValidationError as error:
        problems = "\n".join(
            f"  - {'.'.join(str(part) for part in issue['loc']) or '<root>'}: {issue['msg']}"
            for issue in error.errors()
        )
        raise PlacementsConfigError(f"invalid placements file {path}:\n{problems}") from error
    return LoadedPlacements(config, path, hashlib.sha256(raw).hexdigest()[:12])
