"""Open the Feast store for the active profile: the one door both serving and pipelines use.

The profile's YAML is the declarative source; `${...}` placeholders are filled from
the typed settings (so credentials and URLs live in one place), and the data
directory is the repo path so relative registry, online-store and mart paths resolve
under it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from string import Template
from urllib.parse import urlparse

import yaml
from feast import FeatureStore, RepoConfig

from tailor.core.settings import TailorSettings

# Feast and ibis warn about their own internals on every call, and Feast installs
# "once" filters when imported, so ours must come after that import to take effect.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(feast|ibis)\.")
warnings.filterwarnings("ignore", message="On demand feature view is an experimental")

# Shipped beside this module (package data), so an installed Tailor finds them too.
_HERE = Path(__file__).resolve().parent
PROFILE_FILES: dict[str, Path] = {
    "embedded": _HERE / "feature_store.yaml",
    "redis": _HERE / "profiles" / "redis.yaml",
}


def redis_connection_string(url: str, timeout_seconds: float) -> str:
    """Translate a redis:// URL into Feast's `host:port,db=N,password=...` form.

    Socket timeouts go along so a dead Redis fails fast instead of hanging a read.
    """
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss"):
        raise ValueError(f"servers.redis_url must start with redis:// or rediss://, got {url!r}")
    parts = [f"{parsed.hostname or '127.0.0.1'}:{parsed.port or 6379}"]
    database = parsed.path.lstrip("/")
    if database:
        parts.append(f"db={database}")
    if parsed.password:
        parts.append(f"password={parsed.password}")
    if parsed.scheme == "rediss":
        parts.append("ssl=true")
    parts += [f"socket_timeout={timeout_seconds}", f"socket_connect_timeout={timeout_seconds}"]
    return ",".join(parts)


def repo_config(settings: TailorSettings) -> RepoConfig:
    template = Template(PROFILE_FILES[settings.profile].read_text())
    ttl = settings.servers.key_ttl_seconds
    rendered = template.substitute(
        project=settings.project,
        registry_url=settings.servers.registry_url,
        redis_connection_string=redis_connection_string(
            settings.servers.redis_url, settings.servers.redis_timeout_seconds
        ),
        key_ttl_seconds="null" if ttl is None else str(ttl),
    )
    config = RepoConfig(**yaml.safe_load(rendered))
    config.repo_path = settings.data_dir
    return config


def open_store(settings: TailorSettings) -> FeatureStore:
    settings.feature_store_dir.mkdir(parents=True, exist_ok=True)
    # Feast resolves the file registry against its own repo_path (default: the working
    # directory), not the config's, so both must name the data directory.
    return FeatureStore(repo_path=str(settings.data_dir), config=repo_config(settings))
