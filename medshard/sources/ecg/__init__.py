"""ECG sources."""
