"""PubMed Central figure-caption pairs from the PMC Open Access subset (MultiMed's "PMC").

Raw layout (PMC FTP service, OA packages: `ftp.ncbi.nlm.nih.gov/pub/pmc/[deprecated/]`):
    oa_file_list.csv            columns File, Article Citation, Accession ID,
                                Last Updated (YYYY-MM-DD HH:MM:SS), PMID, License;
                                one row per article package
    oa_comm_use_file_list.csv   the same columns for the commercial-use collection
    oa_non_comm_use_file_list.csv   ... and for the non-commercial one
    oa_package/xx/yy/PMCnnnnnnn.tar.gz   the File column's path: one gzipped tar per
                                article holding `PMCnnnnnnn/` with the JATS `.nxml`,
                                the PDF, the figure images and supplements
Column names: the NCBI file lists as read by public loaders (pubrunner reads
`Accession ID`, `PMID`, `Last Updated (YYYY-MM-DD HH:MM:SS)`; the License column is
documented on PMC's OA pages). The package content (one `.nxml`, figures named by the
`<graphic xlink:href>` of each `<fig>` plus an image extension, usually `.jpg`) is
the JATS convention PMC follows. Unconfirmed: NCBI moved these lists and packages
to `deprecated/` when the OA subset moved to the PMC Cloud Service (AWS bucket
`pmc-oa-opendata`, per-article folders without tar packages); that newer layout is
not read here. What MultiMed used ("PMC PubMed Central", ~1M pairs, Table in its
appendix) is not specified beyond that; this adapter does not claim to match it.

Which list: option `file_list` (default `oa_file_list.csv`, every OA article).

A record is one article (PMCID); `load` reads its package once, as a stream of
tar members (never extracted to disk; only regular `.nxml` and image files are
held in memory, PDFs and supplements are skipped; a member larger than 256 MB is
refused), parses the `.nxml` safely
(`medshard.formats.jats`: no entity is ever declared or expanded, no DTD is
fetched) and yields one sample per `<fig>` that has a `<graphic>`:
  - `image`: the figure file `<href>` (or `<href>.jpg|.jpeg|.png|.gif|.tif|.tiff`,
    first found, beside the `.nxml`): JPEG/PNG bytes kept (EXIF and other
    metadata segments dropped by the encoder), GIF/TIFF decoded and stored as
    lossless PNG.
  - `caption`: the `<caption>` text (title and paragraphs, whitespace collapsed),
    `text_kind` "caption". Captions are published text: they are the data.
  - meta: `pmcid`, `pmid`, `license` (the list's License column), `figure_id`,
    `figure_label`, `graphic` (the href), `n_graphics` (graphics in the `<fig>`;
    the first is the sample's image), `figures_without_graphic` (in the article).
Nothing else of the article leaves the source: no authors, affiliations,
correspondence, dates or tar member owners (`uname`/`gname`).

Broken records (the whole article is quarantined, with the reason): a package
that is missing or truncated, no `.nxml` (or several), an `.nxml` that declares
entities or is not well-formed, a figure whose graphic file is not in the package.
A `<fig>` without any `<graphic>` (a text box set as a figure) is no image-caption
pair: it is counted in `figures_without_graphic` and logged. A list row whose
Accession ID is not `PMC<digits>` or whose File is not a `.tar.gz` is a bad row.

Task "image-text" (figure-caption pairs), no classes. Split: none is published;
keyed hash of the PMCID, so one paper's figures never straddle splits.
"""

from __future__ import annotations

import io
import logging
import re
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from medshard.formats.jats import UnsafeXML, article_ids, figures, parse_xml_safely
from medshard.schemas import License, Payload, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, FileSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import MissingRawData, Source, SourceOptions

log = logging.getLogger("medshard.sources.pmc_image_text")

FILE_LISTS = ("oa_file_list.csv", "oa_comm_use_file_list.csv", "oa_non_comm_use_file_list.csv")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".gif", ".tif", ".tiff")
MAX_MEMBER_BYTES = 256 << 20
_PMCID = re.compile(r"^PMC\d+$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class PMCOptions(SourceOptions):
    file_list: Literal["oa_file_list.csv", "oa_comm_use_file_list.csv",
                       "oa_non_comm_use_file_list.csv"] = Field(
        "oa_file_list.csv",
        description="which NCBI file list names the packages: every OA article, or the "
        "commercial / non-commercial use collection")


def read_package(data: bytes) -> dict[str, bytes]:
    """The `.nxml` and image files of an article package (tar.gz bytes): member name ->
    bytes; PDFs and supplements are skipped unread (decompressed past, never held).

    RecordError for a truncated or unreadable archive or an oversized member."""
    out: dict[str, bytes] = {}
    wanted = (".nxml", *IMAGE_EXTS)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                if not member.isreg() or not member.name.lower().endswith(wanted):
                    continue  # links, devices, folders: never followed; PDFs: not needed
                if member.size > MAX_MEMBER_BYTES:
                    raise RecordError(f"package member {member.name} holds {member.size} bytes "
                                      f"(more than {MAX_MEMBER_BYTES})")
                fh = tar.extractfile(member)
                out[member.name] = fh.read() if fh is not None else b""
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise RecordError(f"unreadable article package ({type(exc).__name__}: {exc}); "
                          "re-download it") from None
    return out


def find_graphic(members: dict[str, bytes], folder: PurePosixPath, href: str) -> str | None:
    """The member holding graphic `href` beside the .nxml: the name as given, else with the
    first image extension that exists."""
    names = [href] if PurePosixPath(href).suffix.lower() in IMAGE_EXTS else []
    names += [href + ext for ext in IMAGE_EXTS]
    for name in names:
        candidate = (folder / name).as_posix()
        if candidate in members:
            return candidate
    return None


def image_payload(name: str, data: bytes) -> Payload:
    """JPEG/PNG bytes as they are; GIF/TIFF decoded (lossless PNG when stored)."""
    if name.lower().endswith((".jpg", ".jpeg", ".png")):
        return Payload("image", data)
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            mode = "L" if im.mode in ("1", "L", "I;16") else "RGB"
            arr = np.asarray(im.convert(mode))
    except Exception as exc:  # Pillow raises many types for broken files
        raise RecordError(f"unreadable figure image {PurePosixPath(name).name}: "
                          f"{type(exc).__name__}") from None
    return Payload("image", arr, {
        "source_encoding": PurePosixPath(name).suffix.lstrip(".").lower(),
        "bit_depth": 8,
        "photometric": "MONOCHROME2" if mode == "L" else "RGB",
    })


class PMCImageText(Source):
    fixture = "medshard.sources.text.pmc_image_text_fixture:FIXTURE"
    Options = PMCOptions
    payload_members = ("caption.txt", "image.jpg", "image.png")
    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://pmc.ncbi.nlm.nih.gov/tools/openftlist/",
        steps=[
            "Download oa_file_list.csv (or oa_comm_use_file_list.csv / "
            "oa_non_comm_use_file_list.csv) from https://ftp.ncbi.nlm.nih.gov/pub/pmc/ "
            "(now under pub/pmc/deprecated/).",
            "Download the article packages you want (the File column, e.g. "
            "oa_package/08/e0/PMC13900.tar.gz) keeping those relative paths under the "
            "source folder; rows whose package is absent are quarantined.",
            "Check each article's License column (and the list you picked) against your use.",
        ],
        layouts={name: [FileSpec(path=name)] for name in FILE_LISTS},
    ))
    info: ClassVar[SourceInfo] = SourceInfo(
        name="pmc-image-text",
        title="PubMed Central Open Access figure-caption pairs",
        version="oa-package-layout",
        modality="text",
        tasks=["image-text"],
        license=License(
            name="per article (PMC Open Access subset: Creative Commons or similar; see each "
            "article's License column)",
            url="https://pmc.ncbi.nlm.nih.gov/tools/openftlist/",
            terms_version="2024",
        ),
        access="open",
        homepage="https://pmc.ncbi.nlm.nih.gov/tools/openftlist/",
        citation="PMC Open Access Subset. Bethesda (MD): National Library of Medicine. "
        "https://pmc.ncbi.nlm.nih.gov/tools/openftlist/",
        label_space=[],
        split_policy="no official split: keyed hash of the article (PMCID), so a paper's "
        "figures stay together",
        split_unit="article",
        release_notes={"0.1.0": "first medshard adapter: OA package layout, safe JATS parse, "
                       "one sample per figure"},
        published_counts=PublishedCounts(
            unit="figure-caption pairs",
            reference="MultiMed: ~1M PMC image-text pairs, no split counts published",
        ),
    )

    def list_file(self) -> str:
        return self.opts.file_list

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        if not (root / self.list_file()).is_file():
            raise MissingRawData(
                f"pmc-image-text: {self.list_file()} not found in {root}; download it from "
                "https://ftp.ncbi.nlm.nih.gov/pub/pmc/ (deprecated/) with the packages it lists")

    def list_records(self, root: Path) -> Iterator[Any]:
        self.check_root(root)
        yield from self.csv_records(root, self.list_file(), lambda row: self._record(root, row))

    def _record(self, root: Path, row: dict[str, str]) -> RawRecord:
        pmcid = row["Accession ID"].strip()
        if not _PMCID.match(pmcid):
            raise ValueError(f"Accession ID {pmcid[:40]!r} is not PMC<digits>")
        rel = row["File"].strip()
        if not rel.endswith((".tar.gz", ".tgz")):
            raise ValueError(f"File {rel[:80]!r} is not a .tar.gz article package")
        pmid = (row.get("PMID") or "").strip()
        if pmid and not pmid.isdigit():
            raise ValueError(f"PMID {pmid[:40]!r} is not a number")
        path = root / rel
        try:
            size = path.stat().st_size if path.is_file() else 0
        except (OSError, ValueError):
            size = 0
        return RawRecord(
            record_id=pmcid,
            subject_id=pmcid,
            files=[rel],
            size_bytes=size,
            meta={"pmid": pmid or None, "license": (row.get("License") or "").strip() or None},
        )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        rel = record.files[0]
        members = read_package(self.read_bytes(root, rel, "article package"))
        nxml = sorted(n for n in members if n.lower().endswith(".nxml"))
        if len(nxml) != 1:
            raise RecordError(f"article package {PurePosixPath(rel).name} holds {len(nxml)} "
                              ".nxml files, expected one")
        try:
            article = parse_xml_safely(members[nxml[0]])
        except UnsafeXML as exc:
            raise RecordError(f"{PurePosixPath(nxml[0]).name}: {exc}") from None
        folder = PurePosixPath(nxml[0]).parent
        figs = figures(article)
        with_graphic = [f for f in figs if f.graphics]
        without = len(figs) - len(with_graphic)
        if without:
            log.info("%s: %d <fig> without a <graphic> (not an image-caption pair)",
                     record.record_id, without)
        pmid = record.meta.get("pmid") or article_ids(article).get("pmid")
        used: set[str] = set()
        samples = []
        for n, fig in enumerate(with_graphic, start=1):
            href = fig.graphics[0]
            member = find_graphic(members, folder, href)
            if member is None:
                raise RecordError(f"figure {fig.fig_id or n} names graphic {href!r}, which is "
                                  "not in the article package")
            suffix = _UNSAFE.sub("_", fig.fig_id)[:40] or f"fig{n}"
            if suffix in used:
                suffix = f"{suffix}_{n}"
            used.add(suffix)
            samples.append(Sample(
                classes=[],
                source_labels={},
                payloads={
                    "image": image_payload(member, members[member]),
                    "caption": Payload("text", fig.caption, {"text_kind": "caption",
                                                             "language": None}),
                },
                meta={
                    "pmcid": record.record_id,
                    "pmid": pmid,
                    "license": record.meta.get("license"),
                    "figure_id": fig.fig_id or None,
                    "figure_label": fig.label or None,
                    "graphic": href,
                    "n_graphics": len(fig.graphics),
                    "figures_without_graphic": without,
                },
                task="image-text",
                key_suffix=suffix,
            ))
        yield from samples
