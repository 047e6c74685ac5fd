"""Video sources (surgical video)."""
