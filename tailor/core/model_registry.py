"""Which model is champion, and the ledger of every change: who, why, when.

The registry is the models folder itself. `latest` names the champion (the API serves
it and picks up a change on its own), and `registry.jsonl` beside it records each
promotion, rollback and rejected challenger, one JSON object per line, appended and
fsynced under a file lock. Keeping both in the folder that holds the artifacts means a
models volume or bucket carries its own history wherever it is mounted.

A rollback returns to the champion the current one replaced, as the ledger tells it,
so it works however the current champion got there, and rolling back twice walks
further back.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from tailor.core.model_artifact import (
    LATEST,
    METADATA_FILE,
    ModelNotFoundError,
    is_version_name,
    load_artifact,
    point_latest_at,
)

LEDGER_FILE = "registry.jsonl"
LOCK_FILE = ".registry.lock"

Action = Literal["promote", "rollback", "reject"]


class RegistryError(ValueError):
    """A registry change that cannot be made; the message says what to do instead."""


@dataclass(frozen=True)
class LedgerEntry:
    at: datetime  # aware
    action: Action
    version: str  # promoted, rolled back to, or rejected
    previous: str | None  # the champion before this change (unchanged by a rejection)
    actor: str
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)  # e.g. the gate's figures

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "at": self.at.isoformat()}, default=str)

    @classmethod
    def from_json(cls, line: str) -> LedgerEntry:
        data = json.loads(line)
        return cls(**{**data, "at": datetime.fromisoformat(data["at"])})


@dataclass(frozen=True)
class ModelSummary:
    version: str
    created_at: str | None
    metrics: dict[str, float]
    champion: bool
    status: str  # champion, retired (was champion), rejected, candidate, or unreadable


def champion_version(models_dir: Path) -> str | None:
    """The version `latest` points at, read without loading the model."""
    try:
        return os.readlink(models_dir / LATEST)
    except (FileNotFoundError, NotADirectoryError):
        return None


def ledger(models_dir: Path) -> list[LedgerEntry]:
    path = models_dir / LEDGER_FILE
    if not path.is_file():
        return []
    return [LedgerEntry.from_json(line) for line in path.read_text().splitlines() if line]


@contextmanager
def _locked(models_dir: Path) -> Iterator[None]:
    """Registry changes one at a time, across processes (a retrain and a person)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    with open(models_dir / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _append(models_dir: Path, entry: LedgerEntry) -> None:
    with open(models_dir / LEDGER_FILE, "a") as handle:
        handle.write(entry.to_json() + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _require_loadable(models_dir: Path, version: str) -> None:
    """Only a model the API can load may become champion: a broken folder would only be
    refused later by every replica."""
    if not is_version_name(version):
        raise RegistryError(
            f"{version!r} is not a model version (letters, digits, '.', '_', '-'; not 'latest')"
        )
    if not (models_dir / version).is_dir():
        known = ", ".join(summary.version for summary in list_models(models_dir)) or "none"
        raise RegistryError(f"no model version {version!r} in {models_dir} (known: {known})")
    try:
        load_artifact(models_dir, version)
    except (ModelNotFoundError, ValueError, KeyError, OSError) as error:
        raise RegistryError(
            f"model {version} cannot be loaded, so it cannot serve: {error}"
        ) from error


def promote(
    models_dir: Path,
    version: str,
    *,
    actor: str,
    reason: str,
    at: datetime,
    evidence: dict[str, Any] | None = None,
) -> LedgerEntry:
    """Make `version` the champion and record it."""
    _require_loadable(models_dir, version)
    with _locked(models_dir):
        return _move_champion(models_dir, "promote", version, actor, reason, at, evidence)


def _move_champion(
    models_dir: Path,
    action: Action,
    version: str,
    actor: str,
    reason: str,
    at: datetime,
    evidence: dict[str, Any] | None,
) -> LedgerEntry:
    """Under the lock. The ledger line is written before the link moves, so a crash in
    between leaves a record of an intended change, never an unrecorded one."""
    previous = champion_version(models_dir)
    if previous == version:
        raise RegistryError(f"{version} is already the champion")
    entry = LedgerEntry(at, action, version, previous, actor, reason, evidence or {})
    _append(models_dir, entry)
    point_latest_at(models_dir, version)
    return entry


def _champion_stack(entries: list[LedgerEntry]) -> list[str]:
    """The champions in force, oldest first: a promotion pushes, a rollback pops back to
    the version it restored."""
    stack: list[str] = []
    for entry in entries:
        if entry.action == "promote":
            if not stack and entry.previous:  # a champion from before the ledger
                stack.append(entry.previous)
            stack.append(entry.version)
        elif entry.action == "rollback":
            while stack and stack[-1] != entry.version:
                stack.pop()
            if not stack:
                stack.append(entry.version)
    return stack


def rollback(models_dir: Path, *, actor: str, reason: str, at: datetime) -> LedgerEntry:
    """Back to the champion the current one replaced."""
    with _locked(models_dir):
        current = champion_version(models_dir)
        if current is None:
            raise RegistryError(f"no champion in {models_dir}; nothing to roll back")
        stack = _champion_stack(ledger(models_dir))
        if not stack or stack[-1] != current:
            raise RegistryError(
                f"{models_dir / LATEST} points at {current}, which the ledger did not make "
                "champion; promote a version by name instead (`tailor models promote VERSION`)"
            )
        if len(stack) < 2:
            raise RegistryError(
                f"the ledger records no champion before {current}; "
                "promote a version by name instead (`tailor models promote VERSION`)"
            )
        _require_loadable(models_dir, stack[-2])
        return _move_champion(models_dir, "rollback", stack[-2], actor, reason, at, None)


def reject(
    models_dir: Path,
    version: str,
    *,
    actor: str,
    reason: str,
    at: datetime,
    evidence: dict[str, Any] | None = None,
) -> LedgerEntry:
    """Keep a challenger that lost, with the reason, so `models list` can show it."""
    with _locked(models_dir):
        entry = LedgerEntry(
            at, "reject", version, champion_version(models_dir), actor, reason, evidence or {}
        )
        _append(models_dir, entry)
        return entry


def list_models(models_dir: Path) -> list[ModelSummary]:
    """Every artifact folder, newest first, with its standing in the ledger."""
    champion = champion_version(models_dir)
    entries = ledger(models_dir)
    served = {entry.version for entry in entries if entry.action != "reject"} | {
        entry.previous for entry in entries if entry.previous
    }
    rejected = {entry.version for entry in entries if entry.action == "reject"}
    summaries = []
    folders = models_dir.iterdir() if models_dir.is_dir() else iter(())
    for folder in folders:
        metadata_file = folder / METADATA_FILE
        if folder.is_symlink() or not metadata_file.is_file():
            continue
        version = folder.name
        try:
            metadata = json.loads(metadata_file.read_text())
        except ValueError:  # listed, so a broken folder is seen, not hidden
            metadata = {}
        if not metadata:
            status = "unreadable"
        elif version == champion:
            status = "champion"
        elif version in served:
            status = "retired"
        elif version in rejected:
            status = "rejected"
        else:
            status = "candidate"
        summaries.append(
            ModelSummary(
                version=version,
                created_at=metadata.get("created_at"),
                metrics={k: float(v) for k, v in metadata.get("metrics", {}).items()},
                champion=version == champion,
                status=status,
            )
        )
    return sorted(summaries, key=lambda summary: summary.version, reverse=True)
