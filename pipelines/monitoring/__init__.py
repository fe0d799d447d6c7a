"""Model monitoring: the reference profile saved with each model, and `tailor monitor`,
which compares recent decisions with it (PSI), judges the logged propensities against
observed conversions and watches the conversion rate for a change."""
