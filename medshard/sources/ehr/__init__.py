"""Electronic health record sources (MIMIC-IV)."""
