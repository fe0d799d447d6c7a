"""Should a freshly trained challenger replace the champion?

Both models are scored on the same rows: the challenger's test split, cut to the part
that is also after the champion's own training and validation windows, so neither has
seen a row it is judged on. The challenger must win on AUC (ranking, which decides who
gets which content) and not lose on log loss (the probabilities that rules and
thresholds read), each by margins set in `retraining`. Too few rows, or one label
value only, is no evidence: the champion stays.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from pipelines.training.boosting import matrix
from pipelines.training.metrics import classification_metrics
from tailor.core.model_artifact import ModelArtifact
from tailor.core.settings import RetrainingSettings


@dataclass(frozen=True)
class GateVerdict:
    promote: bool
    reason: str
    holdout_rows: int
    holdout_start: str | None
    challenger: dict[str, float] | None
    champion: dict[str, float] | None

    def as_evidence(self) -> dict[str, Any]:
        return asdict(self)


def judge(
    challenger: ModelArtifact,
    champion: ModelArtifact | None,
    holdout: pd.DataFrame,
    policy: RetrainingSettings,
    calibration_bins: int,
) -> GateVerdict:
    """`holdout` is the challenger's test split with its features and labels."""
    if champion is None:
        return GateVerdict(True, "no champion yet", len(holdout), None, None, None)
    missing = sorted(set(champion.features) - set(holdout.columns))
    if missing:
        return GateVerdict(
            False,
            f"not comparable: the champion reads features the challenger's rows lack "
            f"({', '.join(missing[:5])}); promote by hand after checking",
            0,
            None,
            None,
            None,
        )
    champion_test_start = pd.Timestamp(champion.metadata["training_window"]["test_start"])
    rows = holdout[holdout["event_timestamp"] >= champion_test_start]
    start = rows["event_timestamp"].min().isoformat() if len(rows) else None
    if len(rows) < policy.min_holdout_rows or rows["label"].nunique() < 2:
        return GateVerdict(
            False,
            f"{len(rows):,} holdout rows after the champion's training windows "
            f"(retraining.min_holdout_rows = {policy.min_holdout_rows:,}, both labels needed); "
            "wait for more data",
            len(rows),
            start,
            None,
            None,
        )
    labels = rows["label"].to_numpy()
    new = classification_metrics(
        labels, challenger.predict(matrix(rows, challenger.features)), calibration_bins
    )
    old = classification_metrics(
        labels, champion.predict(matrix(rows, champion.features)), calibration_bins
    )
    auc_gain = new["auc"] - old["auc"]
    log_loss_increase = new["logloss"] - old["logloss"]
    wins_auc = auc_gain >= policy.min_auc_gain
    keeps_log_loss = log_loss_increase <= policy.max_log_loss_increase
    figures = (
        f"AUC {new['auc']:.4f} vs {old['auc']:.4f} (gain {auc_gain:+.4f}, "
        f"needed {policy.min_auc_gain:+.4f}); log loss {new['logloss']:.4f} vs "
        f"{old['logloss']:.4f} (change {log_loss_increase:+.4f}, "
        f"allowed {policy.max_log_loss_increase:+.4f}) on {len(rows):,} rows"
    )
    verdict = "beats the champion" if wins_auc and keeps_log_loss else "does not beat the champion"
    return GateVerdict(
        wins_auc and keeps_log_loss, f"{verdict}: {figures}", len(rows), start, new, old
    )
