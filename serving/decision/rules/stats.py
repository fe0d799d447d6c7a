"""Per-rule counters since the running configuration was loaded.

A rule that is evaluated thousands of times and never fires is usually a typo in a
threshold or a feature that is never populated; the stats endpoint flags it. Counts
are per API process and restart with each configuration version (a changed rule is a
new experiment); Prometheus has the cumulative `tailor_rule_fired_total` across
processes.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from serving.decision.rules.evaluation import Evaluation, Verdict
from serving.metrics import RULE_ERRORS, RULE_FIRED


@dataclass
class _RuleCounts:
    fired_total: Any  # this rule's Prometheus children, resolved once, not per decision
    errors_total: Any
    verdicts: Counter[str] = field(default_factory=Counter)
    applied: int = 0
    won: int = 0
    last_fired_at: datetime | None = None


class RuleStats:
    def __init__(self, config_version: str, rules: dict[str, list[str]]) -> None:
        """`rules` maps each placement to its rule ids, so silent rules show as zeros."""
        self.config_version = config_version
        self.since = datetime.now(UTC)
        self._lock = threading.Lock()
        self._counts = {
            (placement, rule_id): _RuleCounts(
                RULE_FIRED.labels(placement, rule_id), RULE_ERRORS.labels(placement, rule_id)
            )
            for placement, rule_ids in rules.items()
            for rule_id in rule_ids
        }

    def record(
        self,
        placement: str,
        evaluations: list[Evaluation],
        applied: list[str],
        winning_rule: str | None,
    ) -> None:
        now = None
        with self._lock:
            for evaluation in evaluations:
                counts = self._counts[(placement, evaluation.rule.id)]
                counts.verdicts[evaluation.verdict] += 1
                if evaluation.verdict is Verdict.FIRED:
                    counts.last_fired_at = now = now or datetime.now(UTC)
                    counts.fired_total.inc()
                elif evaluation.verdict is Verdict.ERROR:
                    counts.errors_total.inc()
            for rule_id in applied:
                self._counts[(placement, rule_id)].applied += 1
            if winning_rule is not None:
                self._counts[(placement, winning_rule)].won += 1

    def report(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = []
            for (placement, rule_id), counts in self._counts.items():
                evaluated = sum(counts.verdicts.values()) - counts.verdicts[Verdict.INACTIVE]
                fired = counts.verdicts[Verdict.FIRED]
                rows.append(
                    {
                        "placement": placement,
                        "rule_id": rule_id,
                        "evaluated": evaluated,
                        "fired": fired,
                        "applied": counts.applied,
                        "won": counts.won,
                        "inactive": counts.verdicts[Verdict.INACTIVE],
                        "missing_inputs": counts.verdicts[Verdict.MISSING_INPUTS],
                        "errors": counts.verdicts[Verdict.ERROR],
                        "fire_rate": fired / evaluated if evaluated else None,
                        "last_fired_at": counts.last_fired_at,
                        "never_fired": evaluated > 0 and fired == 0,
                    }
                )
            return rows
