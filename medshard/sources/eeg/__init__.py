"""EEG sources: the TUH EEG corpora (TUAB, TUEV) and their shared EDF reading and montage."""
