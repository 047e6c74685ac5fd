"""BioMed-VITAL: clinician-aligned biomedical image-text instructions (CLIMB's "Vital").

Raw layout (Hugging Face Hub dataset `mao1207/BioMed-VITAL-instructions`, Apache-2.0):
    BioMed-VITAL-instructions-60K.json    one JSON array each; an entry is
    BioMed-VITAL-instructions-80K.json    {"id", "image", "domain" (CXR, MRI,
    BioMed-VITAL-instructions-150K.json    Histology, Gross, CT; read as null where
    BioMed-VITAL-instructions-210K.json    absent), "conversations":
                                          [{"from": "human" | "gpt", "value"}]}
    images/<image>                        the figures, fetched by the user (the Hub
                                          holds no images; `PMC_image_urls.jsonl`,
                                          once in the repository, listed their URLs)
File names come from the repository's file listing, entry fields from its
`metadata.yaml`. The entry format is LLaVA's (LLaVA-Med's instruct files, which the 150K/210K sets
include): `image` is a path relative to an image folder, and the first human turn
holds the `<image>` placeholder. `images/` as that folder is medshard's
convention (LLaVA's `--image_folder`); the Hub prescribes none.

Which file: option `subset` (default 210K, the set CLIMB counts: 210,000 in
Table 6, 42,000 train / 168,000 test in A.2). The file (463 MB for 210K) is read
once, as a stream (`medshard.formats.json_array`), at listing: each record carries
its entry (a few KB of text), so `load` reads only the figure, and the JSON file is
the source's label file (hashed once per build into provenance; a new revision
rebuilds) rather than a per-record file that every shard would hash or stage again.

A sample is one entry:
  - `conversation` (text, `text_kind` "conversation-json"): the turns exactly as
    given, re-serialized as canonical JSON (`[{"from": ..., "value": ...}, ...]`,
    UTF-8, no ASCII escaping); every turn is kept, `<image>` placeholders too.
  - `image` (image): the referenced figure's bytes (JPEG/PNG kept, metadata
    segments such as EXIF dropped by the encoder). A figure that is not under
    `images/` is not guessed at: the entry is quarantined ("missing image ...").
  - meta: `entry_id` (the `id` field), `image` (its relative name), `domain`
    (null when absent), `n_turns`, `first_speaker`.
Task "instruction": no classes (the vocabulary maps Vital to nothing; Table 7:
"Not classification"). CLIMB's public code has no Vital loader (its `src/datasets/text/`
holds only a GENIA reader), so nothing there fixes a subset, split or image folder.

Broken entries: a syntax error in the array stops the listing there (JSON cannot
resynchronise) with one quarantine line naming the element; an entry that parses
but is not an object with a string `id` and `image` is a bad row at listing; an
entry whose `conversations` is not a non-empty list of {from: human|gpt, value:
str} is quarantined at load; a duplicate `id` whose entry has the same text is a bad
row ("duplicate of entry N"), with other text it is kept as `<id>_<sha256 prefix>`.

Split: the dataset defines none. The split unit is the figure's article where its
file name starts with a PMC id (`PMC1234567_...`, as PMC-derived sets name figures;
unconfirmed for every entry), else the figure: a keyed hash of it, so one figure's
(and one paper's) instructions never straddle splits. There are no patients.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from medshard.formats.json_array import ArrayError, iter_json_array
from medshard.schemas import BadRow, License, Payload, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, FileSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import MissingRawData, Source, SourceOptions

SUBSETS = ("60K", "80K", "150K", "210K")
IMAGE_DIR = "images"
SPEAKERS = ("human", "gpt")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_PMCID = re.compile(r"^(PMC\d+)[_.-]")


def instruction_file(subset: str) -> str:
    return f"BioMed-VITAL-instructions-{subset}.json"


def figure_unit(image: str) -> str:
    """The split unit of a figure: its article's PMC id when the name starts with one."""
    name = image.rsplit("/", 1)[-1]
    m = _PMCID.match(name)
    return m.group(1) if m else image


def conversation_turns(entry: dict[str, Any]) -> list[dict[str, str]]:
    """The entry's turns as [{"from", "value"}]; raises RecordError when malformed."""
    turns = entry.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise RecordError("entry has no 'conversations' list (LLaVA format: a list of "
                          "{from, value} turns)")
    out = []
    for i, turn in enumerate(turns):
        if (not isinstance(turn, dict) or turn.get("from") not in SPEAKERS
                or not isinstance(turn.get("value"), str)):
            raise RecordError(f"conversation turn {i} is not {{from: human|gpt, value: text}}")
        out.append({"from": turn["from"], "value": turn["value"]})
    return out


class VitalOptions(SourceOptions):
    subset: Literal["60K", "80K", "150K", "210K"] = Field(
        "210K", description="which released instruction file to read (CLIMB counts the 210K)")


class BioMedVital(Source):
    fixture = "medshard.sources.text.vital_fixture:FIXTURE"
    Options = VitalOptions
    payload_members = ("conversation.txt", "image.jpg", "image.png")
    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://huggingface.co/datasets/mao1207/BioMed-VITAL-instructions",
        steps=[
            "Download BioMed-VITAL-instructions-210K.json (or the 60K/80K/150K file, with "
            "--option subset=...) from the Hugging Face dataset page above (Apache-2.0).",
            "Fetch the figures the entries name (PMC-15M / LLaVA-Med figures from PubMed "
            "Central's Open Access packages) into images/ beside the JSON file, each under "
            "the entry's `image` name; entries whose figure is missing are quarantined.",
        ],
        layouts={s: [FileSpec(path=instruction_file(s))] for s in SUBSETS},
    ))
    info: ClassVar[SourceInfo] = SourceInfo(
        name="vital",
        title="BioMed-VITAL: clinician-aligned biomedical visual instruction data",
        version="hf-2024-08",
        modality="text",
        tasks=["instruction"],
        license=License(
            name="Apache License 2.0", spdx="Apache-2.0",
            url="https://huggingface.co/datasets/mao1207/BioMed-VITAL-instructions",
            terms_version="2024-08",
        ),
        access="open",
        homepage="https://huggingface.co/datasets/mao1207/BioMed-VITAL-instructions",
        citation=(
            "Cui H, Mao L, Liang X, et al. Biomedical Visual Instruction Tuning with Clinician "
            "Preference Alignment. NeurIPS 2024 Datasets and Benchmarks."
        ),
        label_space=[],
        split_policy="no official split: keyed hash of the figure's article (PMC id prefix of "
        "the image name) or else of the figure, so one figure's instructions stay together",
        split_unit="figure",
        release_notes={"0.1.0": "first medshard adapter: streamed JSON array, conversation "
                       "text + figure, missing figures quarantined"},
        published_counts=PublishedCounts(
            train=42000, test=168000, unit="instruction entries",
            reference="CLIMB A.2 (210K set; the 20/80 train/test proportion is as printed)",
        ),
    )

    def json_file(self) -> str:
        return instruction_file(self.opts.subset)

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        if not (root / self.json_file()).is_file():
            raise MissingRawData(
                f"vital: {self.json_file()} not found in {root}; download it from "
                "https://huggingface.co/datasets/mao1207/BioMed-VITAL-instructions "
                "(or pick the file you have with --option subset=60K|80K|150K|210K)")

    def label_files(self, root: Path) -> list[str]:
        return [self.json_file()]

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        self.check_root(root)
        rel = self.json_file()
        seen: dict[str, tuple[int, bytes]] = {}  # record id -> (entry number, text digest)
        with open(self.path(root, rel), "rb") as fh:
            for el in iter_json_array(fh):
                if isinstance(el, ArrayError):
                    yield BadRow(rel, el.number, el.reason, "JSONDecodeError")
                    return
                entry = el.value
                if (not isinstance(entry, dict) or not isinstance(entry.get("id"), str)
                        or not isinstance(entry.get("image"), str) or not entry["image"]):
                    yield BadRow(rel, el.number, "entry is not an object with string 'id' and "
                                 "'image' fields", "ValueError")
                    continue
                rid = _UNSAFE.sub("_", entry["id"])[:80] or "entry"
                digest = hashlib.sha256(el.text.encode("utf-8")).digest()
                if rid in seen:
                    first, first_digest = seen[rid]
                    if digest == first_digest or f"{rid}_{digest[:6].hex()}" in seen:
                        yield BadRow(rel, el.number, f"duplicate of entry {first} (same id, "
                                     "same content)", "ValueError")
                        continue
                    rid = f"{rid}_{digest[:6].hex()}"
                seen[rid] = (el.number, digest)
                image = f"{IMAGE_DIR}/{entry['image']}"
                yield RawRecord(
                    record_id=rid,
                    subject_id=figure_unit(entry["image"]),
                    files=[image],
                    size_bytes=el.length + _size(root, image),
                    meta={"entry_number": el.number, "entry": entry},
                )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        (image_rel,) = record.files
        entry = record.meta["entry"]
        turns = conversation_turns(entry)
        data = self.read_bytes(root, image_rel, "image")
        text = json.dumps(turns, ensure_ascii=False, separators=(",", ":"))
        domain = entry.get("domain")
        yield Sample(
            classes=[],
            source_labels={},
            payloads={
                "conversation": Payload("text", text, {"text_kind": "conversation-json",
                                                       "language": "en"}),
                "image": Payload("image", data),
            },
            meta={
                "entry_id": entry["id"],
                "image": entry["image"],
                "domain": domain if isinstance(domain, str) else None,
                "n_turns": len(turns),
                "first_speaker": turns[0]["from"],
            },
            task="instruction",
        )


def _size(root: Path, rel: str) -> int:
    try:
        return (root / rel).stat().st_size
    except (OSError, ValueError):
        return 0
