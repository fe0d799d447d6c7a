"""The decision logic: placements, scoring, rules, triggers and the engine. No FastAPI
and no SQL: storage comes in through `ports`."""
