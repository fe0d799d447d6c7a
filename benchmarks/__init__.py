"""Performance benchmarks, run as modules from the repository root:
`python -m benchmarks.serving` (as a script, `serving.py` would shadow the package)."""
