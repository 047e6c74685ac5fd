"""File-format readers shared by sources: DICOM, WFDB, EDF, NIfTI, AVI, ... They know nothing of datasets."""
