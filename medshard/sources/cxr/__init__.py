"""Chest X-ray sources (CheXpert, VinDr-CXR, ...); DICOM pixels and metadata via `formats.dicom`."""
