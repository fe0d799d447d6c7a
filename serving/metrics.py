"""Prometheus metrics of the decision path and the event intake, scraped at GET /metrics."""

from prometheus_client import Counter, Histogram

DECISIONS = Counter("tailor_decisions_total", "Decisions returned", ["placement", "variant"])
DEGRADED = Counter(
    "tailor_degraded_decisions_total", "Decisions that fell back, by reason", ["reason"]
)
DECISION_SECONDS = Histogram(
    "tailor_decision_seconds",
    "Time to decide, from parsed request to response body",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
)
RULE_FIRED = Counter("tailor_rule_fired_total", "Rule conditions that held", ["placement", "rule"])
RULE_ERRORS = Counter(
    "tailor_rule_errors_total", "Rule conditions that failed to evaluate", ["placement", "rule"]
)
CONFIG_RELOADS = Counter("tailor_config_reloads_total", "Placements reload attempts", ["outcome"])
EVENTS_DROPPED = Counter(
    "tailor_events_dropped", "Valid events neither stored nor streamed, by reason", ["reason"]
)
MODEL_RELOADS = Counter(
    "tailor_model_reloads", "Checks for a newly promoted model, by outcome", ["outcome"]
)
