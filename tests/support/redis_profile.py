"""The flow's data served on the redis profile, for tests that need real servers under
the API: one way to set it up, whichever Redis and registry a test brings."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.flow import Flow, run_tailor, tailor_env


def redis_profile_env(
    flow: Flow, home: Path, redis_url: str, registry_url: str, **overrides: str
) -> dict[str, str]:
    """The flow's marts and model under `home`, served from `redis_url` with the
    registry at `registry_url`: the environment, once `apply` and `materialize` ran."""
    shutil.copytree(flow.data_dir / "marts", home / "data" / "marts")
    env = tailor_env(
        home,
        TAILOR_PROFILE="redis",
        TAILOR_MODELS_DIR=str(flow.models_dir),
        TAILOR_SERVERS__REDIS_URL=redis_url,
        TAILOR_SERVERS__REGISTRY_URL=registry_url,
        **overrides,
    )
    for command in ("apply", "materialize"):
        result = run_tailor(env, command)
        assert result.returncode == 0, f"tailor {command}:\n{result.stdout}\n{result.stderr}"
    return env
