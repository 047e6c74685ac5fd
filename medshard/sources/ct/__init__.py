"""CT sources (volumes)."""
