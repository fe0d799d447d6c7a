"""Register Tailor's feature definitions with the store (what `feast apply` does)."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

from feast import FileSource

from feature_repo import DEFINITIONS
from feature_repo.store import open_store
from pipelines.streaming.feature_push import ensure_session_log
from tailor.core.settings import TailorSettings


@dataclass(frozen=True)
class ApplyReport:
    objects: dict[str, int]
    seconds: float


def anchored_definitions(data_dir: Path) -> list:
    """The definitions with mart paths made absolute under `data_dir`.

    Definitions keep paths relative so one repo serves any data directory, but
    Feast's DuckDB offline store resolves relative paths against the working
    directory, not the repo path; the registry therefore gets absolute ones.
    """
    definitions = copy.deepcopy(DEFINITIONS)  # one memo: views keep sharing their sources
    for definition in definitions:
        sources = [definition] if isinstance(definition, FileSource) else []
        sources += [getattr(definition, "batch_source", None)]
        for source in sources:
            if isinstance(source, FileSource) and not Path(source.path).is_absolute():
                source.file_options.uri = str(data_dir / source.path)
    return definitions


def apply_definitions(settings: TailorSettings) -> ApplyReport:
    started = time.perf_counter()
    store = open_store(settings)
    ensure_session_log(settings.session_log_dir)
    definitions = anchored_definitions(settings.data_dir)
    store.apply(definitions)
    counts: dict[str, int] = {}
    for definition in definitions:
        kind = type(definition).__name__
        counts[kind] = counts.get(kind, 0) + 1
    return ApplyReport(objects=counts, seconds=time.perf_counter() - started)
