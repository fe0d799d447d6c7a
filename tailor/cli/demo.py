"""`tailor demo`: the whole flow on generated data, then decisions for users whose
behavior differs, then the API. It composes pipelines and serving, so it lives here."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import duckdb
import typer
import yaml
from rich.table import Table

from tailor.cli.app import app, console, default_actor, load_settings
from tailor.cli.closed_loop import VisitTrace, changes_table, closed_loop
from tailor.cli.experiment_commands import (
    data_end,
    experiment_database,
    experiment_report,
    print_results,
    print_simulation,
    run_simulation,
)
from tailor.cli.off_policy_commands import print_shadow
from tailor.cli.pipeline_commands import (
    apply_step,
    generate_step,
    materialize_step,
    train_step,
    transform_step,
)
from tailor.cli.serving_commands import serve_api
from tailor.core.settings import GeneratorSettings, TailorSettings

if TYPE_CHECKING:
    from serving.experiment_reports import ShadowReport

SAMPLE_SQL = """
WITH latest AS (
    SELECT * FROM read_parquet($path)
    WHERE snapshot_date = (SELECT max(snapshot_date) FROM read_parquet($path))
      AND top_category_share_30d >= 0.5
),
by_taste AS (
    SELECT user_id FROM latest
    QUALIFY row_number() OVER (
        PARTITION BY top_category_30d ORDER BY sessions_30d DESC, user_id) = 1
    ORDER BY user_id LIMIT $per_taste
),
open_cart AS (
    SELECT user_id FROM latest WHERE has_open_cart = 1
    ORDER BY sessions_30d DESC, user_id LIMIT 1
)
SELECT user_id FROM by_taste UNION SELECT user_id FROM open_cart ORDER BY user_id
"""


def sample_users(settings: TailorSettings, per_taste: int = 5) -> list[int]:
    path = str(settings.marts_dir / "user_daily_features.parquet")
    with duckdb.connect() as connection:
        rows = connection.execute(SAMPLE_SQL, {"path": path, "per_taste": per_taste}).fetchall()
    return [int(row[0]) for row in rows]


@dataclass(frozen=True)
class SampleDecision:
    user_id: int
    placement: str
    device: str
    taste: str  # top category (share), or "new user"
    propensity_percentile: float | None
    variant: str
    score: float
    winning_rule: str | None
    degraded: list[str]


UNKNOWN_USER = 10**12  # no such user: shows the cold-start decision
DEMO_EXPERIMENT = "homepage_policies"
DEMO_PLACEMENT = "homepage_banner"
DEMO_DAYS = 7
DEMO_SEED = 7
DEMO_HOLDOUT = 0.05
# Exploration lets the shadow arm be judged wherever it would choose differently.
DEMO_EXPLORATION = {"epsilon": 0.1, "floor": 0.01}


def with_demo_experiment(settings: TailorSettings) -> TailorSettings:
    """The placements in force, with the demo's experiment running, and a holdout and
    exploration on its placement, written beside the data: the shipped file keeps the
    experiment as a draft."""
    from serving.decision.placements import placements_path

    document = yaml.safe_load(placements_path(settings.serving.placements_file).read_text())
    document["version"] = f"{document['version']}+demo"
    document["placements"][DEMO_PLACEMENT]["holdout"] = DEMO_HOLDOUT
    document["placements"][DEMO_PLACEMENT]["exploration"] = DEMO_EXPLORATION
    for experiment in document.get("experiments", []):
        if experiment["key"] == DEMO_EXPERIMENT:
            experiment["status"] = "running"
    path = settings.data_dir / "demo_placements.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"placements_file": path})}
    )


def demo_shadow_report(settings: TailorSettings) -> ShadowReport:
    """Every outcome of the simulated week is in (the simulator posts them at once), so
    no decision waits for its attribution window."""
    from serving.experiment_reports import shadow_report

    with experiment_database(settings, DEMO_EXPERIMENT) as (plan, placement, database):
        return shadow_report(
            database, plan, placement, "conversion", settings.experiments, decided_before=None
        )


def sample_decisions(settings: TailorSettings) -> list[SampleDecision]:
    """Each sample user (and an unknown one) decided in every placement, in-process
    through the same engine the API runs."""
    from serving.decision.schemas import PersonalizeRequest
    from serving.wiring import build_services

    services = build_services(settings)
    engine = services.engine
    snapshot = engine.config.current
    samples = []
    try:
        for index, user_id in enumerate([*sample_users(settings), UNKNOWN_USER]):
            device = ("mobile", "desktop", "tablet")[index % 3]
            for placement in snapshot.placements.config.placements:
                request = PersonalizeRequest.model_validate(
                    {
                        "user_id": user_id,
                        "placement": placement,
                        "context": {"device": device, "country": "US", "page": "product"},
                    }
                )
                decision = engine.decide(request, snapshot)
                signals = decision.signals
                samples.append(
                    SampleDecision(
                        user_id=user_id,
                        placement=placement,
                        device=device,
                        taste=(
                            f"{signals['top_category_30d']} "
                            f"({signals['top_category_share_30d']:.2f})"
                            if signals["top_category_30d"]
                            else "new user"
                        ),
                        propensity_percentile=decision.propensity_percentile,
                        variant=decision.variant.id,
                        score=decision.score,
                        winning_rule=decision.winning_rule,
                        degraded=decision.degraded,
                    )
                )
    finally:
        services.close()
    return samples


def decisions_table(samples: list[SampleDecision]) -> Table:
    table = Table(
        "user",
        "placement",
        "device",
        "top category (share)",
        "propensity pct",
        "variant",
        "score",
        "winning rule",
        "degraded",
        title="Sample decisions",
    )
    for sample in samples:
        percentile = sample.propensity_percentile
        table.add_row(
            str(sample.user_id),
            sample.placement,
            sample.device,
            sample.taste,
            "-" if percentile is None else f"{percentile:.2f}",
            sample.variant,
            f"{sample.score:.3f}",
            sample.winning_rule or "-",
            ", ".join(sample.degraded) or "-",
        )
    return table


@app.command()
def demo(
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Keep the API up after the run.")
    ] = True,
    users: Annotated[int | None, typer.Option(help="Number of users to simulate.")] = None,
    visits_per_day: Annotated[
        int, typer.Option(min=1, help="Visits per simulated day of the experiment.")
    ] = 1500,
) -> None:
    """Run the whole flow on generated data, print sample decisions, then serve."""
    from pipelines.materialize import FULL_HISTORY_START

    settings = load_settings()
    started = time.perf_counter()
    config = settings.generator
    if users is not None:
        config = GeneratorSettings.model_validate(config.model_dump() | {"users": users})
    console.rule("1/8 generate")
    generate_step(settings, config)
    console.rule("2/8 transform (dbt)")
    transform_step(settings)
    console.rule("3/8 apply (Feast)")
    apply_step(settings)
    console.rule("4/8 materialize")
    materialize_step(settings, FULL_HISTORY_START, None)
    console.rule("5/8 train")
    train_step(settings, actor=default_actor(None), reason="tailor demo")
    console.rule("6/8 sample decisions")
    console.print(decisions_table(sample_decisions(settings)))
    console.rule(f"7/8 experiment {DEMO_EXPERIMENT}: a simulated week")
    settings = with_demo_experiment(settings)
    end = data_end(settings)
    start = datetime(end.year, end.month, end.day, tzinfo=UTC) - timedelta(days=DEMO_DAYS)
    week = VisitTrace()
    print_simulation(
        run_simulation(
            settings,
            DEMO_PLACEMENT,
            start,
            DEMO_DAYS,
            visits_per_day,
            DEMO_SEED,
            on_decision=week.decided,
            on_outcome=week.recorded,
        )
    )
    print_results(experiment_report(settings, DEMO_EXPERIMENT))
    print_shadow(demo_shadow_report(settings))
    console.rule("8/8 closed loop: a response model learns from the week, which runs again")
    loop_started = time.perf_counter()
    changes = closed_loop(
        settings, DEMO_PLACEMENT, start, DEMO_DAYS, visits_per_day, DEMO_SEED, week
    )
    if changes:
        console.print(changes_table(changes, settings.experiments.alpha))
    console.print(f"closed loop: {time.perf_counter() - loop_started:.1f} s")
    console.print(f"whole flow: {time.perf_counter() - started:.0f} s")
    if serve:
        console.print(
            f"serving on http://{settings.serving.host}:{settings.serving.port} "
            "(docs at /docs); Ctrl-C to stop"
        )
        serve_api(settings)
