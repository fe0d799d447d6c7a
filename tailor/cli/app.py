"""The `tailor` Typer app and what every command shares: the console, settings, errors."""

from __future__ import annotations

import getpass
import logging
import socket
import sys
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from tailor.core.settings import TailorSettings

app = typer.Typer(
    help="Tailor: real-time personalization on a Feast feature store.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
# Piped output (CI logs, `| tee`) gets a wide console so decision tables stay readable.
console = Console(width=None if sys.stdout.isatty() else 160)


def load_settings() -> TailorSettings:
    try:
        return TailorSettings()
    except (ValidationError, FileNotFoundError) as error:
        console.print(f"[red]invalid settings[/red] (TAILOR_* variables or tailor.yaml):\n{error}")
        raise typer.Exit(2) from error


def fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


# Who ran a command that changes the champion, for the model ledger.
Actor = Annotated[
    str | None, typer.Option("--by", help="Who makes the change (default: user@host).")
]


def default_actor(given: str | None) -> str:
    if given is not None and not given.strip():
        raise fail("--by must not be empty")
    return given.strip() if given else f"{getpass.getuser()}@{socket.gethostname()}"


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
