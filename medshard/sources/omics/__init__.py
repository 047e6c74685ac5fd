"""Omics sources: gene expression (bulk, single-cell, GEO series, TCGA)."""
