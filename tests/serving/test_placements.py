"""The placements file: the shipped one loads, bad ones are refused with the field named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.settings import DEFAULT_PLACEMENTS_FILE
from serving.placements import PlacementsConfigError, load_placements


def test_the_shipped_file_has_the_documented_placements():
    loaded = load_placements(DEFAULT_PLACEMENTS_FILE)
    assert {"homepage_banner", "product_page_recs"} <= set(loaded.config.placements)
    assert loaded.version.startswith(loaded.config.version + "+")


def _write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "placements.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _valid() -> dict:
    return yaml.safe_load(DEFAULT_PLACEMENTS_FILE.read_text())


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["placements"]["homepage_banner"]["weights"].update(behavioral=-1),
            "placements.homepage_banner.weights.behavioral",
        ),
        (
            lambda d: d["placements"]["homepage_banner"].update(fallback_variant="nope"),
            "fallback_variant 'nope' is not one of the variants",
        ),
        (
            lambda d: d["placements"]["product_page_recs"]["variants"][0].update(colour="red"),
            "placements.product_page_recs.variants.0.colour",
        ),
        (
            lambda d: d["placements"]["homepage_banner"]["variants"][1]["context"].update(
                devices=["watch"]
            ),
            "placements.homepage_banner.variants.1.context.devices.0",
        ),
        (lambda d: d.pop("version"), "version: Field required"),
    ],
)
def test_invalid_files_name_the_field(tmp_path, mutate, expected):
    document = _valid()
    mutate(document)
    with pytest.raises(PlacementsConfigError, match=expected.replace("(", r"\(")):
        load_placements(_write(tmp_path, document))


def test_a_file_that_is_not_yaml_is_refused(tmp_path):
    path = tmp_path / "placements.yaml"
    path.write_text("placements: [unclosed")
    with pytest.raises(PlacementsConfigError, match="not valid YAML"):
        load_placements(path)
