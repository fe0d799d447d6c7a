"""The running placements configuration, swapped whole on reload.

A decision takes one snapshot at its start, so a reload in the middle of a request
never mixes two versions. A file that fails to load leaves the running version in
force; the failure is kept for `GET /v1/admin/config` and the reload's response.
Editors save by writing a new file and renaming it, so the watcher follows the
directory, not the file's inode.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import watchfiles

from serving.decision.placements import LoadedPlacements, PlacementsConfigError, load_placements
from serving.decision.rules.evaluation import ConfigProblem
from serving.decision.rules.stats import RuleStats
from serving.decision.rules.symbols import SymbolTable
from serving.metrics import CONFIG_RELOADS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConfigSnapshot:
    placements: LoadedPlacements
    stats: RuleStats
    categories: list[str]
    loaded_at: datetime

    @property
    def version(self) -> str:
        return self.placements.version


@dataclass(frozen=True)
class ReloadOutcome:
    outcome: str  # "reloaded", "unchanged" or "rejected"
    version: str  # the version in force afterwards
    problems: list[ConfigProblem]


def _snapshot(placements: LoadedPlacements) -> ConfigSnapshot:
    config = placements.config.placements
    categories = sorted(
        {v.category for p in config.values() for v in p.variants if v.category is not None}
    )
    rules = {  # an experiment arm's rule set counts under the same placement
        name: list(
            dict.fromkeys(
                rule.id
                for rules in (placement.rules, *placement.rule_sets.values())
                for rule in rules
            )
        )
        for name, placement in config.items()
    }
    return ConfigSnapshot(
        placements, RuleStats(placements.version, rules), categories, datetime.now(UTC)
    )


class PlacementsHolder:
    def __init__(self, path: Path, symbols: SymbolTable) -> None:
        """Raises PlacementsConfigError: an API must not start on a broken file."""
        self.path = path
        self.symbols = symbols
        self._snapshot = _snapshot(load_placements(path, symbols))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.last_rejection: tuple[datetime, list[ConfigProblem]] | None = None

    @property
    def current(self) -> ConfigSnapshot:
        return self._snapshot

    def reload(self) -> ReloadOutcome:
        with self._lock:
            try:
                loaded = load_placements(self.path, self.symbols)
            except PlacementsConfigError as error:
                self.last_rejection = (datetime.now(UTC), error.problems)
                CONFIG_RELOADS.labels("rejected").inc()
                log.error(
                    "placements reload rejected; %s stays in force: %s", self.current.version, error
                )
                return ReloadOutcome("rejected", self.current.version, error.problems)
            self.last_rejection = None  # the file on disk is valid again
            if loaded.version == self.current.version:
                CONFIG_RELOADS.labels("unchanged").inc()
                return ReloadOutcome("unchanged", loaded.version, [])
            self._snapshot = _snapshot(loaded)
            CONFIG_RELOADS.labels("reloaded").inc()
            log.info("placements %s now in force", loaded.version)
            return ReloadOutcome("reloaded", loaded.version, [])

    def watch(self) -> None:
        """Reload on every change to the file, in a daemon thread, until `close`."""
        self._watcher = threading.Thread(target=self._watch, name="placements-watcher", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        target = self.path.resolve()
        for _ in watchfiles.watch(
            target.parent,
            watch_filter=lambda _change, changed: Path(changed).resolve() == target,
            stop_event=self._stop,
            debounce=200,
            rust_timeout=500,
        ):
            self.reload()

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
