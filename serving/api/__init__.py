"""The HTTP layer: app factory, dependencies, error handlers and routes."""
