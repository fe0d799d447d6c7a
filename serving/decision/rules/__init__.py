"""Rules: configuration, compilation, evaluation, conflict resolution and stats."""
