"""What the mammography sources share: a breast's views as the image roles of one sample.

A screening exam images each breast in two standard views, cranio-caudal (CC) and
medio-lateral oblique (MLO). A sample is one breast: role `cc` and role `mlo`, each an
image payload at native size and bit depth (`medshard.formats.dicom.read_image`: modality
LUT applied losslessly, MONOCHROME1 inverted to MONOCHROME2 by default), whose descriptor
says its `view` and `laterality` as the dataset's index gives them. Every sample of a
source carries the same roles (one JSON and Parquet shape per source), so a breast that
lacks one of its views is filtered with `INCOMPLETE_BREAST` as the reason, never dropped
silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medshard.formats.dicom import read_image
from medshard.schemas import Filtered, Payload, RecordError

VIEW_ROLES: dict[str, str] = {"CC": "cc", "MLO": "mlo"}
ROLES: tuple[str, ...] = ("cc", "mlo")
INCOMPLETE_BREAST = "breast without both a CC and an MLO view"


def require_views(roles: list[str] | set[str], reason: str = INCOMPLETE_BREAST) -> None:
    """Filter (with `reason`) a breast that lacks a CC or an MLO view; refuse one view
    given twice."""
    listed = list(roles)
    if len(set(listed)) != len(listed):
        twice = sorted({r for r in listed if listed.count(r) > 1})
        raise RecordError(f"breast has more than one {twice[0].upper()} image; the index lists "
                          "each view once per breast")
    if set(listed) != set(ROLES):
        raise Filtered(reason)


def view_payload(path: Path, view: str, laterality: str, *, monochrome1: str,
                 burned_in: str) -> tuple[Payload, dict[str, Any]]:
    """The image payload of one view (descriptor `view` and `laterality` from the index) and
    the image's sample meta (allow-listed DICOM attributes, sex, age)."""
    image = read_image(path, monochrome1=monochrome1, burned_in=burned_in)
    desc = {**image.descriptor, "view": view, "laterality": laterality}
    return Payload("image", image.pixels, desc), image.meta


def breast_meta(view_meta: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Sample meta of a breast: sex and age (first view that has them) and, per view in role
    order, its DICOM attributes and pixel handling, as a list of objects."""
    roles = [r for r in ROLES if r in view_meta]
    first = next((view_meta[r] for r in roles if view_meta[r].get("age") is not None),
                 view_meta[roles[0]])
    return {
        "sex": first.get("sex"),
        "age": first.get("age"),
        "views": [
            {
                "role": r,
                "dicom": view_meta[r]["dicom"],
                "monochrome1_inverted_from": view_meta[r]["monochrome1_inverted_from"],
                "burned_in_annotation": view_meta[r]["burned_in_annotation"],
            }
            for r in roles
        ],
    }
