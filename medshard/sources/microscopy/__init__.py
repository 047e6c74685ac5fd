"""Light-microscopy sources outside tissue histology: segmented blood-smear cells (NIH malaria).

A folder of its own (not `pathology/`): the samples are single cells cut from thin blood
smears, with per-cell labels and smear/patient naming, not tissue tiles; the modality
stays "pathology" (hematopathology) so the label mask and cards treat it as microscopy.
"""
