"""Where serving keeps things: the decision log, the trigger outbox and its dispatcher,
opt-outs, and the local spools that outlive a database outage."""
