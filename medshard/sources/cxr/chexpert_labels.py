"""The 14 CheXpert observations and their uncertainty policy, shared by CheXpert and MIMIC-CXR.

MIMIC-CXR-JPG's `mimic-cxr-2.0.0-chexpert.csv.gz` (and `-negbio.csv.gz`) carry the same 14
observations as CheXpert's `train.csv`/`valid.csv`, with the same cell values: 1.0
(positive), 0.0 (negative), -1.0 (uncertain), blank (not mentioned); the MIMIC-CXR-JPG
paper (Johnson et al. 2019) labelled its reports with the CheXpert labeller itself. Both
sources read their cells and turn them into classes through this module, so the same row
gives the same unified labels in both (tests/test_mimic_cxr.py checks it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field

OBSERVATIONS: tuple[str, ...] = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion",
    "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
    "Pleural Other", "Fracture", "Support Devices",
)

UncertainPolicy = Literal["negative", "positive"]


def uncertain_option() -> object:
    """The `uncertain` option's field, one definition for every source using these labels."""
    return Field(
        "negative", description="uncertain (-1) labels count as negative (U-Zeros) or "
        "positive (U-Ones) in the unified labels; source_labels keep -1 either way",
    )


def label_cell(text: str) -> str:
    """The label cell as written ("1.0", "0.0", "-1.0", "" for blank), checked.

    Kept as text, so every label is one JSON type in every sample (a blank is "", not a
    null that readers inferring a schema from the first samples would type as null).
    """
    text = text.strip()
    if text and float(text) not in (1.0, 0.0, -1.0):
        raise ValueError(f"label value {text!r} is not 1, 0, -1 or blank")
    return text


def observation_cells(row: Mapping[str, str | None]) -> dict[str, str]:
    """The 14 observation cells of an index row (by column name), checked; a column the
    row lacks reads as blank."""
    return {name: label_cell(row.get(name) or "") for name in OBSERVATIONS}


def observation_classes(cells: Mapping[str, str], uncertain: UncertainPolicy) -> list[str]:
    """The observations that count as positive under the uncertainty policy, in
    OBSERVATIONS order: 1 always; -1 only with "positive" (U-Ones); 0 and blank never."""
    positive = {1.0, -1.0} if uncertain == "positive" else {1.0}
    return [name for name in OBSERVATIONS if cells.get(name) and float(cells[name]) in positive]
