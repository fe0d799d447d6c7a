"""The `tailor` command: the one place that composes `pipelines` and `serving`."""
