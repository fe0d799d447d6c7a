"""The whole flow, as `make demo` runs it: events -> dbt -> Feast -> training -> decisions."""

from __future__ import annotations

import re

import pyarrow.parquet as pq

from tailor.cli.demo import UNKNOWN_USER, sample_decisions
from tests.support.flow import FLOW_USERS


def test_demo_runs_every_step_and_prints_decisions(flow):
    for step in ("1/8 generate", "2/8 transform", "3/8 apply", "4/8 materialize", "5/8 train"):
        assert step in flow.output, flow.output
    assert re.search(r"generated [\d,]+ events in [\d,]+ sessions of 2,500 users", flow.output)
    assert "Sample decisions" in flow.output
    assert re.search(r"test auc 0\.\d+, pr_auc 0\.\d+, logloss 0\.\d+", flow.output)


def test_demo_decisions_differ_by_behavior(flow):
    """The samples the demo prints, decided again in-process on the flow's store."""
    samples = sample_decisions(flow.settings())
    banner = [s for s in samples if s.placement == "homepage_banner"]
    assert len({s.variant for s in banner}) >= 2, banner
    known = [s for s in banner if s.user_id != UNKNOWN_USER]
    assert known and all(s.degraded == [] and s.taste != "new user" for s in known), known
    (unknown,) = [s for s in banner if s.user_id == UNKNOWN_USER]
    assert unknown.taste == "new user"
    for sample in samples:  # each one is a row of the printed table
        assert re.search(
            rf"\b{sample.user_id}\b.*{sample.placement}.*{sample.variant}", flow.output
        )


def test_every_folder_left_its_output(flow):
    data = flow.data_dir
    assert list((data / "events").glob("generated-part-*.parquet"))
    assert list((data / "ground_truth").glob("generated-part-*.parquet"))
    users = pq.read_table(data / "marts" / "user_daily_features.parquet", columns=["user_id"])
    assert 0 < len(set(users.column("user_id").to_pylist())) <= FLOW_USERS
    assert (data / "feast" / "registry.db").is_file()
    assert (data / "feast" / "online_store.db").is_file()
    assert (flow.models_dir / "latest" / "model.txt").is_file()


def test_demo_judges_its_shadow_arm_from_the_explored_week(flow):
    report = re.search(
        r"taste_first: ([\d,]+) decisions, agreement ([\d.]+)%.*\n"
        r"\s+DR conversion lift over served: ([+-][\d.]+) \[([+-][\d.]+), ([+-][\d.]+)\]"
        r".*\(support ([\d.]+)%",
        flow.output,
    )
    assert report, flow.output
    decisions, agreement = int(report[1].replace(",", "")), float(report[2])
    low, lift, high = float(report[4]), float(report[3]), float(report[5])
    assert decisions > 1000 and 0 < agreement < 100
    assert low <= lift <= high
    assert float(report[6]) == 100.0  # the demo's champion explores every variant
