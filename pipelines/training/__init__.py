"""Training: labels from events, point-in-time features from Feast, LightGBM."""
