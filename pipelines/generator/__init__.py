"""Internals of the synthetic clickstream; `pipelines.generate` is the entry point.

The modules follow the simulation's layers: a fixed `catalogue`, a `population` of
latent user traits, the `state` a daily batch feature pipeline could see at midnight,
the `behaviour` model turning that state into purchase probabilities, one simulated
`day` of sessions and events, and the Arrow `tables` written to Parquet.
"""
