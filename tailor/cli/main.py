"""The `tailor` entry point. Importing a command module registers its commands."""

from tailor.cli import (  # noqa: F401
    db_commands,
    demo,
    experiment_commands,
    model_commands,
    monitor_commands,
    off_policy_commands,
    pipeline_commands,
    response_commands,
    serving_commands,
)
from tailor.cli.app import app

if __name__ == "__main__":
    app()
