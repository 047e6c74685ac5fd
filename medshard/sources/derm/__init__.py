"""Dermatology sources (ISIC 2020, HAM10000, PAD-UFES-20): photographs with CSV labels."""
