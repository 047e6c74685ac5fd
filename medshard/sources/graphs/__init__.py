"""Graph sources: one graph per sample (TU-format protein graphs, PPI networks)."""
