"""The `tailor` entry point. Importing a command module registers its commands."""

from tailor.cli import db_commands, demo, pipeline_commands, serving_commands  # noqa: F401
from tailor.cli.app import app

if __name__ == "__main__":
    app()
