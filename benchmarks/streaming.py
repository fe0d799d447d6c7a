"""Streaming benchmark: event freshness at a fixed rate, and workers' throughput.

Starts a private redis-server and a scratch PostgreSQL registry (the redis profile),
`tailor serve`, and one stream worker in its own process. Phase 1 posts events to
POST /v1/events at a fixed rate and measures, per event, the time from just before
its POST to the moment the worker's push made its effect visible in the online store
(the push returns after Redis acknowledged the write). Phase 2 fills the stream with
events and measures how many events per second one worker drains (every event another
user, then 5 in a row per user), and two workers sharing the consumer group in the
worst case. Prints p50/p99 freshness and events/s and writes
benchmarks/results/streaming.json.
Needs `redis-server` on PATH and PostgreSQL (TAILOR_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import queue
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np

from feature_repo.store import open_store
from pipelines.apply import apply_definitions
from pipelines.streaming.wiring import session_processor
from pipelines.streaming.worker import BatchStats, StreamWorker, stream_id
from tailor.core.clients import redis_client
from tailor.core.event_stream import redis_stream_bus
from tailor.core.events import Event
from tailor.core.settings import TailorSettings
from tests.support.services import scratch_database, start_api, start_private_redis

RESULTS = Path(__file__).resolve().parent / "results" / "streaming.json"
CATEGORIES = ("books", "toys", "sports", "beauty", "electronics")
KINDS = ("view", "view", "view", "add_to_cart", "view")


def _event(n: int, users: int, prefix: str, moment: datetime, run: int = 1) -> dict:
    """Event n of a stream where each user sends `run` events in a row, users in turn."""
    user = (n // run) % users
    return {
        "event_id": f"{prefix}-{n}",
        "user_id": 1 + user,
        "session_id": f"{prefix}-s{user}",
        "event_type": KINDS[n % len(KINDS)],
        "item_id": n % 500,
        "category": CATEGORIES[n % len(CATEGORIES)],
        "price": 19.9,
        "device": "mobile",
        "country": "DE",
        "ts": moment.isoformat(),
    }


def _env(settings: TailorSettings) -> dict[str, str]:
    return {
        **os.environ,
        "TAILOR_PROFILE": "redis",
        "TAILOR_DATA_DIR": str(settings.data_dir),
        "TAILOR_SERVERS__REDIS_URL": settings.servers.redis_url,
        "TAILOR_SERVERS__REGISTRY_URL": settings.servers.registry_url,
    }


def _run_worker(settings_json: str, stats: mp.Queue, stop: mp.Event) -> None:
    """The worker process: the same StreamWorker `tailor stream` runs, reporting batches."""
    settings = TailorSettings.model_validate_json(settings_json)
    name = f"bench-{os.getpid()}"
    worker = StreamWorker(
        redis_client(settings),
        settings.stream,
        session_processor(settings, open_store(settings), name),
        name,
        on_batch=lambda batch: stats.put(batch),
    )
    stopping = threading.Event()
    threading.Thread(target=lambda: (stop.wait(), stopping.set()), daemon=True).start()
    worker.run(stopping)


def _start_worker(settings: TailorSettings) -> tuple[mp.Process, mp.Queue, mp.Event]:
    context = mp.get_context("spawn")
    stats, stop = context.Queue(), context.Event()
    process = context.Process(target=_run_worker, args=(settings.model_dump_json(), stats, stop))
    process.start()
    return process, stats, stop


def _drain(stats: mp.Queue, timeout: float) -> list[BatchStats]:
    batches = []
    try:
        while True:
            batches.append(stats.get(timeout=timeout))
    except queue.Empty:
        return batches


def freshness_phase(settings: TailorSettings, rate: int, seconds: float, per_post: int) -> dict:
    api = start_api(_env(settings))
    worker, stats, stop = _start_worker(settings)
    sent_at: dict[str, float] = {}
    post_ms: list[float] = []
    try:
        time.sleep(8)  # the worker process imports Feast (~5 s) before it reads
        total = int(rate * seconds)
        interval = per_post / rate
        with httpx.Client(base_url=api.url, timeout=10) as client:
            # Warm-up, not measured: the first pushes pay Feast's one-time set-up.
            for n in range(0, 2 * rate, per_post):
                warm = [_event(n + i, 5000, "warm", datetime.now(UTC)) for i in range(per_post)]
                client.post("/v1/events", json=warm).raise_for_status()
                time.sleep(interval)
            _drain(stats, timeout=1.0)
            started = time.perf_counter()
            for offset in range(0, total, per_post):
                due = started + (offset // per_post) * interval
                time.sleep(max(0.0, due - time.perf_counter()))
                moment = datetime.now(UTC)
                batch = [_event(offset + i, 5000, "fresh", moment) for i in range(per_post)]
                now = time.time()
                for event in batch:
                    sent_at[event["event_id"]] = now
                response = client.post("/v1/events", json=batch)
                post_ms.append((time.time() - now) * 1000)
                response.raise_for_status()
        achieved_rate = total / (time.perf_counter() - started)
        batches = _drain(stats, timeout=3.0)
    finally:
        stop.set()
        worker.join(timeout=30)
        api.stop()
    freshness = [
        (batch.pushed_at - sent_at[event_id]) * 1000
        for batch in batches
        for event_id in batch.event_ids
        if event_id in sent_at
    ]
    # Where the time goes: the POST itself, and stream entry (XADD) to visible.
    in_stream_ms = [
        batch.pushed_at * 1000 - stream_id(entry_id)[0]
        for batch in batches
        for entry_id in batch.entry_ids
    ]
    return {
        "target_events_per_s": rate,
        "achieved_events_per_s": achieved_rate,
        "events_per_post": per_post,
        "events_measured": len(freshness),
        "events_sent": len(sent_at),
        "p50_ms": float(np.percentile(freshness, 50)),
        "p99_ms": float(np.percentile(freshness, 99)),
        "max_ms": float(np.max(freshness)),
        "post_p50_ms": float(np.percentile(post_ms, 50)),
        "post_p99_ms": float(np.percentile(post_ms, 99)),
        "stream_to_visible_p50_ms": float(np.percentile(in_stream_ms, 50)),
        "stream_to_visible_p99_ms": float(np.percentile(in_stream_ms, 99)),
        "batches": len(batches),
    }


def throughput_phase(
    settings: TailorSettings, events: int, users: int, run: int, workers: int = 1
) -> dict:
    bus = redis_stream_bus(settings)
    moment = datetime.now(UTC) - timedelta(minutes=1)
    for offset in range(0, events, 5000):
        chunk = range(offset, min(events, offset + 5000))
        bus.publish(
            [Event.model_validate(_event(n, users, f"load{run}", moment, run)) for n in chunk]
        )
    started = [_start_worker(settings) for _ in range(workers)]
    batches: list[BatchStats] = []
    try:
        progress_at = time.monotonic()
        while sum(len(batch.event_ids) for batch in batches) < events:
            before = len(batches)
            for _, stats, _ in started:
                batches.extend(_drain(stats, timeout=0.05))
            if len(batches) > before:
                progress_at = time.monotonic()
            elif time.monotonic() - progress_at > 120:
                raise RuntimeError("the workers drained nothing for 120 s; see their log above")
    finally:
        for _, _, stop in started:
            stop.set()
        for process, _, _ in started:
            process.join(timeout=60)
    # From the first batch's push to the last: read, state, push; start-up excluded.
    batches.sort(key=lambda batch: batch.pushed_at)
    first, last = batches[0], batches[-1]
    drained = sum(len(batch.event_ids) for batch in batches[1:])
    return {
        "workers": workers,
        "events": events,
        "users": users,
        "events_in_a_row_per_user": run,
        "batch_size": settings.stream.batch_size,
        "seconds": last.pushed_at - first.pushed_at,
        "events_per_s": drained / (last.pushed_at - first.pushed_at),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=2000, help="events/s in phase 1")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--per-post", type=int, default=20, help="events per POST")
    parser.add_argument("--load-events", type=int, default=100_000)
    parser.add_argument("--load-users", type=int, default=20_000)
    args = parser.parse_args()

    redis_server = start_private_redis()
    try:
        with scratch_database() as registry_url, tempfile.TemporaryDirectory() as home:
            settings = TailorSettings(
                profile="redis",
                data_dir=home,
                servers={"redis_url": redis_server.url, "registry_url": registry_url},
            )
            apply_definitions(settings)
            fresh = freshness_phase(settings, args.rate, args.seconds, args.per_post)
            loads = []
            # Every event another user, then sessions of 5 events in a row, with one
            # worker; then the worst case again with two workers sharing the group.
            for run, workers in ((1, 1), (5, 1), (1, 2)):
                stream = settings.stream.model_copy(
                    update={"stream_key": f"bench:load{run}x{workers}"}
                )
                loads.append(
                    throughput_phase(
                        settings.model_copy(update={"stream": stream}),
                        args.load_events,
                        args.load_users,
                        run,
                        workers,
                    )
                )
    finally:
        redis_server.stop()

    result = {
        "benchmark": "streaming",
        "measured_at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "freshness": fresh,
        "worker_throughput": loads,
        "targets": {"p99_freshness_ms_at_2000_per_s": 100, "worker_events_per_s": 10_000},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(
        f"freshness at {fresh['achieved_events_per_s']:.0f} events/s "
        f"({fresh['events_measured']:,} events): p50 {fresh['p50_ms']:.1f} ms, "
        f"p99 {fresh['p99_ms']:.1f} ms, max {fresh['max_ms']:.1f} ms "
        f"(POST p50/p99 {fresh['post_p50_ms']:.1f}/{fresh['post_p99_ms']:.1f} ms, "
        f"stream to visible p50/p99 {fresh['stream_to_visible_p50_ms']:.1f}/"
        f"{fresh['stream_to_visible_p99_ms']:.1f} ms, {fresh['batches']} batches)"
    )
    for load in loads:
        print(
            f"{load['workers']} worker(s): {load['events_per_s']:,.0f} events/s over "
            f"{load['events']:,} events "
            f"of {load['users']:,} users, {load['events_in_a_row_per_user']} in a row per user "
            f"(batches of {load['batch_size']})"
        )
    print(f"-> {RESULTS}")


if __name__ == "__main__":
    main()
