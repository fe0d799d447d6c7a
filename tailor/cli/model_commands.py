"""`tailor models list|history|promote|rollback`: the champion and its ledger.

Every change names who made it (`--by`, default user@host) and why (`--reason`,
required), so the ledger answers "why is this model serving?" months later.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tailor.cli.app import Actor, app, console, default_actor, fail, load_settings
from tailor.core.model_registry import RegistryError, ledger, list_models, promote, rollback

models = typer.Typer(help="Model versions: list, promote, roll back.", no_args_is_help=True)
app.add_typer(models, name="models")

Reason = Annotated[
    str, typer.Option("--reason", help="Why, for the ledger, e.g. 'incident 42: scores drift'.")
]


def _required(reason: str) -> str:
    if not reason.strip():
        raise fail("--reason must say why (it is kept in the ledger)")
    return reason.strip()


@models.command("list")
def list_versions() -> None:
    """Every model version, newest first, with its test metrics and standing."""
    settings = load_settings()
    summaries = list_models(settings.models_dir)
    if not summaries:
        console.print(f"no models in {settings.models_dir}; run `tailor train`")
        return
    table = Table("version", "status", "created", "auc", "logloss")
    for summary in summaries:
        table.add_row(
            summary.version,
            f"[bold green]{summary.status}[/]" if summary.champion else summary.status,
            summary.created_at or "",
            f"{summary.metrics['auc']:.4f}" if "auc" in summary.metrics else "",
            f"{summary.metrics['logloss']:.4f}" if "logloss" in summary.metrics else "",
        )
    console.print(table)


@models.command()
def history() -> None:
    """The ledger: every promotion, rollback and rejected challenger, oldest first."""
    settings = load_settings()
    entries = ledger(settings.models_dir)
    if not entries:
        console.print("the ledger is empty: no model has been promoted through the registry")
        return
    table = Table("when", "action", "version", "previous", "by", "why")
    for entry in entries:
        table.add_row(
            entry.at.isoformat(timespec="seconds"),
            entry.action,
            entry.version,
            entry.previous or "",
            entry.actor,
            entry.reason,
        )
    console.print(table)


@models.command("promote")
def promote_version(
    version: Annotated[str, typer.Argument(help="The version to serve, from `models list`.")],
    reason: Reason,
    by: Actor = None,
) -> None:
    """Make VERSION the champion now, without the gate (the ledger records who and why).
    Running APIs pick it up within serving.model_poll_seconds."""
    settings = load_settings()
    try:
        entry = promote(
            settings.models_dir,
            version,
            actor=default_actor(by),
            reason=_required(reason),
            at=settings.clock.now(),
        )
    except RegistryError as error:
        raise fail(str(error)) from error
    console.print(f"champion: {entry.version} (was {entry.previous or 'none'})")


@models.command("rollback")
def rollback_champion(reason: Reason, by: Actor = None) -> None:
    """Serve the champion the current one replaced."""
    settings = load_settings()
    try:
        entry = rollback(
            settings.models_dir,
            actor=default_actor(by),
            reason=_required(reason),
            at=settings.clock.now(),
        )
    except RegistryError as error:
        raise fail(str(error)) from error
    console.print(f"champion: {entry.version} (rolled back from {entry.previous})")
