"""`tailor db`: the decision database's schema, for operators who migrate explicitly
(`decisions.auto_migrate=false`) or want to see where a database stands."""

from __future__ import annotations

import typer

from tailor.cli.app import app, console, fail, load_settings

db = typer.Typer(help="The decision database: schema status and migrations.", no_args_is_help=True)
app.add_typer(db, name="db")


def _engine():
    from tailor.core.database.engine import database_engine

    return database_engine(load_settings().decision_database_url)


@db.command()
def status() -> None:
    """The schema's revision and the one this release needs."""
    from sqlalchemy.exc import SQLAlchemyError

    from tailor.core.database.migrations import schema_status

    engine = _engine()
    try:
        state = schema_status(engine)
    except SQLAlchemyError as error:
        raise fail(f"cannot reach the decision database: {error.__cause__ or error}") from error
    finally:
        engine.dispose()
    if state.legacy:
        current = "tables of a release before migrations (no revision)"
    else:
        current = state.current or "empty"
    console.print(
        f"decision database: {current}; this release needs {state.head}"
        + ("" if state.up_to_date else " [yellow](run `tailor db upgrade`)[/yellow]")
    )
    if not state.up_to_date:
        raise typer.Exit(3)


@db.command()
def upgrade() -> None:
    """Migrate the decision database to the schema this release needs."""
    from sqlalchemy.exc import SQLAlchemyError

    from tailor.core.database.migrations import SchemaOutOfDate
    from tailor.core.database.migrations import upgrade as upgrade_schema

    engine = _engine()
    try:
        state = upgrade_schema(engine)
    except SQLAlchemyError as error:
        raise fail(f"cannot reach the decision database: {error.__cause__ or error}") from error
    except SchemaOutOfDate as error:
        raise fail(str(error)) from error
    finally:
        engine.dispose()
    console.print(f"decision database at {state.current} (head)")
