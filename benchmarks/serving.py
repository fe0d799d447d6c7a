"""Serving benchmark: POST /v1/personalize against a Feast-lookup-plus-predict baseline,
the cost of the rules engine (the same placement with 0 and with 20 rules), and what a
shadow arm costs the served answer (the same placement with and without one; the
shadow decides after the response, on a worker thread of the same process).

Starts `tailor serve` (one uvicorn worker) on a free port with the trained model and
the materialized store of the current settings, and a placements file holding the
shipped placements plus two benchmark copies of the home banner: one without rules and
one with 20 rules over features, context and the model score (boosts, penalties,
suppressions, forces, a trigger; some fire for most users, some rarely). It drives the
endpoints with the same concurrent load over random users, interleaving the arms in
rounds so drift on a shared machine hits all of them alike, prints p50/p99 latency and
requests/s, and writes benchmarks/results/serving.json. The two rule arms run mixed:
each client posts every request to both placements back to back (in alternating
order), so a burst of noise hits both alike; run as separate arms, their ratio moved
by up to 30% between one-second rounds. Run `make demo` (or `tailor
demo --no-serve`) first.

The load generator is Python on the same two cores as the server, so absolute
requests/s are a floor; the ratios between arms are the figures to watch.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import yaml

from serving.decision.placements import placements_path
from tailor.core.model_artifact import ModelNotFoundError, load_artifact
from tailor.core.settings import TailorSettings
from tests.support.services import start_api

RESULTS = Path(__file__).resolve().parent / "results" / "serving.json"
DEVICES = ("mobile", "desktop", "tablet")
NO_RULES, WITH_RULES = "bench_no_rules", "bench_20_rules"
NO_SHADOW, WITH_SHADOW = "bench_no_shadow", "bench_shadow"
CHALLENGER = {"weights": {"behavioral": 0.8, "contextual": 0.1, "predictive": 0.1}}
ROUNDS = 3


def _twenty_rules() -> list[dict]:
    """Rules shaped like a marketer's: thresholds on activity, cart and score."""
    rules = []
    for i in range(20):
        kind = ("boost", "penalize", "suppress", "boost", "force")[i % 5]
        when = (
            f"views_7d > {i} && (cart_value == null || cart_value < {100 + i * 50}.0)",
            f"propensity_percentile != null && propensity_percentile < {0.05 * (i % 10):.2f}",
            f"device == '{DEVICES[i % 3]}' && hour >= {i % 24}",
            f"session_top_category_views_30m > {i % 4} || top_category_share_30d > 0.{5 + i % 4}",
            f"revenue_30d > {2000 + i * 100}.0 && now - last_event_at < duration('48h')",
        )[i % 5]
        target = {"tags": [("deal", "new", "inspiration", "bestseller")[i % 4]]}
        action = {
            "boost": {"type": "boost", "target": target, "factor": 1.1 + i / 100},
            "penalize": {"type": "penalize", "target": target, "factor": 0.9},
            "suppress": {"type": "suppress", "target": target},
            "force": {"type": "force", "variant": "home_makeover"},
        }[kind]
        rules.append({"id": f"bench_{i:02d}", "priority": i * 10, "when": when, "action": action})
    rules[-1] = rules[-1] | {
        "when": "user_id == 1",
        "action": {"type": "trigger", "notification": "bench", "once_per": "1h"},
    }
    return rules


def _experiment_on(placement: str, second_arm: dict) -> dict:
    return {
        "key": f"bench_{placement}",
        "placement": placement,
        "status": "running",
        "arms": [{"key": "champion"}, second_arm],
    }


def benchmark_placements(settings: TailorSettings, folder: Path) -> Path:
    document = yaml.safe_load(placements_path(settings.serving.placements_file).read_text())
    banner = document["placements"]["homepage_banner"]
    document["placements"][NO_RULES] = banner | {"rules": []}
    document["placements"][WITH_RULES] = banner | {"rules": _twenty_rules()}
    # Both in an experiment whose users all get the champion, so they differ only in
    # the shadow arm deciding beside every decision of one of them.
    document["placements"][NO_SHADOW] = banner
    document["placements"][WITH_SHADOW] = banner
    document["experiments"] = [
        *document.get("experiments", []),
        _experiment_on(NO_SHADOW, {"key": "idle", "stopped": True}),
        _experiment_on(WITH_SHADOW, {"key": "challenger", "shadow": True, "policy": CHALLENGER}),
    ]
    path = folder / "placements.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _body(rng: random.Random, users: int) -> dict:
    return {
        "user_id": rng.randint(1, users),
        "context": {"device": rng.choice(DEVICES), "country": "US", "page": "home"},
    }


def _merge(runs: list[dict]) -> dict[str, float]:
    """One arm's rounds as one sample: percentiles over every latency."""
    millis = np.concatenate([run.pop("millis") for run in runs])
    return {
        "requests": sum(run["requests"] for run in runs),
        "errors": sum(run["errors"] for run in runs),
        "degraded": sum(run["degraded"] for run in runs),
        "concurrency": runs[0]["concurrency"],
        "p50_ms": float(np.percentile(millis, 50)),
        "p99_ms": float(np.percentile(millis, 99)),
        "requests_per_s": sum(run["requests"] for run in runs)
        / sum(run["requests"] / run["requests_per_s"] for run in runs),
    }


Target = tuple[str, str | None]  # path, placement


async def _drive(
    url: str, targets: list[Target], users: int, requests: int, concurrency: int
) -> list[dict]:
    """`requests` random users, each posted to every target in turn; one result per
    target (requests/s of a mixed run count that target's requests only)."""
    rng = random.Random(7)
    queue: asyncio.Queue[dict] = asyncio.Queue()
    for _ in range(requests):
        queue.put_nowait(_body(rng, users))
    latencies: list[list[float]] = [[] for _ in targets]
    errors = [0] * len(targets)
    degraded = [0] * len(targets)  # decisions that fell back (e.g. a read over budget)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            turn = 0
            while not queue.empty():
                body = queue.get_nowait()
                turn += 1
                for i in sorted(range(len(targets)), key=lambda i: (i + turn) % len(targets)):
                    path, placement = targets[i]
                    started = time.perf_counter()
                    payload = body | {"placement": placement} if placement else body
                    response = await client.post(path, json=payload)
                    latencies[i].append(time.perf_counter() - started)
                    errors[i] += response.status_code != 200
                    degraded[i] += response.status_code == 200 and bool(
                        response.json().get("degraded")
                    )

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return [
        {
            "requests": requests,
            "errors": errors[i],
            "degraded": degraded[i],
            "concurrency": concurrency,
            "millis": np.array(latencies[i]) * 1000,
            "requests_per_s": requests / elapsed,
        }
        for i in range(len(targets))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="Per arm.")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    settings = TailorSettings()
    try:
        model = load_artifact(settings.models_dir)
    except ModelNotFoundError as error:
        raise SystemExit(f"{error}\nrun `make demo` or `tailor demo --no-serve` first") from error
    # name -> target(s) run together, concurrent clients; one client measures latency
    # without queueing, the rest measure it under load.
    rules = [("/v1/personalize", NO_RULES), ("/v1/personalize", WITH_RULES)]
    shadow = [("/v1/personalize", NO_SHADOW), ("/v1/personalize", WITH_SHADOW)]
    runs_of: dict[tuple[str, ...], tuple[list[Target], int]] = {
        ("baseline_feast_plus_predict",): ([("/internal/baseline", None)], args.concurrency),
        ("personalize",): ([("/v1/personalize", "homepage_banner")], args.concurrency),
        ("personalize_no_rules", "personalize_20_rules"): (rules, args.concurrency),
        ("personalize_no_rules_1_client", "personalize_20_rules_1_client"): (rules, 1),
        ("served_no_shadow", "served_with_shadow"): (shadow, args.concurrency),
        ("served_no_shadow_1_client", "served_with_shadow_1_client"): (shadow, 1),
    }
    with tempfile.TemporaryDirectory() as scratch:
        server = start_api(
            {
                **os.environ,
                "TAILOR_SERVING__BASELINE_ENDPOINT": "true",
                "TAILOR_SERVING__PLACEMENTS_FILE": str(
                    benchmark_placements(settings, Path(scratch))
                ),
                "TAILOR_DECISIONS__DATABASE_URL": f"sqlite:///{scratch}/decisions.db",
                # Every arm does its full work: with the default 100 ms budget, queueing
                # behind 8 clients on 2 shared cores trips the store's fallback at random,
                # and a fallback decision is cheaper, which would blur the comparison.
                "TAILOR_SERVING__FEATURE_BUDGET_MS": "1000",
            }
        )
        url = server.url
        users = settings.generator.users
        per_round = args.requests // ROUNDS
        runs: dict[str, list[dict]] = {name: [] for names in runs_of for name in names}
        try:
            for targets, clients in runs_of.values():
                asyncio.run(_drive(url, targets, users, 300 // len(targets), clients))
            for _ in range(ROUNDS):
                for names, (targets, clients) in runs_of.items():
                    count = per_round if clients > 1 else per_round // 4
                    results = asyncio.run(_drive(url, targets, users, count, clients))
                    for name, result in zip(names, results, strict=True):
                        runs[name].append(result)
        except httpx.HTTPError:
            print(f"the server failed; its log ends with:\n{server.output()[-3000:]}")
            raise
        finally:
            server.stop()
    figures = {name: _merge(arm_runs) for name, arm_runs in runs.items()}
    baseline, personalize = figures["baseline_feast_plus_predict"], figures["personalize"]
    no_rules, with_rules = figures["personalize_no_rules"], figures["personalize_20_rules"]
    no_rules_1 = figures["personalize_no_rules_1_client"]
    with_rules_1 = figures["personalize_20_rules_1_client"]

    result = {
        "benchmark": "serving",
        "measured_at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "profile": settings.profile,
        "model_version": model.version,
        "rounds": ROUNDS,
        **figures,
        "p50_ratio_vs_baseline": personalize["p50_ms"] / baseline["p50_ms"],
        "throughput_ratio_vs_baseline": personalize["requests_per_s"] / baseline["requests_per_s"],
        "rules_p50_overhead_under_load": with_rules["p50_ms"] / no_rules["p50_ms"] - 1,
        "rules_p50_overhead_1_client": with_rules_1["p50_ms"] / no_rules_1["p50_ms"] - 1,
        "rules_target_p50_overhead": 0.10,
        "shadow_p99_ratio_under_load": figures["served_with_shadow"]["p99_ms"]
        / figures["served_no_shadow"]["p99_ms"],
        "shadow_p99_ratio_1_client": figures["served_with_shadow_1_client"]["p99_ms"]
        / figures["served_no_shadow_1_client"]["p99_ms"],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    for name, arm in figures.items():
        print(
            f"{name:28s} p50 {arm['p50_ms']:6.2f} ms  p99 {arm['p99_ms']:6.2f} ms  "
            f"{arm['requests_per_s']:7.0f} req/s  errors {arm['errors']}  "
            f"degraded {arm['degraded']}"
        )
    print(
        f"personalize / baseline: p50 x{result['p50_ratio_vs_baseline']:.2f}, "
        f"throughput x{result['throughput_ratio_vs_baseline']:.2f}\n"
        f"20 rules vs none, p50 (target < +10%): "
        f"{result['rules_p50_overhead_1_client']:+.1%} with 1 client, "
        f"{result['rules_p50_overhead_under_load']:+.1%} with {args.concurrency}\n"
        f"served p99 with a shadow arm / without: x{result['shadow_p99_ratio_1_client']:.2f} "
        f"with 1 client, x{result['shadow_p99_ratio_under_load']:.2f} with "
        f"{args.concurrency}  -> {RESULTS}"
    )


if __name__ == "__main__":
    main()
