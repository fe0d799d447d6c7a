"""The decision database: decisions, triggers and opt-outs, owned by Alembic migrations."""
