"""Serving benchmark: POST /v1/personalize against a Feast-lookup-plus-predict baseline.

Starts `tailor serve` (one uvicorn worker) on a free port with the trained model and
the materialized store of the current settings, drives both endpoints with the same
concurrent load over random users, prints p50/p99 latency and requests/s, and writes
benchmarks/results/serving.json. Run `make demo` (or `tailor demo --no-serve`) first.

The load generator is Python on the same two cores as the server, so absolute
requests/s are a floor; the ratio between the two endpoints is the figure to watch.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

from pipelines.local_services import start_api
from pipelines.model_artifact import ModelNotFoundError, load_artifact
from pipelines.settings import TailorSettings

RESULTS = Path(__file__).resolve().parent / "results" / "serving.json"
DEVICES = ("mobile", "desktop", "tablet")


def _body(rng: random.Random, users: int, placement: str | None) -> dict:
    body = {
        "user_id": rng.randint(1, users),
        "context": {"device": rng.choice(DEVICES), "country": "US", "page": "home"},
    }
    if placement:
        body["placement"] = placement
    return body


async def _drive(
    url: str, path: str, placement: str | None, users: int, requests: int, concurrency: int
) -> dict[str, float]:
    rng = random.Random(7)
    bodies = [_body(rng, users, placement) for _ in range(requests)]
    latencies: list[float] = []
    errors = 0
    degraded = 0  # decisions that fell back (e.g. a read over the latency budget)
    queue: asyncio.Queue[dict] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors, degraded
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                response = await client.post(path, json=body)
                latencies.append(time.perf_counter() - started)
                errors += response.status_code != 200
                degraded += response.status_code == 200 and bool(response.json().get("degraded"))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    millis = np.array(latencies) * 1000
    return {
        "requests": requests,
        "errors": errors,
        "degraded": degraded,
        "concurrency": concurrency,
        "p50_ms": float(np.percentile(millis, 50)),
        "p99_ms": float(np.percentile(millis, 99)),
        "requests_per_s": requests / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--placement", default="homepage_banner")
    args = parser.parse_args()

    settings = TailorSettings()
    try:
        model = load_artifact(settings.models_dir)
    except ModelNotFoundError as error:
        raise SystemExit(f"{error}\nrun `make demo` or `tailor demo --no-serve` first") from error
    server = start_api({**os.environ, "TAILOR_SERVING__BASELINE_ENDPOINT": "true"})
    url = server.url
    users = settings.generator.users
    try:
        warm = min(500, args.requests)
        asyncio.run(_drive(url, "/internal/baseline", None, users, warm, args.concurrency))
        asyncio.run(_drive(url, "/v1/personalize", args.placement, users, warm, args.concurrency))
        baseline = asyncio.run(
            _drive(url, "/internal/baseline", None, users, args.requests, args.concurrency)
        )
        personalize = asyncio.run(
            _drive(url, "/v1/personalize", args.placement, users, args.requests, args.concurrency)
        )
    except httpx.HTTPError:
        print(f"the server failed; its log ends with:\n{server.output()[-3000:]}")
        raise
    finally:
        server.stop()

    result = {
        "benchmark": "serving",
        "measured_at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "profile": settings.profile,
        "model_version": model.version,
        "placement": args.placement,
        "baseline_feast_plus_predict": baseline,
        "personalize": personalize,
        "p50_ratio_vs_baseline": personalize["p50_ms"] / baseline["p50_ms"],
        "throughput_ratio_vs_baseline": personalize["requests_per_s"] / baseline["requests_per_s"],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    for name in ("baseline_feast_plus_predict", "personalize"):
        figures = result[name]
        print(
            f"{name:28s} p50 {figures['p50_ms']:6.2f} ms  p99 {figures['p99_ms']:6.2f} ms  "
            f"{figures['requests_per_s']:7.0f} req/s  errors {figures['errors']}  "
            f"degraded {figures['degraded']}"
        )
    print(
        f"personalize / baseline: p50 x{result['p50_ratio_vs_baseline']:.2f}, "
        f"throughput x{result['throughput_ratio_vs_baseline']:.2f}  -> {RESULTS}"
    )


if __name__ == "__main__":
    main()
