"""Tailor's off-policy estimators against Open Bandit Pipeline's, on the same data.

OBP is the reference implementation of IPS (`InverseProbabilityWeighting`), SNIPS
(`SelfNormalizedInverseProbabilityWeighting`) and DR (`DoublyRobust`), but it needs
PyTorch, so it is not a dependency: run this in a throwaway environment,

    python -m venv /tmp/obp && /tmp/obp/bin/pip install torch obp
    /tmp/obp/bin/pip install -e .      # Tailor itself, for its estimators
    /tmp/obp/bin/python -m benchmarks.ope_against_obp

It draws a synthetic log (20,000 decisions, 6 variants, a logging policy with a floor, a
target policy, Bernoulli rewards), fits Tailor's cross-fitted reward model once, gives
the same predictions to both DR implementations, and prints and writes
(benchmarks/results/ope_against_obp.json) each estimate and the difference.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from obp.ope import (
    DoublyRobust,
    InverseProbabilityWeighting,
    SelfNormalizedInverseProbabilityWeighting,
)
from obp.version import __version__ as obp_version

from serving.experiments.off_policy import LoggedBandit, estimate, reward_predictions

RESULTS = Path(__file__).resolve().parent / "results" / "ope_against_obp.json"
DECISIONS, VARIANTS, USERS = 20_000, 6, 4_000


def main() -> None:
    rng = np.random.default_rng(0)
    logging = rng.dirichlet(np.full(VARIANTS, 2.0), size=DECISIONS) * 0.9 + 0.1 / VARIANTS
    target = rng.dirichlet(np.full(VARIANTS, 0.5), size=DECISIONS)
    actions = np.array([rng.choice(VARIANTS, p=p) for p in logging])
    signals = rng.normal(size=(DECISIONS, VARIANTS, 3))
    variant = np.broadcast_to(np.arange(VARIANTS), (DECISIONS, VARIANTS))[..., None]
    features = np.concatenate([signals, variant], axis=2)
    truth = 1 / (1 + np.exp(-(signals[..., 0] - 2)))
    rewards = (rng.random(DECISIONS) < truth[np.arange(DECISIONS), actions]).astype(float)
    log = LoggedBandit(
        users=rng.integers(0, USERS, size=DECISIONS),
        actions=actions,
        logging=logging,
        rewards=rewards,
        features=features,
    )
    predicted = reward_predictions(log, "conversion", folds=2)
    ours = estimate(log, target, "conversion", resamples=200, predicted=predicted)
    inputs = {
        "reward": rewards,
        "action": actions,
        "pscore": logging[np.arange(DECISIONS), actions],
        "action_dist": target[..., None],
    }
    theirs = {
        "ips": InverseProbabilityWeighting().estimate_policy_value(**inputs),
        "snips": SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**inputs),
        "dr": DoublyRobust().estimate_policy_value(
            **inputs, estimated_rewards_by_reg_model=predicted[..., None]
        ),
    }
    figures = {
        name: {"tailor": ours.value_of(name).value, "obp": float(value)}
        for name, value in theirs.items()
    }
    for name, pair in figures.items():
        pair["abs_difference"] = abs(pair["tailor"] - pair["obp"])
        print(
            f"{name:5s} tailor {pair['tailor']:.10f}  obp {pair['obp']:.10f}  "
            f"difference {pair['abs_difference']:.1e}"
        )
    true_value = float((target * truth).sum(axis=1).mean())
    print(f"true value of the target policy {true_value:.4f}")
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "ope_against_obp",
                "measured_at": datetime.now(UTC).isoformat(),
                "obp_version": obp_version,
                "decisions": DECISIONS,
                "variants": VARIANTS,
                "true_value": true_value,
                "estimates": figures,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
