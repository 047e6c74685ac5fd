"""MRI sources (2-D slices as the datasets ship them)."""
