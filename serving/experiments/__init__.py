"""Experiments: declared beside the placements, assigned GrowthBook's way, and analysed
with honest statistics (`statistics`) into per-arm results (`results`)."""
