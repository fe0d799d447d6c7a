"""The kernel: settings, clock, the canonical event schema and its stream, durations,
model artifacts, run records, Redis clients and the decision database. It imports
nothing else of the project, so `serving` and `pipelines` can both build on it."""
