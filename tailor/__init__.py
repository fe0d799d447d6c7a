"""Tailor: the kernel both halves share (`tailor.core`) and the CLI that composes them
(`tailor.cli`). Dependency rule: `tailor.core` imports no other project code;
`feature_repo` imports only the kernel; `pipelines` and `serving` import the kernel and
`feature_repo`, never each other; only `tailor.cli` imports both."""
