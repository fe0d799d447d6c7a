"""Assignment: GrowthBook's buckets, stable as coverage grows, sticky through weight
changes and stopped arms (first exposures in real databases), and a holdout that joins
no experiment."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import yaml
from growthbook import Experiment as GrowthBookExperiment
from growthbook import GrowthBook
from sqlalchemy import event, make_url

from serving.decision.engine import DecisionEngine
from serving.decision.placements import SHIPPED_PLACEMENTS_FILE, LoadedPlacements, load_placements
from serving.experiments.assignment import Exposure, allocate, arm_by_hash, in_holdout
from serving.persistence.assignments import AssignmentStore
from serving.persistence.bounded_calls import DatabaseTooSlow
from serving.persistence.durable_writer import WriterOptions
from tailor.core.database.engine import open_database
from tests.support.services import scratch_database
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_for

SYMBOLS = DecisionEngine.symbols_for(None)
MOMENT = datetime(2026, 3, 4, 10, tzinfo=UTC)
USERS = range(1, 10_001)
BUDGET = 30.0  # seconds a lookup may take: generous, these tests are not about outages


def _loaded(tmp_path, **experiment) -> LoadedPlacements:
    document = yaml.safe_load(SHIPPED_PLACEMENTS_FILE.read_text())
    document["experiments"] = [
        {
            "key": "exp",
            "placement": "homepage_banner",
            "status": "running",
            "arms": [{"key": "a"}, {"key": "b"}, {"key": "c", "weight": 2}],
        }
        | experiment
    ]
    path = tmp_path / "placements.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_placements(path, SYMBOLS)


def test_arms_are_the_ones_growthbooks_sdk_picks_for_10000_users(tmp_path):
    plan = _loaded(
        tmp_path,
        coverage=0.8,
        seed="seed-1",
        namespace={"name": "homepage", "range": [0.1, 0.9]},
    ).experiments["exp"]
    reference = GrowthBookExperiment(
        key="exp",
        variations=[0, 1, 2],
        weights=[0.25, 0.25, 0.5],
        coverage=0.8,
        namespace=("homepage", 0.1, 0.9),
        hashVersion=2,
        seed="seed-1",
    )
    ours, theirs = [], []
    for user in USERS:
        arm, bucket = arm_by_hash(plan, user)
        ours.append(None if arm is None else plan.arms.index(arm))
        result = GrowthBook(attributes={"id": str(user)}).run(reference)
        theirs.append(result.variationId if result.inExperiment else None)
        if result.inExperiment:
            assert bucket == pytest.approx(result.bucket, abs=1e-12)
    assert ours == theirs
    counts = Counter(ours)
    assert 0.3 < counts[None] / len(USERS) < 0.45  # outside the namespace or the coverage


def test_growing_coverage_never_moves_anyone(tmp_path):
    half = _loaded(tmp_path, coverage=0.5).experiments["exp"]
    most = _loaded(tmp_path, coverage=0.8).experiments["exp"]
    before = {user: arm_by_hash(half, user)[0] for user in USERS}
    after = {user: arm_by_hash(most, user)[0] for user in USERS}
    assigned = [user for user, arm in before.items() if arm is not None]
    assert len(assigned) > 4000
    assert all(after[user].arm.key == before[user].arm.key for user in assigned)
    assert sum(arm is not None for arm in after.values()) > len(assigned)


@pytest.fixture
def store(database_url: str, tmp_path) -> Iterator[AssignmentStore]:
    engine = open_database(database_url)
    store = AssignmentStore(
        engine, WriterOptions(tmp_path, flush_seconds=0.05, batch_size=100), BUDGET
    )
    yield store
    store.close()
    engine.dispose()


def _expose(store: AssignmentStore, loaded: LoadedPlacements, users: range) -> dict[int, str]:
    placement = loaded.config.placements["homepage_banner"]
    plans = loaded.experiments_on("homepage_banner")
    arms = {}
    for user in users:
        allocation = allocate("homepage_banner", placement, plans, user, MOMENT, store)
        if allocation.arm is None:
            continue
        arms[user] = allocation.arm.arm.key
        if not allocation.sticky:
            store.remember(
                Exposure("exp", user, arms[user], allocation.bucket, loaded.version, MOMENT, 0.0)
            )
    return arms


def test_a_weight_change_or_a_stopped_arm_never_moves_an_exposed_user(store, tmp_path):
    exposed = _expose(store, _loaded(tmp_path, seed=f"s-{tmp_path.name}"), range(1, 2001))
    assert store.flush()
    reweighted = _loaded(
        tmp_path,
        seed=f"s-{tmp_path.name}",
        arms=[{"key": "a", "weight": 5}, {"key": "b", "stopped": True}, {"key": "c"}],
    )
    again = _expose(store, reweighted, range(1, 4001))
    assert {user: again[user] for user in exposed} == exposed
    newcomers = Counter(again[user] for user in range(2001, 4001))
    assert newcomers["b"] == 0 and newcomers["a"] > 3 * newcomers["c"]


def test_a_shadow_arm_takes_nobody_not_even_a_user_once_exposed_to_it(store, tmp_path):
    seed = f"s-{tmp_path.name}"
    exposed = _expose(store, _loaded(tmp_path, seed=seed), range(1, 2001))
    assert store.flush()
    shadowed = _loaded(
        tmp_path,
        seed=seed,
        arms=[{"key": "a"}, {"key": "b", "shadow": True}, {"key": "c", "weight": 2}],
    )
    again = _expose(store, shadowed, range(1, 4001))
    assert "b" not in again.values()
    assert {u: again[u] for u in exposed if exposed[u] != "b"} == {
        u: arm for u, arm in exposed.items() if arm != "b"
    }
    assert len(again) == 4000  # the shadow's former users are re-hashed into a live arm


def test_a_restarted_process_reads_the_first_exposure_from_the_database(
    store, tmp_path, database_url
):
    loaded = _loaded(tmp_path, seed=f"r-{tmp_path.name}")
    exposed = _expose(store, loaded, range(1, 301))
    assert store.flush()
    engine = open_database(database_url)
    fresh = AssignmentStore(engine, WriterOptions(tmp_path / "other", flush_seconds=0.05), BUDGET)
    try:
        assert all(fresh.arm_of("exp", user) == arm for user, arm in exposed.items())
        assert fresh.arm_of("exp", 10**9) is None
    finally:
        fresh.close()
        engine.dispose()


def test_a_user_without_an_arm_costs_one_lookup_per_process(database_url, tmp_path):
    """Users the coverage leaves out are asked about on every decision: the answer
    "none" is remembered like an arm."""
    engine = open_database(database_url)
    lookups: list[str] = []

    def count(_conn, _cursor, statement: str, *_args) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "tailor_assignments" in statement:
            lookups.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    store = AssignmentStore(engine, WriterOptions(tmp_path, flush_seconds=0.05), BUDGET)
    try:
        for _ in range(5):
            assert store.arm_of("exp", 10**9 + 1) is None
        store.remember(Exposure("exp", 10**9 + 1, "b", 0.5, "v", MOMENT, None))
        assert store.arm_of("exp", 10**9 + 1) == "b"
        assert store.flush()
    finally:
        store.close()
        engine.dispose()
    assert len(lookups) == 1


def test_the_holdout_gets_no_experiment(tmp_path):
    loaded = _loaded(tmp_path)
    placement = loaded.config.placements["homepage_banner"].model_copy(update={"holdout": 0.05})
    plans = loaded.experiments_on("homepage_banner")
    held = [user for user in USERS if in_holdout("homepage_banner", placement, user)]
    assert 0.04 < len(held) / len(USERS) < 0.06
    for user in held:
        allocation = allocate("homepage_banner", placement, plans, user, MOMENT, None)
        assert allocation.holdout and allocation.arm is None


def test_an_experiment_outside_its_dates_or_not_running_assigns_nobody(tmp_path):
    ended = _loaded(tmp_path, end="2026-03-01T00:00:00Z")
    draft = _loaded(tmp_path, status="draft")
    for loaded in (ended, draft):
        placement = loaded.config.placements["homepage_banner"]
        allocation = allocate(
            "homepage_banner", placement, loaded.experiments_on("homepage_banner"), 7, MOMENT, None
        )
        assert allocation.arm is None and not allocation.holdout


def test_a_frozen_database_costs_a_lookup_its_budget_and_then_nothing(tmp_path):
    """PostgreSQL's driver has no read timeout: without the budget a frozen server would
    hold every decision of a running experiment."""
    with scratch_database() as url:
        address = make_url(url)
        proxy = TcpProxy((address.host, address.port))
        engine = open_database(address.set(port=proxy.port).render_as_string(False))
        store = AssignmentStore(engine, WriterOptions(tmp_path, flush_seconds=0.05), 0.2)
        try:
            assert store.arm_of("exp", 1) is None  # connected: the pool holds a connection
            proxy.freeze()
            for user in range(2, 6):  # each waits its budget, holding one lookup slot
                with pytest.raises(DatabaseTooSlow, match=r"within 0\.2 s"):
                    store.arm_of("exp", user)
            with pytest.raises(DatabaseTooSlow, match="still waiting"):
                store.arm_of("exp", 6)  # every slot taken: refused without waiting
            proxy.thaw()

            def answers() -> bool:
                try:
                    return store.arm_of("exp", 7) is None
                except DatabaseTooSlow:
                    return False

            wait_for(answers, "lookups to answer once the database does", 30)
        finally:
            proxy.thaw()
            store.close()
            engine.dispose()
            proxy.cut()
