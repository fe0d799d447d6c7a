"""Alembic's entry point for Tailor's decision database.

Tailor runs migrations itself (`tailor db upgrade`, or at start-up), always on a
connection it opened and locked (see `tailor.core.database.migrations`), which arrives
in `config.attributes["connection"]`. Only `tailor_*` tables are Tailor's: on the redis
profile the database also holds Feast's registry, which autogenerate must not touch.
"""

from __future__ import annotations

from alembic import context

from tailor.core.database.schema import TABLE_PREFIX, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "Tailor's migrations run through `tailor db upgrade` (or at start-up), not the "
        "alembic command line: they need the connection and lock Tailor provides"
    )


def _is_tailors(name: str | None, type_: str, _parent_names: object) -> bool:
    return type_ != "table" or (name or "").startswith(TABLE_PREFIX)


context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=context.config.attributes["version_table"],
    include_name=_is_tailors,
    render_as_batch=True,  # SQLite alters a table by copying it
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
