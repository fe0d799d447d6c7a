"""The response model's training: logged decisions joined with their outcomes, weighted
by the inverse of the logging policy's probability, fitted per target, saved."""
