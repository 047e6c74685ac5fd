"""Pathology sources: H&E image tiles (LC25000) and tiles cut from annotated regions (BCSS)."""
