"""One typed settings object for every Tailor command and the API.

Values come, highest priority first, from keyword arguments, `TAILOR_*` environment
variables (nested with `__`, e.g. `TAILOR_TRAINING__SEED=3`), a YAML config file
(`TAILOR_CONFIG_FILE`, default `tailor.yaml` in the working directory, optional) and
the defaults below. Relative paths are resolved against the working directory once,
at load, because Feast's DuckDB offline store needs absolute source paths.

Nothing here points into the source tree: the files Tailor ships (Feast profiles, the
dbt project, the default placements) are package data found by the packages that own
them, so an installed wheel works from any directory.
"""

from __future__ import annotations

import os
from datetime import date
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    HttpUrl,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from tailor.core.clock import Clock, PinnedClock, SystemClock
from tailor.core.events import DEVICES, Device

Profile = Literal["embedded", "redis"]


class GeneratorSettings(BaseModel):
    """Size and shape of the synthetic clickstream."""

    users: int = Field(3000, ge=1, description="Number of users, ids 1..N.")
    days: int = Field(45, ge=2, le=3650, description="Days of history to simulate.")
    seed: int = Field(7, ge=0, description="Same seed and end date give the same events.")
    end_date: date | None = Field(
        None,
        description="Last simulated day is the day before this one; default today (UTC, "
        "by the configured clock).",
    )
    categories: int = Field(12, ge=2, le=50)
    device_shares: dict[Device, float] = Field(
        default_factory=lambda: {"mobile": 0.55, "desktop": 0.35, "tablet": 0.10},
        description="Share of users whose main device is each (their sessions use it 80% "
        "of the time); a drift rehearsal changes it for the simulated visits.",
    )
    chunk_users: int = Field(
        20_000, ge=100, description="Users simulated and written per chunk; bounds memory."
    )

    @field_validator("device_shares")
    @classmethod
    def _one_share_per_device(cls, shares: dict[str, float]) -> dict[str, float]:
        if set(shares) != set(DEVICES) or any(share < 0 for share in shares.values()):
            raise ValueError(f"give a share >= 0 for each of {list(DEVICES)}")
        if abs(sum(shares.values()) - 1) > 1e-6:
            raise ValueError(f"the shares must sum to 1, not {sum(shares.values()):g}")
        return {device: shares[device] for device in DEVICES}


class TrainingSettings(BaseModel):
    """How labels, splits and the LightGBM model are built."""

    label_horizon_hours: int = Field(24, ge=1)
    valid_fraction: float = Field(0.15, gt=0, lt=0.5)
    test_fraction: float = Field(0.15, gt=0, lt=0.5)
    max_observations: int | None = Field(
        300_000, ge=1000, description="Most recent observations kept for training; None = all."
    )
    # Small, regularised trees: the signal is a smooth propensity, and bigger trees
    # overfit the day-level noise (measured on generated data: test AUC 0.717 -> 0.726).
    learning_rate: float = Field(0.03, gt=0, le=1)
    num_leaves: int = Field(15, ge=2)
    min_data_in_leaf: int = Field(200, ge=1)
    lambda_l2: float = Field(5.0, ge=0)
    num_boost_round: int = Field(3000, ge=1)
    early_stopping_rounds: int = Field(100, ge=1)
    seed: int = 7
    # Measured on the demo's 33k training rows with the other core busy: one thread
    # trains in 1.9 s, two threads in 9-26 s (OpenMP threads wait on each other).
    num_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="LightGBM threads while training; more helps only on idle cores and "
        "large data.",
    )
    tuning_trials: int = Field(
        10,
        ge=0,
        le=10_000,
        description="Optuna trials of the hyperparameter search (the first tries the "
        "parameters above); 0 turns the search off. The run is reproducible when this "
        "bound, not tuning_seconds, ends the search.",
    )
    tuning_seconds: float = Field(
        20.0,
        gt=0,
        le=86_400,
        description="Longest the search runs; whichever of this and tuning_trials comes "
        "first ends it (a trial under way finishes).",
    )
    tuning_folds: int = Field(
        3,
        ge=1,
        le=10,
        description="Time-series cross-validation folds inside the training window: each "
        "trains on all earlier time and validates on the next period.",
    )
    calibration_folds: int = Field(
        5,
        ge=2,
        le=20,
        description="Cross-fitting folds within the validation split that choose between "
        "isotonic and Platt calibration, so neither is judged on data it was fitted on.",
    )
    calibration_bins: int = Field(
        10,
        ge=2,
        le=100,
        description="Equal-count score buckets of the expected calibration error (ECE) "
        "and of the report's calibration curve.",
    )
    shap_rows: int = Field(
        2000,
        ge=100,
        description="Test rows (a seeded sample) whose SHAP values give the mean |SHAP| "
        "importance; bounds its cost.",
    )


class ResponseModelSettings(BaseModel):
    """The response model: per candidate, the chance of a click and of a conversion,
    learned from the decision log and its outcomes (`tailor train-response`)."""

    # The demo's simulated week logs about 65 conversions with a feature vector; fewer
    # than 50 leave the conversion model nothing to split on.
    min_conversions: int = Field(
        50,
        ge=1,
        description="Conversions the logged decisions must hold before a response model "
        "is trained; below it the predictive signal stays the propensity model's.",
    )
    weight_clip: float = Field(
        20.0,
        ge=1,
        description="Largest inverse-propensity weight 1/p a logged decision gets: "
        "bounds the variance rare explorations would add.",
    )
    window_days: float = Field(
        28.0, gt=0, description="Days of logged decisions, back from now, it learns from."
    )
    valid_fraction: float = Field(
        0.15, gt=0, lt=0.5, description="Latest decisions before the test ones: early stopping."
    )
    test_fraction: float = Field(
        0.2, gt=0, lt=0.5, description="Latest decisions: held out for AUC and percentiles."
    )
    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(15, ge=2)
    min_data_in_leaf: int = Field(50, ge=1)
    lambda_l2: float = Field(5.0, ge=0)
    num_boost_round: int = Field(500, ge=1)
    early_stopping_rounds: int = Field(30, ge=1)
    seed: int = 7
    num_threads: int = Field(1, ge=1, le=64, description="LightGBM threads while training.")


class RetrainingSettings(BaseModel):
    """When `tailor train`/`retrain` lets a challenger replace the champion."""

    trigger: Literal["always", "on_alert"] = Field(
        "always",
        description="always: every `tailor retrain` run (by hand or on its schedule) trains "
        "a challenger; on_alert: a run trains only when `tailor monitor` has alerted since "
        "the champion was promoted, so a schedule can check often and train rarely.",
    )
    min_auc_gain: float = Field(
        0.0,
        ge=-1,
        le=1,
        description="The challenger's AUC must exceed the champion's by at least this on "
        "the shared holdout (0: a tie is enough; a small positive margin ignores noise).",
    )
    max_log_loss_increase: float = Field(
        0.0,
        ge=0,
        description="The challenger's log loss may be at most this above the champion's.",
    )
    min_holdout_rows: int = Field(
        500,
        ge=50,
        description="Fewer holdout rows after the champion's own training windows is no "
        "evidence: the champion stays.",
    )


class ServingSettings(BaseModel):
    """The HTTP API."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    placements_file: Path | None = Field(
        None, description="Placements, variants and rules; default: the file Tailor ships."
    )
    feature_budget_ms: float = Field(
        100.0,
        gt=0,
        description="Longest wait for the online store before deciding without it.",
    )
    feature_breaker_failures: int = Field(
        3, ge=1, description="Failed or slow reads in a row that open the circuit breaker."
    )
    feature_breaker_seconds: float = Field(
        2.0, ge=0, description="How long an open breaker skips the store (no pile-up)."
    )
    baseline_endpoint: bool = Field(
        False,
        description="Expose POST /internal/baseline (Feast lookup + predict only) for benchmarks.",
    )
    admin_api_key: SecretStr | None = Field(
        None,
        description="Key for /v1/admin/* (header X-API-Key); unset keeps the admin API closed.",
    )
    watch_placements: bool = Field(
        True, description="Reload the placements file when it changes on disk."
    )
    explain_top_features: int = Field(
        5, ge=0, le=50, description="Model feature contributions returned per decision."
    )
    max_body_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        description="Larger request bodies are refused with 413 before they are parsed.",
    )
    session_ahead_tolerance_seconds: float = Field(
        60.0,
        ge=0,
        description="A live session snapshot dated more than this after a decision's "
        "instant is not read: the decision replays a past moment (a simulation, a "
        "context.timestamp in the past) and the snapshot describes a later session. The "
        "tolerance absorbs clock skew between the stream workers and the API.",
    )
    context_max_ahead_seconds: int = Field(
        300,
        ge=0,
        description="How far ahead of the server's clock a decision's context.timestamp may "
        "be: rules have time windows, and a caller must not open a campaign early.",
    )
    context_max_behind_seconds: int = Field(
        300,
        ge=0,
        description="Likewise behind: a closed campaign stays closed. The admin dry-run "
        "takes any time.",
    )
    health_budget_seconds: float = Field(
        0.5,
        gt=0,
        le=30,
        description="GET /health answers within this; a check still running (a frozen "
        "dependency) is reported as unanswered.",
    )
    # An int checked below, not a Literal: an environment variable arrives as "503".
    health_degraded_status: int = Field(
        503,
        description="Status of /health when degraded: 503 takes the replica out of a load "
        "balancer's pool; 200 keeps it (when every replica shares the failing dependency, "
        "ejecting them all serves nothing instead of fallback content).",
    )
    model_poll_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="How often the API checks which model `models/latest` names and swaps "
        "to a newly promoted one (a readlink; works on shared volumes where file events "
        "do not arrive). POST /v1/admin/models/reload swaps at once.",
    )
    shadow_workers: int = Field(
        1, ge=1, le=32, description="Threads that run shadow arms after the response."
    )
    shadow_queue_max: int = Field(
        1000,
        ge=1,
        description="Shadow evaluations waiting at most; beyond, they are skipped (counted "
        "in tailor_shadow_skipped_total), never waited for.",
    )

    @field_validator("health_degraded_status")
    @classmethod
    def _health_status(cls, value: int) -> int:
        if value not in (200, 503):
            raise ValueError("must be 503 (leave the load balancer's pool) or 200 (stay)")
        return value


class ServerSettings(BaseModel):
    """Connections used by the `redis` profile."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    registry_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/tailor"
    key_ttl_seconds: int | None = Field(None, ge=1)
    redis_timeout_seconds: float = Field(
        1.0, gt=0, description="Socket timeout for Tailor's own Redis calls (stream, state)."
    )


class StreamSettings(BaseModel):
    """Live events: the Redis Stream, its consumer group and the session windows."""

    stream_key: str = "tailor:events"
    group: str = "session-features"
    batch_size: int = Field(1000, ge=1, le=100_000, description="Entries read per batch.")
    block_ms: int = Field(20, ge=1, description="How long a read waits for new entries.")
    claim_idle_ms: int = Field(
        30_000,
        ge=1,
        description="Pending entries idle this long belong to a dead worker and are claimed.",
    )
    offline_flush_seconds: float = Field(
        5.0, gt=0, description="Session rows go to the offline log at most this often."
    )
    trim_every_seconds: float = Field(10.0, gt=0)
    state_ttl_seconds: int = Field(86_400, ge=60, description="Idle session state expiry.")
    dedup_ttl_seconds: int = Field(
        86_400, ge=60, description="How long an event id is remembered for idempotence."
    )
    max_batch_events: int = Field(10_000, ge=1, description="Largest POST /v1/events batch.")
    max_future_seconds: int = Field(
        300,
        ge=0,
        description="How far ahead of the server's clock an event's ts may be (clock skew); "
        "a later one is rejected: it would push the user's session window past every real "
        "event.",
    )
    max_past_seconds: int = Field(
        86_400,
        ge=0,
        description="How far behind the server's clock an event's ts may be (late delivery); "
        "older history goes through `tailor import`. Beyond dedup_ttl_seconds a re-sent "
        "event could count twice.",
    )


class DecisionSettings(BaseModel):
    """Decision log, trigger outbox and opt-out list: one SQL database through SQLAlchemy."""

    database_url: str | None = Field(
        None,
        description="Default: SQLite at <data_dir>/decisions.db on the embedded profile, "
        "the registry's PostgreSQL database on the redis profile.",
    )
    log_flush_seconds: float = Field(
        0.2,
        gt=0,
        description="The logs (decisions, outcomes, assignments) commit at least this often.",
    )
    log_batch_size: int = Field(500, ge=1, description="Rows per INSERT batch.")
    log_stall_seconds: float = Field(
        2.0,
        gt=0,
        description="A log write running longer than this (a frozen database) counts as "
        "failing: the buffer goes to the spill on disk meanwhile.",
    )
    lookup_budget_ms: float = Field(
        250.0,
        gt=0,
        description="Longest wait for the decision database on the request path (an "
        "experiment's stored assignment, a fired trigger's outbox row) before deciding "
        "without it (the trigger goes to the local spool).",
    )
    log_queue_max: int = Field(
        100_000,
        ge=1,
        description="Rows each log buffers while the database is slow or down; beyond this "
        "they spill to <data_dir>/decision_spill/ and are replayed later.",
    )
    webhook_url: HttpUrl | None = Field(
        None, description="Where triggers without their own webhook are POSTed; None stores only."
    )
    webhook_timeout_seconds: float = Field(2.0, gt=0)
    webhook_max_attempts: int = Field(
        8, ge=1, description="Deliveries tried before a trigger is marked failed."
    )
    webhook_backoff_seconds: float = Field(
        1.0, gt=0, description="First retry delay; it doubles per attempt, capped at 5 minutes."
    )
    dispatch_interval_seconds: float = Field(
        1.0, gt=0, description="How often the dispatcher looks for due triggers."
    )
    opt_out_refresh_seconds: float = Field(
        30.0, gt=0, description="How often each API process re-reads the opt-out list."
    )
    auto_migrate: bool = Field(
        True,
        description="Bring the database schema up to date when a command or the API "
        "starts; false: refuse to start on an old schema (run `tailor db upgrade`).",
    )
    feature_log_sample_rate: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Share of decisions whose model feature vector is logged (drift "
        "monitoring reads them); chosen by decision id, 0 logs none.",
    )


class OutcomeSettings(BaseModel):
    """What users did after a decision: attribution windows and the outcome log."""

    impression_window_seconds: float = Field(
        3600, gt=0, description="An impression counts if it comes this soon after the decision."
    )
    click_window_seconds: float = Field(3600, gt=0, description="Likewise for a click.")
    conversion_window_seconds: float = Field(
        86_400, gt=0, description="Likewise for a conversion (a purchase)."
    )
    clock_skew_seconds: float = Field(
        60,
        ge=0,
        description="An outcome may be dated this much before its decision (senders' clocks).",
    )
    unknown_decision_grace_seconds: float = Field(
        300,
        gt=0,
        description="How long an outcome waits for its decision to reach the database "
        "(another replica's log may not have flushed yet) before it counts as unknown.",
    )
    max_batch: int = Field(1000, ge=1, description="Largest POST /v1/outcomes batch.")


class ExperimentSettings(BaseModel):
    """How experiment results are computed."""

    alpha: float = Field(0.05, gt=0, lt=0.5, description="1 - confidence of every interval.")
    srm_alpha: float = Field(
        0.001, gt=0, lt=0.1, description="A sample-ratio mismatch is flagged below this p."
    )
    sequential_tuning_users: int = Field(
        5000,
        ge=10,
        description="Users at which the always-valid interval is narrowest (its rho is "
        "tuned for this size); roughly the expected size of an experiment.",
    )
    ope_min_support: float = Field(
        0.95,
        gt=0,
        le=1,
        description="Share of logged decisions on which the logging policy could have "
        "served everything the evaluated policy would; below it IPS and SNIPS give no "
        "number and doubly robust is marked as leaning on its reward model.",
    )
    ope_bootstrap: int = Field(
        1000, ge=100, le=100_000, description="Bootstrap resamples (of users) per interval."
    )
    ope_folds: int = Field(
        2, ge=2, le=10, description="Cross-fitting folds of the doubly robust reward model."
    )


class MonitoringSettings(BaseModel):
    """Drift and performance monitoring (`tailor monitor`) and the reference profile
    saved with each model."""

    profile_bins: int = Field(
        10,
        ge=2,
        le=100,
        description="Quantile buckets per numeric feature and for the score in the "
        "reference profile (repeated quantiles merge, so a flag gets two).",
    )
    profile_max_categories: int = Field(
        50, ge=1, le=1000, description="Categories kept per context field; the rest is 'other'."
    )
    window_hours: float = Field(
        168,
        gt=0,
        le=24 * 90,
        description="Drift is judged on the decisions of this many hours before the run; "
        "a whole week by default, so weekdays and weekends are both in it (a weekday's "
        "window alone reads is_weekend as drifted).",
    )
    min_decisions: int = Field(
        500,
        ge=50,
        description="Fewer decisions with a logged feature vector in the window give no "
        "PSI: with n decisions and k buckets PSI reads about (k-1)/n with no drift at all.",
    )
    psi_warn: float = Field(0.1, gt=0, description="PSI from which a shift is a warning.")
    psi_alert: float = Field(0.25, gt=0, description="PSI from which a shift is an alert.")
    psi_epsilon: float = Field(
        1e-4,
        gt=0,
        le=0.01,
        description="Share an empty bucket counts as, so PSI stays finite when one side "
        "has no values in a bucket.",
    )
    performance_window_hours: float = Field(
        168,
        gt=0,
        le=24 * 365,
        description="Live AUC, calibration and the conversion-rate change detector read "
        "the decisions of this many hours that end where the conversion attribution "
        "window (outcomes.conversion_window_seconds) is over.",
    )
    min_conversions: int = Field(
        20,
        ge=1,
        description="Conversions, and decisions without one, needed at least for a live "
        "AUC and calibration.",
    )
    calibration_bins: int = Field(
        10, ge=2, le=100, description="Equal-count buckets of the expected calibration error."
    )
    auc_drop_alert: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Alert when the live AUC is this far below the model's test AUC; "
        "unset: the live AUC is reported only (a live conversion is not quite the "
        "training label, so set it from the live AUC of a healthy period).",
    )
    adwin_delta: float = Field(
        0.002,
        gt=0,
        lt=1,
        description="ADWIN's confidence on the conversion stream: smaller detects fewer, "
        "surer changes.",
    )
    max_decisions: int = Field(
        200_000,
        ge=1000,
        description="Decisions read per window at most; beyond it a uniform sample (the "
        "lowest decision ids, which are random).",
    )
    metrics_refresh_seconds: float = Field(
        15,
        gt=0,
        le=3600,
        description="How often each API process re-reads the latest run for /metrics.",
    )

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> MonitoringSettings:
        if self.psi_warn >= self.psi_alert:
            raise ValueError(
                f"psi_warn ({self.psi_warn}) must be below psi_alert ({self.psi_alert})"
            )
        return self


class SchedulerSettings(BaseModel):
    """Scheduled materialization."""

    lock_ttl_seconds: float = Field(
        120,
        gt=0,
        description="Redis profile: a crashed run's lock lapses within this; a live run "
        "renews it every third of it.",
    )
    keep_runs: int = Field(100, ge=1, description="Run records kept for `--status`.")


class TailorSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TAILOR_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    profile: Profile = "embedded"
    project: str = Field("tailor", pattern=r"^[a-z][a-z0-9_]*$")
    home: Path = Field(
        Path("."), description="Default parent of data_dir and models_dir (`<home>/data`)."
    )
    data_dir: Path = Field(description="Events, marts, the embedded stores; default <home>/data.")
    models_dir: Path = Field(description="Model artifacts; default <home>/models.")
    clock_start: AwareDatetime | None = Field(
        None,
        description="Run as if the clock read this instant at start-up, then advance in real "
        "time: for replays, demos and tests on fixed data. Unset: the system clock.",
    )
    generator: GeneratorSettings = GeneratorSettings()
    training: TrainingSettings = TrainingSettings()
    response_model: ResponseModelSettings = ResponseModelSettings()
    retraining: RetrainingSettings = RetrainingSettings()
    serving: ServingSettings = ServingSettings()
    servers: ServerSettings = ServerSettings()
    stream: StreamSettings = StreamSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    decisions: DecisionSettings = DecisionSettings()
    outcomes: OutcomeSettings = OutcomeSettings()
    experiments: ExperimentSettings = ExperimentSettings()
    monitoring: MonitoringSettings = MonitoringSettings()

    @model_validator(mode="before")
    @classmethod
    def _dirs_under_home(cls, values: Any) -> Any:
        if isinstance(values, dict):
            home = Path(values.get("home") or ".")
            values = {
                "data_dir": home / "data",
                "models_dir": home / "models",
                **{key: value for key, value in values.items() if value is not None},
            }
        return values

    @field_validator("home", "data_dir", "models_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @cached_property
    def clock(self) -> Clock:
        """One clock per settings object, so every part of a process agrees on "now"."""
        return SystemClock() if self.clock_start is None else PinnedClock(self.clock_start)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = Path(os.environ.get("TAILOR_CONFIG_FILE", "tailor.yaml"))
        if "TAILOR_CONFIG_FILE" in os.environ and not config_file.is_file():
            raise FileNotFoundError(
                f"TAILOR_CONFIG_FILE={config_file} does not exist; "
                "unset it or point it at a YAML file"
            )
        yaml_source = YamlConfigSettingsSource(settings_cls, yaml_file=config_file)
        return (init_settings, env_settings, yaml_source)

    @property
    def events_dir(self) -> Path:
        """Canonical events as Parquet part files; the dbt source reads all of them."""
        return self.data_dir / "events"

    @property
    def ground_truth_dir(self) -> Path:
        return self.data_dir / "ground_truth"

    @property
    def marts_dir(self) -> Path:
        return self.data_dir / "marts"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def session_log_dir(self) -> Path:
        """Offline log of pushed session features (Parquet parts); training reads it."""
        return self.data_dir / "session"

    @property
    def decision_database_url(self) -> str:
        """Where decisions, triggers and opt-outs live: beside the data on the embedded
        profile, on the servers' PostgreSQL under the redis profile."""
        if self.decisions.database_url:
            return self.decisions.database_url
        if self.profile == "redis":
            return self.servers.registry_url
        return f"sqlite:///{self.data_dir / 'decisions.db'}"

    @property
    def decision_spill_dir(self) -> Path:
        """Decisions, outcomes and assignments the database could not take yet."""
        return self.data_dir / "decision_spill"

    @property
    def trigger_spool_dir(self) -> Path:
        """Triggers that fired while the outbox database was down, until it answers."""
        return self.data_dir / "trigger_spool"

    @property
    def feature_store_dir(self) -> Path:
        """Registry and SQLite online store of the embedded profile."""
        return self.data_dir / "feast"


@lru_cache(maxsize=1)
def get_settings() -> TailorSettings:
    """The process-wide settings, read once; tests build their own `TailorSettings`."""
    return TailorSettings()
