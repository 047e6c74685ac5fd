"""A miniature BioMed-VITAL in its real layout: one instruction JSON array plus images/.

Figures are real photographs standing in for PMC figures: views of scikit-image's
fundus photograph (`retina.jpg`, CC0; `medshard.sources.fundus.retina_pictures`),
saved as JPEG with an EXIF block whose Artist / ImageDescription carry planted
identities (the encoder must drop them). The instruction text is illustrative,
written for this fixture in the LLaVA conversation format the dataset uses.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from medshard.sources.text.vital import IMAGE_DIR, instruction_file

PHI_ARTIST = "Quillfeather^Rosamund"
PHI_DESCRIPTION = "MRN 88-4412-VITAL"
JSON_NAME = instruction_file("210K")

# figure name -> fundus view number
FIGURES = {
    "PMC5560101_fig1.jpg": 0,
    "PMC5560101_fig2.jpg": 1,
    "PMC7120040_F3.jpg": 2,
    "31415926_F2.jpg": 3,  # a LLaVA-Med style name without a PMC id: the figure is the unit
}
MISSING_FIGURE = "PMC7000001_fig4.jpg"  # referenced, never fetched


def _turns(topic: str, answer: str) -> list[dict[str, str]]:
    return [
        {"from": "human", "value": f"<image>\nWhat does this {topic} show?"},
        {"from": "gpt", "value": answer},
        {"from": "human", "value": "Which structure should a clinician look at first?"},
        {"from": "gpt", "value": "The optic disc and the vessels leaving it, then the macula."},
    ]


ENTRIES = [
    {"id": "vital-0001", "image": "PMC5560101_fig1.jpg", "domain": "Gross",
     "conversations": _turns("fundus photograph", "A colour fundus photograph of a left eye "
                             "with a sharp optic disc margin.")},
    {"id": "vital-0002", "image": "PMC5560101_fig1.jpg", "domain": "Gross",
     "conversations": _turns("figure panel", "Retinal arcades leave the disc superiorly and "
                             "inferiorly; no haemorrhage is visible — «clear» media.")},
    {"id": "vital-0003", "image": "PMC5560101_fig2.jpg", "domain": "Gross",
     "conversations": _turns("image", "A mirrored view of the posterior pole.")},
    {"id": "vital-0004", "image": "PMC7120040_F3.jpg", "domain": "Histology",
     "conversations": _turns("micrograph", "The panel is cropped around the macula.")},
    {"id": "llava-med-17", "image": "31415926_F2.jpg",
     "conversations": _turns("figure", "An unremarkable posterior pole.")},
    {"id": "vital-0005", "image": "PMC7120040_F3.jpg", "domain": "Histology",
     "conversations": _turns("panel", "Vessel calibre looks even throughout.")[:2]},
    # broken on purpose
    {"id": "vital-missing", "image": MISSING_FIGURE, "domain": "CT",
     "conversations": _turns("scan", "Not available.")},
    {"id": "vital-badturns", "image": "PMC5560101_fig2.jpg", "domain": "Gross",
     "conversations": [{"from": "assistant", "value": "a speaker LLaVA does not use"}]},
]
QUARANTINED = {"vital-missing": "load", "vital-badturns": "load"}


def figure_jpeg(view: int) -> bytes:
    """A real fundus view as JPEG with an EXIF block holding planted identities."""
    from PIL import Image

    from medshard.sources.fundus.retina_pictures import fundus_view

    im = Image.fromarray(fundus_view(view, side=64))
    exif = Image.Exif()
    exif[0x013B] = PHI_ARTIST  # Artist
    exif[0x010E] = PHI_DESCRIPTION  # ImageDescription
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90, exif=exif.tobytes())
    return buf.getvalue()


def write_entries(root: Path, entries: list[dict]) -> Path:
    path = root / JSON_NAME
    path.write_text(json.dumps(entries, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def write_fixture(root: Path) -> Path:
    (root / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    for name, view in FIGURES.items():
        (root / IMAGE_DIR / name).write_bytes(figure_jpeg(view))
    write_entries(root, ENTRIES)
    return root


def _entries(root: Path) -> list[dict]:
    return json.loads((root / JSON_NAME).read_text(encoding="utf-8"))


def malformed_row(root: Path, outside: Path):
    """An entry without `image` (a bad row), an exact duplicate of entry 1 (a bad row), then
    a syntax error that cuts the array (one bad row; nothing after it is listed)."""
    from medshard.testing.adversarial import Expect

    entries = _entries(root)
    n = len(entries)
    entries += [{"id": "no-image", "conversations": []}, dict(entries[0])]
    text = json.dumps(entries, ensure_ascii=False, indent=1)
    text = text[: text.rstrip().rfind("]")] + ', {"id": "cut", "image": ]'
    (root / JSON_NAME).write_text(text, encoding="utf-8")
    return Expect(
        {f"{JSON_NAME}:{n + 1}": "list", f"{JSON_NAME}:{n + 2}": "list",
         f"{JSON_NAME}:{n + 3}": "list"},
        {f"{JSON_NAME}:{n + 1}": "string 'id' and 'image'",
         f"{JSON_NAME}:{n + 2}": "duplicate of entry 1",
         f"{JSON_NAME}:{n + 3}": "invalid JSON in element"},
    )


def outside_path(root: Path, outside: Path):
    """An entry whose image climbs out of images/ and the root."""
    from medshard.testing.adversarial import Expect, plant_outside

    plant_outside(outside, "stolen.jpg", figure_jpeg(0))
    entries = _entries(root)
    entries.append({"id": "escape", "image": f"../../{outside.name}/stolen.jpg",
                    "conversations": _turns("figure", "outside")})
    write_entries(root, entries)
    return Expect({"escape": "load"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 4, "test": 2},
        quarantined=QUARANTINED,
        phi_markers=(PHI_ARTIST, PHI_DESCRIPTION),
        # outside_path first: it parses the array that malformed_row then cuts
        adversarial={"outside_path": outside_path, "malformed_row": malformed_row},
        real="figures: views of scikit-image's real fundus photograph (retina.jpg, CC0), as "
        "stand-ins for PMC figures",
        illustrative="instruction text (written for the fixture), ids, domains, figure names; "
        "one entry names a figure never fetched, one has a malformed turn (quarantined)",
    )


FIXTURE = _fixture()
