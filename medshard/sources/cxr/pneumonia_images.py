"""What the Kaggle pneumonia-triage chest X-ray sets (COVID-19, CoronaHack) share.

Both collect Kermany et al.'s paediatric pneumonia radiographs (Mendeley Data
rscbjbr9sj, "ChestXRay2017") and COVID-19 images from Cohen et al.'s
covid-chestxray-dataset, with the file names those collections gave them.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# Kermany's pneumonia images are named person<N>_<bacteria|virus>_<M>.jpeg: N numbers the
# patient (several images share it), M the image.
_KERMANY_PERSON = re.compile(r"^(person\d+)_(?:bacteria|virus)_\d+", re.IGNORECASE)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# sample keys longer than 64 characters are shortened by the pipeline; ids of up to 50
# keep "<slug>_<id>" whole for these sources' slugs
MAX_RECORD_ID = 50


def kermany_patient(name: str) -> str | None:
    """The patient of a Kermany pneumonia image name ("person12"), else None."""
    m = _KERMANY_PERSON.match(name)
    return m.group(1).lower() if m else None


def image_record_id(prefix: str, name: str) -> str:
    """A record id for an image file name: `<prefix>_<name stem>`, with characters a shard
    key cannot hold replaced by "_". When any was replaced, or the id would pass
    MAX_RECORD_ID characters (so that the sample key stays whole), it is cut and 8 hex
    digits of the exact name's sha256 are appended: two names stay two ids."""
    suffix = Path(name).suffix
    stem = name[: -len(suffix)] if suffix.lower() in IMAGE_SUFFIXES else name
    rid = f"{prefix}_{_UNSAFE.sub('_', stem)}"
    if rid != f"{prefix}_{stem}" or len(rid) > MAX_RECORD_ID:
        rid = f"{rid[:MAX_RECORD_ID - 9]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return rid
