"""Live events: validation, the event bus, session state and the stream worker."""
