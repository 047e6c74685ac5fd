"""Brain-network sources: one connectome graph per subject (ABIDE, ABCD, PPMI)."""
