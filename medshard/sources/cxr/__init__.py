"""Chest X-ray sources delivered as DICOM (VinDr-CXR, ...); pixels and metadata via `sources.dicom`."""
