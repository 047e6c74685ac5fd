"""Optical coherence tomography sources: retinal OCT B-scans (Kermany 2018).

OCT gets its own modality ("oct"): a cross-section of the retina by interferometry is
neither a fundus photograph nor ultrasound, and its labels (CNV, DME, drusen) are read
from the retina's layers, not from its surface.
"""
