"""Build the feature marts by running the dbt project in `transformations/` in-process.

dbt runs through its documented programmatic API (`dbtRunner`) rather than a
subprocess so that failures come back as structured results naming the failed nodes.
All of dbt's by-products (compiled SQL, partial-parse cache, logs) go under the data
dir so the repository stays clean and several data dirs can be built side by side.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow.parquet as pq
from dbt.artifacts.schemas.results import NodeStatus
from dbt.artifacts.schemas.run import RunExecutionResult, RunResult
from dbt.cli.main import dbtRunner, dbtRunnerResult
from feast.types import Float64, Int64

from feature_repo.feature_views import BEHAVIOR_WINDOWS_DAYS, WINDOWED_MEASURES
from tailor.core.settings import TailorSettings
from transformations import PROJECT_DIR as DBT_PROJECT_DIR

MARTS: Final = ("user_daily_features", "category_daily_features")
_SQL_TYPES: Final = {Int64: "bigint", Float64: "double"}
COMMANDS: Final = frozenset({"build", "run", "test"})
_FAILED_STATUSES: Final = frozenset({NodeStatus.Error, NodeStatus.Fail, NodeStatus.RuntimeErr})
_TEST_TYPES: Final = frozenset({"test", "unit_test"})


class TransformError(RuntimeError):
    """dbt could not build or validate the marts; the message names what failed."""


class MissingEventsError(TransformError):
    """There are no canonical events to transform yet."""


@dataclass(frozen=True)
class TransformReport:
    """What a dbt invocation produced, for the CLI summary and for callers chaining steps."""

    command: str
    models_built: int
    tests_passed: int
    mart_rows: Mapping[str, int]
    mart_paths: Mapping[str, Path]
    seconds: float


def mart_path(settings: TailorSettings, mart: str) -> Path:
    """Where dbt writes a mart; must match the `location` config of the mart model."""
    return settings.marts_dir / f"{mart}.parquet"


def run_transformations(settings: TailorSettings, command: str = "build") -> TransformReport:
    """Run `dbt <command>` on the events of `settings` and report on the marts.

    Not thread-safe: dbt keeps global state and the warehouse path travels through an
    environment variable, so run one transformation per process at a time.
    """
    if command not in COMMANDS:
        raise ValueError(f"command must be one of {sorted(COMMANDS)}, got {command!r}")
    if not any(settings.events_dir.glob("*.parquet")):
        raise MissingEventsError(
            f"No event files (*.parquet) in {settings.events_dir}; "
            "run `tailor generate` or `tailor import` first."
        )
    settings.marts_dir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    with _dbt_environment(settings):
        result = dbtRunner().invoke(_dbt_args(settings, command))
    _raise_for_failures(result, command)

    nodes = _node_results(result)
    paths = {mart: mart_path(settings, mart) for mart in MARTS}
    return TransformReport(
        command=command,
        models_built=sum(
            1 for r in nodes if r.node.resource_type == "model" and r.status == NodeStatus.Success
        ),
        tests_passed=sum(
            1 for r in nodes if r.node.resource_type in _TEST_TYPES and r.status == NodeStatus.Pass
        ),
        mart_rows={
            mart: pq.ParquetFile(path).metadata.num_rows
            for mart, path in paths.items()
            if path.is_file()
        },
        mart_paths=paths,
        seconds=time.perf_counter() - started,
    )


def _dbt_args(settings: TailorSettings, command: str) -> list[str]:
    dbt_vars = {
        "events_glob": str(settings.events_dir / "*.parquet"),
        "marts_dir": str(settings.marts_dir),
        # Declared with the feature views, so the mart has exactly the columns they read.
        "behavior_windows": BEHAVIOR_WINDOWS_DAYS,
        "windowed_measures": {
            measure: _SQL_TYPES[dtype] for measure, dtype in WINDOWED_MEASURES.items()
        },
    }
    return [
        command,
        "--quiet",  # failures come back as TransformError; the CLI prints the summary
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(settings.data_dir / "dbt_target"),
        "--log-path",
        str(settings.data_dir / "dbt_logs"),
        "--vars",
        json.dumps(dbt_vars),
    ]


@contextmanager
def _dbt_environment(settings: TailorSettings) -> Iterator[None]:
    """Set what profiles.yml and dbt read from the environment, then restore it.

    Restoring matters because callers (tests, the API) may build several data dirs
    in one process.
    """
    overrides = {
        "TAILOR_WAREHOUSE_PATH": str(settings.warehouse_path),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    saved = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _node_results(result: dbtRunnerResult) -> list[RunResult]:
    """Per-node results of a run-like command; empty when dbt stopped before running."""
    if isinstance(result.result, RunExecutionResult):
        return list(result.result.results)
    return []


def _raise_for_failures(result: dbtRunnerResult, command: str) -> None:
    """Turn an unsuccessful invocation into one error listing every failed node."""
    if result.success:
        return
    if result.exception is not None:
        raise TransformError(f"dbt {command} could not run: {result.exception}") from (
            result.exception
        )
    nodes = _node_results(result)
    failures = [
        f"{r.node.resource_type} {r.node.name} ({r.status}): {(r.message or '').strip()}"
        for r in nodes
        if r.status in _FAILED_STATUSES
    ]
    skipped = sum(1 for r in nodes if r.status == NodeStatus.Skipped)
    raise TransformError(
        f"dbt {command} failed on {len(failures)} node(s), {skipped} skipped:\n  "
        + "\n  ".join(failures or ["(no node reported a failure; see the dbt log)"])
    )
