"""Follow the champion: when `models/latest` names another version, load it and swap.

The new model is loaded whole (booster, metadata, calibration) before the engine's
reference moves, and a decision reads that reference once, so no request sees half a
model or two models. A version that fails to load, or reads another feature service,
is rejected: the running model stays, and the rejection is kept for the reload's
answer and counted in `tailor_model_reloads_total{outcome="rejected"}`.

Polling a symlink every few seconds costs one readlink and, unlike file events, also
works on the network volumes a models folder is usually shared on.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from serving.decision.engine import DecisionEngine, IncompatibleModel
from serving.metrics import MODEL_RELOADS
from tailor.core.model_artifact import ModelNotFoundError, load_artifact
from tailor.core.model_registry import champion_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelReload:
    outcome: str  # "swapped", "unchanged" or "rejected"
    version: str | None  # the version serving afterwards
    previous: str | None
    error: str | None = None


class ModelReloader:
    def __init__(self, engine: DecisionEngine, models_dir: Path, poll_seconds: float) -> None:
        self.engine = engine
        self.models_dir = models_dir
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._rejected: str | None = None  # a version that failed; retried when it changes
        self._thread: threading.Thread | None = None

    def reload(self) -> ModelReload:
        """Swap to the champion `latest` names, if it is not the one serving."""
        with self._lock:
            serving = self.engine.model.version if self.engine.model else None
            target = champion_version(self.models_dir)
            if target is None or target == serving:
                MODEL_RELOADS.labels("unchanged").inc()
                return ModelReload("unchanged", serving, serving)
            try:
                model = load_artifact(self.models_dir, target)
                self.engine.swap_model(model)
            except (ModelNotFoundError, IncompatibleModel, ValueError, KeyError, OSError) as error:
                MODEL_RELOADS.labels("rejected").inc()
                if self._rejected != target:
                    log.error("model %s rejected; %s keeps serving: %s", target, serving, error)
                self._rejected = target
                return ModelReload("rejected", serving, serving, f"{target}: {error}")
            self._rejected = None
            MODEL_RELOADS.labels("swapped").inc()
            log.info("model %s now serving (was %s)", target, serving)
            return ModelReload("swapped", target, serving)

    @property
    def rejected(self) -> str | None:
        """The promoted version this process refused to serve, until one loads."""
        return self._rejected

    def watch(self) -> None:
        """Poll in a daemon thread until `close`."""
        self._thread = threading.Thread(target=self._poll, name="model-reloader", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            if champion_version(self.models_dir) == self._rejected:
                continue  # already refused; wait for the next promotion
            try:
                self.reload()
            except Exception:  # the poller must outlive any surprise
                log.exception("model reload failed")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_seconds + 1)
