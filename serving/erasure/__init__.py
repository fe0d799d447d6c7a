"""Erasing a user: everything Tailor keeps about them, store by store (online features,
live session state, the decision database), on request of `DELETE /v1/users/{id}`."""
