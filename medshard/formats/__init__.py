"""File-format readers shared by sources: DICOM, WFDB, AVI, ... They know nothing of datasets."""
