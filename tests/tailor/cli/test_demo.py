"""The whole flow, as `make demo` runs it: events -> dbt -> Feast -> training -> decisions."""

from __future__ import annotations

import re

import pyarrow.parquet as pq

from tests.support.flow import FLOW_USERS


def test_demo_runs_every_step_and_prints_decisions(flow):
    for step in ("1/6 generate", "2/6 transform", "3/6 apply", "4/6 materialize", "5/6 train"):
        assert step in flow.output, flow.output
    assert re.search(r"generated [\d,]+ events in [\d,]+ sessions of 2,500 users", flow.output)
    assert "Sample decisions" in flow.output
    assert re.search(r"test auc 0\.\d+, pr_auc 0\.\d+, logloss 0\.\d+", flow.output)


def test_demo_decisions_differ_by_behavior(flow):
    table = flow.output.split("Sample decisions", 1)[1]
    banner_variants = {
        line.split("│")[6].strip() for line in table.splitlines() if "homepage_banner" in line
    }
    assert len(banner_variants) >= 2, table


def test_every_folder_left_its_output(flow):
    data = flow.data_dir
    assert list((data / "events").glob("generated-part-*.parquet"))
    assert list((data / "ground_truth").glob("generated-part-*.parquet"))
    users = pq.read_table(data / "marts" / "user_daily_features.parquet", columns=["user_id"])
    assert 0 < len(set(users.column("user_id").to_pylist())) <= FLOW_USERS
    assert (data / "feast" / "registry.db").is_file()
    assert (data / "feast" / "online_store.db").is_file()
    assert (flow.models_dir / "latest" / "model.txt").is_file()
