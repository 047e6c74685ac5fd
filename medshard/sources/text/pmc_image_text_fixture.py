"""A miniature PMC Open Access subset in the OA package layout.

`oa_file_list.csv` lists six article packages (`oa_package/xx/yy/PMCn.tar.gz`),
each a gzipped tar of `PMCn/` with a JATS `.nxml` and its figure files. Figures are
real photographs standing in for journal figures: views of scikit-image's fundus
photograph (retina.jpg, CC0) as JPEG (with an EXIF block carrying planted
identities), GIF (palette) and PNG. Article text, captions, ids and citations are
illustrative, written for the fixture; the tar members' owner names (uname/gname)
and the nxml's author block carry planted identities that must never leak.

Broken on purpose: a truncated package, an article whose figure names a graphic the
package lacks, an nxml that declares entities (a "billion laughs" bomb).
"""

from __future__ import annotations

import csv
import gzip
import io
import tarfile
from pathlib import Path

PHI_OWNER = "Quillfeather^Rosamund"
PHI_EXIF = "MRN 88-4412-PMC"
PHI_AUTHOR_EMAIL = "r.quillfeather@hospital.example"
LIST = "oa_file_list.csv"
COLUMNS = ["File", "Article Citation", "Accession ID", "Last Updated (YYYY-MM-DD HH:MM:SS)",
           "PMID", "License"]
MTIME = 1_500_000_000

NXML_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal Archiving and Interchange DTD v1.2 20190208//EN" "JATS-archivearticle1.dtd">
"""


def package_path(pmcid: str) -> str:
    digits = pmcid[3:]
    return f"oa_package/{digits[-2:]}/{digits[-4:-2]}/{pmcid}.tar.gz"


def fig_xml(fig_id: str, label: str, caption: str, href: str | None) -> str:
    graphic = f'<graphic xlink:href="{href}"/>' if href else ""
    return (f'<fig id="{fig_id}" position="float"><label>{label}</label><caption><title>'
            f"{caption.split('. ')[0]}.</title><p>{caption}</p></caption>{graphic}</fig>")


def nxml(pmcid: str, pmid: str, title: str, figs: list[str], head: str = NXML_HEAD) -> bytes:
    return (head + f"""<article xmlns:xlink="http://www.w3.org/1999/xlink" article-type="research-article">
<front><article-meta>
<article-id pub-id-type="pmc">{pmcid[3:]}</article-id><article-id pub-id-type="pmid">{pmid}</article-id>
<title-group><article-title>{title}</article-title></title-group>
<contrib-group><contrib contrib-type="author"><name><surname>Quillfeather</surname><given-names>Rosamund</given-names></name>
<email>{PHI_AUTHOR_EMAIL}</email></contrib></contrib-group>
</article-meta></front>
<body><sec><title>Results</title><p>See the figures.</p>{''.join(figs)}</sec></body>
</article>
""").encode("utf-8")


def figure_image(view: int, fmt: str) -> bytes:
    from PIL import Image

    from medshard.sources.fundus.retina_pictures import fundus_view

    im = Image.fromarray(fundus_view(view, side=48))
    buf = io.BytesIO()
    if fmt == "JPEG":
        exif = Image.Exif()
        exif[0x013B] = PHI_OWNER  # Artist
        exif[0x010E] = PHI_EXIF  # ImageDescription
        im.save(buf, format="JPEG", quality=90, exif=exif.tobytes())
    elif fmt == "GIF":
        im.convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(buf, format="GIF")
    else:
        im.save(buf, format=fmt)
    return buf.getvalue()


def tar_gz(pmcid: str, files: dict[str, bytes]) -> bytes:
    """A package as PMC ships it: `PMCn/<file>` members, gzipped; owners planted."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{pmcid}/{name}")
            info.size, info.mtime, info.mode = len(data), MTIME, 0o644
            info.uname, info.gname = PHI_OWNER, PHI_OWNER
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


# (pmcid, pmid, title, {file: bytes} builder, figures xml)
def _articles() -> list[tuple[str, str, dict[str, bytes]]]:
    a1 = "PMC3400100"  # train: a JPEG figure, a GIF figure, a boxed text set as <fig>
    a2 = "PMC3400106"  # test: a PNG figure whose href carries its extension
    a3 = "PMC3400113"  # val: one JPEG figure
    bad_truncated = "PMC3400101"
    bad_missing = "PMC3400102"
    bad_entities = "PMC3400103"
    arts = [
        (a1, "28001001", {
            f"{a1}.nxml": nxml(a1, "28001001", "Fundus findings in a cohort", [
                fig_xml("F1", "Figure 1", "Colour fundus photograph. The disc margin is sharp "
                        "and the cup-to-disc ratio is 0.3.", "ijo-1-001-f1"),
                fig_xml("F2", "Figure 2", "Palette rendering of the same eye. Vessels are "
                        "traced from the disc.", "ijo-1-001-f2"),
                fig_xml("B1", "Box 1", "Key points for readers.", None),
            ]),
            "ijo-1-001-f1.jpg": figure_image(0, "JPEG"),
            "ijo-1-001-f2.gif": figure_image(1, "GIF"),
            f"{a1}.pdf": b"%PDF-1.4 illustrative placeholder\n",
        }),
        (a2, "28001006", {
            f"{a2}.nxml": nxml(a2, "28001006", "A case of retinal imaging", [
                fig_xml("fig1", "Fig. 1", "Posterior pole, mirrored. Image courtesy of the "
                        "authors — «no abnormality».", "fig1.png")]),
            "fig1.png": figure_image(2, "PNG"),
        }),
        (a3, "28001013", {
            f"{a3}.nxml": nxml(a3, "28001013", "Imaging note", [
                fig_xml("F1", "Figure 1", "Cropped view around the macula.", "note-f1")]),
            "note-f1.jpg": figure_image(3, "JPEG"),
        }),
        (bad_missing, "28001002", {
            f"{bad_missing}.nxml": nxml(bad_missing, "28001002", "Missing figure", [
                fig_xml("F1", "Figure 1", "This graphic was never packaged.", "gone-f1")]),
        }),
        (bad_entities, "28001003", {
            f"{bad_entities}.nxml": nxml(bad_entities, "28001003", "&lol9;", [], head=(
                '<?xml version="1.0"?>\n<!DOCTYPE article [<!ENTITY lol "lol">'
                + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                          for i in range(1, 10)) + "]>\n")),
        }),
    ]
    packages = [(pmcid, pmid, tar_gz(pmcid, files)) for pmcid, pmid, files in arts]
    whole = packages[0][2]
    packages.append((bad_truncated, "28001001", whole[: len(whole) // 2]))
    return packages


QUARANTINED = {"PMC3400101": "load", "PMC3400102": "load", "PMC3400103": "load"}


def write_fixture(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LIST, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for pmcid, pmid, data in _articles():
            rel = package_path(pmcid)
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
            w.writerow([rel, f"Illustr Ophthalmol. 2017 Jan 5; 1:{pmid[-3:]}", pmcid,
                        "2017-01-05 10:20:30", pmid, "CC BY"])
    return root


def _append(root: Path, rows: list[list[str]]) -> list[int]:
    from medshard.testing.adversarial import csv_line_count

    path = root / LIST
    first = csv_line_count(path) + 1
    with open(path, "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return list(range(first, first + len(rows)))


def malformed_row(root: Path, outside: Path):
    """An Accession ID that is no PMCID, and a File that is no package."""
    from medshard.testing.adversarial import Expect

    lines = _append(root, [[package_path("PMC3400199"), "x", "3400199", "", "1", "CC BY"],
                           ["oa_package/00/00/PMC3400198.pdf", "x", "PMC3400198", "", "", "CC0"]])
    keys = [f"{LIST}:{n}" for n in lines]
    return Expect({k: "list" for k in keys},
                  {keys[0]: "not PMC<digits>", keys[1]: "not a .tar.gz"})


def outside_path(root: Path, outside: Path):
    """A File that climbs out of the root to a package planted outside."""
    from medshard.testing.adversarial import Expect, plant_outside

    plant_outside(outside, "PMC3400197.tar.gz", b"not read")
    _append(root, [[f"../{outside.name}/PMC3400197.tar.gz", "x", "PMC3400197", "", "", "CC BY"]])
    return Expect({"PMC3400197": "load"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 2, "val": 1, "test": 1},
        quarantined=QUARANTINED,
        phi_markers=(PHI_OWNER, PHI_EXIF, PHI_AUTHOR_EMAIL),
        adversarial={"malformed_row": malformed_row, "outside_path": outside_path},
        real="figures: views of scikit-image's real fundus photograph (retina.jpg, CC0) as "
        "JPEG, GIF and PNG, standing in for journal figures",
        illustrative="article XML, captions, ids, citations (written for the fixture); one "
        "package truncated, one figure's graphic missing, one nxml declaring entities "
        "(quarantined)",
    )


FIXTURE = _fixture()
