"""Typed edges of medshard: source info, raw records, sample metadata, shards, manifest.

These pydantic models are the contract between the parts. Validation happens here,
at the boundaries; hot loops handle plain numpy arrays and dicts.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = "2.3"  # 2.3: vector `storage` (sparse .npz), `feature_index`, `n_missing`; 2.2: sample `full_key` (and the index column), image descriptors with `laterality` and `metadata_removed`; 2.1: provenance files as lists of {path, sha256}; 2.0: descriptors keyed by role (`payloads`); mask, graph, vector, events, text
# 1.1 added split unit, concepts, label files, original rates, rescale

Modality = Literal[
    "ecg", "eeg", "chest-xray", "mammography", "dermoscopy", "fundus", "pathology",
    "ct", "mri", "ultrasound", "video", "graph", "omics", "imu", "ehr", "text", "oct",
    "protein",
]
AccessKind = Literal["open", "registration", "credentialed", "manual"]
Split = Literal["train", "val", "test"]
SPLITS: tuple[str, ...] = ("train", "val", "test")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class License(_Strict):
    """The terms a source is distributed under."""

    name: str
    spdx: str | None = None
    url: str | None = None
    terms_version: str = Field(
        description="version or date of the terms text; consent is tied to it"
    )
    non_commercial: bool = False
    share_alike: bool = False
    credentialed: bool = False


class PublishedCounts(_Strict):
    """The counts per split a benchmark paper publishes for a source (CLIMB, MultiMed)."""

    train: int | None = None
    val: int | None = Field(default=None, description="None: the paper counts val in train")
    test: int | None = None
    unit: str = Field(description="what is counted: records, images, recordings, cases, ...")
    reference: str = Field(description="where the counts come from, and any caveat")

    def compare(self, written: dict[str, int]) -> list[tuple[str, int | None, int]]:
        """(split, published, this build's count) for each split the paper counts; when the
        paper has no val count, val is compared inside train (carved from it)."""
        out = []
        for split in ("train", "val", "test"):
            pub = getattr(self, split)
            if split == "val" and pub is None:
                continue
            n = written.get(split, 0) + (written.get("val", 0)
                                          if split == "train" and self.val is None else 0)
            out.append((split, pub, n))
        return out


class SourceInfo(_Strict):
    """Declarative head of a source: what a datasheet would say."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="slug, e.g. ptb-xl")
    title: str
    version: str = Field(description="upstream data version")
    modality: Modality
    tasks: list[str]
    license: License
    access: AccessKind
    homepage: str
    citation: str
    label_space: list[str] = Field(description="classes as the source names them")
    split_policy: str = Field(description="how splits are decided, in one sentence")
    split_unit: str = Field(
        default="patient",
        description="the unit a split keeps whole (patient, image, ...); 'image' when the "
        "data carries no patient identity, so patient-level splits cannot be promised",
    )
    release_notes: dict[str, str] = Field(default_factory=dict)
    published_counts: PublishedCounts | None = Field(
        default=None, description="the counts the CLIMB / MultiMed papers publish"
    )


class RawRecord(_Strict):
    """A lightweight pointer to one raw recording; no payload."""

    record_id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    subject_id: str
    files: list[str] = Field(description="paths relative to the source root")
    source_labels: dict[str, Any] = Field(default_factory=dict)
    split: Split | None = Field(default=None, description="official split, if the source has one")
    size_bytes: int = Field(default=0, ge=0, description="raw bytes, for shard planning")
    meta: dict[str, Any] = Field(default_factory=dict)


ROLE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
# keys the loader puts beside the roles of a decoded sample: no payload may take them
RESERVED_ROLES = frozenset(
    {"key", "source", "modality", "split", "subject", "task", "labels", "label_mask", "meta",
     "json", "members", "payloads"}
)


class _Descriptor(_Strict):
    member: str = Field(description="the shard member holding the payload: `<role>.<ext>`")


class SignalDescriptor(_Descriptor):
    """A C x T float array at a fixed rate (`.npy`)."""

    kind: Literal["signal"]
    sampling_rate_hz: float
    channels: list[str]
    units: str
    n_samples: int
    original_sampling_rate_hz: float
    original_duration_s: float | None = Field(
        default=None, description="duration of the raw recording, before crop or padding"
    )
    valid_samples: int | None = Field(
        default=None, description="leading samples that hold the recording; the rest is padding"
    )
    scale: list[float] = Field(description="per-channel divisor: raw = stored * scale")
    normalization: str = Field(description="record-range | lead-range | p95 | none")
    dtype: str = "float32"
    standard: str | None = Field(
        default=None,
        description="the signal standard applied (ecg, eeg, ...): the sample's modality, or "
        "the one the source named for a signal in a sample of another modality",
    )


class ImageDescriptor(_Descriptor):
    """A 2-D image at native size and bit depth (`.png`, the source's `.jpg`, or `.npy`)."""

    kind: Literal["image"]
    height: int
    width: int
    bit_depth: int
    photometric: str
    channels: int = 1
    encoding: str = Field(description="jpeg | png | npy")
    source_encoding: str | None = None
    pixel_spacing_mm: list[float] | None = None
    view: str | None = None
    laterality: str | None = Field(
        default=None, description="L | R (| U | B): the imaged side, for paired organs (breast)"
    )
    window_center: list[float] | None = None
    window_width: list[float] | None = None
    rescale_applied: bool = False
    rescale_slope: float | None = Field(
        default=None,
        description="when rescale_applied is false: physical value = stored * slope + intercept",
    )
    rescale_intercept: float | None = None
    inverted_from: int | None = Field(
        default=None,
        description="stored as MONOCHROME2 by `inverted_from - value` from a MONOCHROME1 "
        "original (exact; apply it again to get the original values back)",
    )
    metadata_removed: list[str] = Field(
        default_factory=list,
        description="metadata segments dropped from the source's JPEG/PNG bytes before they "
        "were stored (EXIF, XMP, comments, PNG text chunks: they can carry PHI); the pixels "
        "are unchanged",
    )


class MaskDescriptor(_Descriptor):
    """A 2-D segmentation: H x W integer label map, lossless PNG, label values as given."""

    kind: Literal["mask"]
    height: int
    width: int
    bit_depth: int = Field(description="8 or 16: the PNG's sample depth")
    encoding: Literal["png"] = "png"
    values: list[int] = Field(description="label values present in the mask, ascending")
    label_names: dict[str, str] | None = Field(
        default=None, description="label value (as a string) -> name, e.g. {'1': 'lesion'}"
    )
    annotates: str | None = Field(
        default=None, description="role of the image this mask lies on (same height and width)"
    )


class VolumeDescriptor(_Descriptor):
    """A 3-D (or 4-D) array on a physical grid (`.npy`)."""

    kind: Literal["volume"]
    shape: list[int]
    spacing_mm: list[float]
    affine: list[list[float]]
    orientation: str = Field(description="axis codes, e.g. RAS")
    dtype: str
    units: str | None = None


class ArrayDescriptor(_Descriptor):
    """Any other n-d array stored as is (`.npy`), e.g. a 3-D segmentation of a volume."""

    kind: Literal["array"]
    shape: list[int]
    dtype: str
    label_names: dict[str, str] | None = Field(
        default=None, description="for label maps: value (as a string) -> name"
    )
    annotates: str | None = Field(
        default=None, description="role of the payload this array lies on (same grid)"
    )


class VideoDescriptor(_Descriptor):
    """A video kept as the source's encoded bytes."""

    kind: Literal["video"]
    fps: float
    n_frames: int
    height: int
    width: int
    channels: int = 3
    encoding: str


class GraphDescriptor(_Descriptor):
    """A graph as one `.npz`: `edge_index` int64 2 x E (source row, target row), optional
    `edge_weight` float32 E, `node_features` float32 N x F, `node_ids` unicode N."""

    kind: Literal["graph"]
    n_nodes: int = Field(ge=0)
    n_edges: int = Field(ge=0)
    directed: bool = Field(
        description="false: each undirected edge is listed once per direction, as given"
    )
    arrays: list[str] = Field(description="the arrays the .npz holds, in stored order")
    node_feature_names: list[str] | None = None
    edge_weight_meaning: str | None = Field(
        default=None, description="what an edge weight measures, e.g. 'correlation'"
    )


class FeatureIndex(_Strict):
    """A declared, versioned list of feature ids (e.g. Ensembl genes) that vectors share."""

    name: str = Field(description="what the list is, e.g. the file it was read from")
    sha256: str = Field(description="sha256 of the ids joined by newlines: the index version")
    length: int = Field(ge=0)


class VectorDescriptor(_Descriptor):
    """A 1-D feature vector with one id per entry, e.g. gene expression per gene.

    `storage` "dense": `<role>.npy`, the vector itself; NaN marks an entry not measured.
    "sparse": `<role>.npz` with `indices` (int32, ascending), `values` (the entries at
    them; all others are 0) and `missing` (int32, ascending: entries not measured, NaN
    when decoded). Feature ids are listed in `feature_ids`, or given by `feature_index`
    (a declared list, too long to repeat in every sample) when `feature_ids` is null."""

    kind: Literal["vector"]
    length: int = Field(ge=0)
    dtype: str
    feature_ids: list[str] | None = Field(
        default=None, description="id of entry i, e.g. an Ensembl gene id; null: the ids are "
        "`feature_index`'s")
    feature_index: FeatureIndex | None = Field(
        default=None, description="the declared id list the entries follow (its version)")
    storage: Literal["dense", "sparse"] = "dense"
    n_missing: int = Field(default=0, ge=0, description="entries not measured (masked)")
    units: str | None = Field(default=None, description="e.g. TPM, log2(FPKM+1)")

    @model_validator(mode="after")
    def _ids_named(self) -> VectorDescriptor:
        if self.feature_ids is None and self.feature_index is None:
            raise ValueError("a vector needs feature_ids or a feature_index")
        return self


class EventsDescriptor(_Descriptor):
    """A timestamped event sequence as UTF-8 JSON Lines (`.jsonl`), one event per line,
    ordered by time (ties keep the source's order)."""

    kind: Literal["events"]
    n_events: int = Field(ge=0)
    columns: dict[str, Literal["float64", "string"]] = Field(
        description="field -> type of every line; `time` and `code` always present, "
        "a missing number is null"
    )
    time_unit: str = Field(description="unit of `time`, e.g. 's' or 'h'")
    time_origin: str = Field(
        description="what time 0 is, e.g. 'admission' (never a calendar date: no PHI)"
    )


class TextDescriptor(_Descriptor):
    """Text as UTF-8 (`.txt`): exactly the characters given, no normalization."""

    kind: Literal["text"]
    n_chars: int = Field(ge=0)
    n_bytes: int = Field(ge=0)
    text_kind: str | None = Field(
        default=None, description="report | question | answer | note | ..."
    )
    language: str | None = Field(default=None, description="BCP 47 tag, e.g. en, pt-BR")


PayloadDescriptor = Annotated[
    SignalDescriptor | ImageDescriptor | MaskDescriptor | VolumeDescriptor | ArrayDescriptor
    | VideoDescriptor | GraphDescriptor | VectorDescriptor | EventsDescriptor | TextDescriptor,
    Field(discriminator="kind"),
]
PAYLOAD_KINDS: tuple[str, ...] = (
    "signal", "image", "mask", "volume", "array", "video", "graph", "vector", "events", "text",
)


class FileDigest(_Strict):
    path: str = Field(description="relative to the source's raw root")
    sha256: str


class Provenance(_Strict):
    # lists of objects, not {path: sha256}: a map keyed by file path would give every
    # sample its own JSON type, which readers that infer a schema (Hugging Face) refuse
    files: list[FileDigest] = Field(description="the raw files the sample was read from")
    label_files: list[FileDigest] = Field(
        default_factory=list,
        description="shared files the labels come from (e.g. kits23.json, which upstream "
        "revises); empty when the labels live in the sample's own files",
    )
    source_version: str
    transform_config_hash: str
    medshard_version: str


class SampleMeta(_Strict):
    """What each sample's `<key>.json` holds."""

    key: str = Field(pattern=r"^[A-Za-z0-9_-]+$", description="no dots: WebDataset splits there")
    full_key: str | None = Field(
        default=None,
        description="the whole sample name when `key` was shortened to fit a tar header (a key "
        "of more than 64 characters); null otherwise, so every sample has the field",
    )
    source: str
    modality: Modality
    split: Split
    subject: str = Field(description="keyed hash of the subject id")
    task: str
    labels: list[str] = Field(description="unified concept ids")
    source_labels: dict[str, Any]
    meta: dict[str, Any] = Field(default_factory=dict)
    provenance: Provenance
    payloads: dict[str, PayloadDescriptor] = Field(
        description="member role -> its descriptor, discriminated by `kind`"
    )
    members: list[str] = Field(description="payload member extensions, in shard order")

    @field_validator("members")
    @classmethod
    def _members_are_extensions(cls, v: list[str]) -> list[str]:
        for m in v:
            if not m or m.startswith(".") or "/" in m:
                raise ValueError(f"bad member extension {m!r}")
        return v

    @model_validator(mode="after")
    def _one_member_per_role(self) -> SampleMeta:
        for role, desc in self.payloads.items():
            if not re.match(ROLE_PATTERN, role) or role in RESERVED_ROLES:
                raise ValueError(f"payload role {role!r} is reserved or not [A-Za-z0-9_-]")
            if desc.member.partition(".")[0] != role:
                raise ValueError(f"payload {role!r} names member {desc.member!r}, not {role}.*")
        named = sorted(d.member for d in self.payloads.values())
        if named != sorted(self.members):
            raise ValueError(f"members {sorted(self.members)} are not the payloads' {named}")
        return self


class ShardInfo(_Strict):
    path: str = Field(description="relative to the build directory")
    format: Literal["webdataset", "parquet"]
    source: str
    split: Split
    samples: int
    bytes: int
    sha256: str


class SplitCounts(_Strict):
    listed: int = 0
    written: int = 0
    quarantined: int = 0
    filtered: int = 0
    samples: int = 0
    filtered_reasons: dict[str, int] = Field(default_factory=dict)
    original_rates: dict[str, int] = Field(
        default_factory=dict,
        description="signal payloads per original sampling rate in Hz (e.g. PTB-XL records "
        "read from records100/ because records500/ lacks them)",
    )


class SourceSummary(_Strict):
    version: str
    license: str
    access: AccessKind
    modality: Modality
    split_policy: str | None = None
    split_unit: str | None = Field(
        default=None, description="what one split holds whole: patient, image, ..."
    )
    concepts: list[str] | None = Field(
        default=None,
        description="unified concepts this build of the source can express (the label mask)",
    )
    label_files: dict[str, str] = Field(
        default_factory=dict,
        description="relative path -> sha256 of the files the labels were read from",
    )
    counts: dict[str, SplitCounts] = Field(description="per split")


class ReleaseSplit(_Strict):
    """One source's split in a release: what the diff between releases compares."""

    samples: int
    digest: str = Field(description="sha256 over the sorted `key<TAB>content hash` lines")
    label_histogram: dict[str, int] = Field(description="unified concept id -> samples")
    sample_hashes: dict[str, str] = Field(description="sample key -> content hash")


class ReleaseInfo(_Strict):
    """What `medshard release` adds to a build's manifest."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    date: str | None = Field(default=None, description="release date, only when the user gives it")
    previous_version: str | None = None
    previous_manifest_sha256: str | None = None
    required_bump: Literal["initial", "patch", "minor", "major"]
    content_hash: str = Field(description="how a sample's content hash is computed")
    adapters: dict[str, str] = Field(description="source -> adapter module and code digest")
    splits: dict[str, dict[str, ReleaseSplit]] = Field(description="source -> split -> ...")


class DuplicateCopy(_Strict):
    """One sample holding a duplicated payload."""

    source: str
    split: Split
    key: str
    member: str = Field(description="the payload member whose bytes repeat, e.g. image.jpg")


class DuplicateGroup(_Strict):
    """Samples whose payloads hold byte-identical content, first copy first."""

    sha256: str = Field(description="sha256 of the repeated payload's stored bytes")
    copies: list[DuplicateCopy] = Field(
        description="every sample holding these bytes, in build order (source, split, key)")
    dropped: list[str] = Field(
        default_factory=list, description="keys --dedupe removed (every copy but the first)")


class DuplicateLink(_Strict):
    """How many duplicate groups join two places (`source/split`) of a build."""

    a: str = Field(description="source/split")
    b: str = Field(description="source/split (the same as a: copies within one split)")
    groups: int


class DuplicateReport(_Strict):
    """Exact duplicates among a build's samples, by content hash of each stored payload."""

    content_hash: str = Field(description="what is hashed, and what is not")
    order: str = Field(description="which copy of a group counts as the first")
    payloads_hashed: int = Field(ge=0)
    groups: int = Field(ge=0, description="distinct contents held by more than one sample")
    extra_copies: int = Field(ge=0, description="samples beyond the first copy of each group")
    across_sources: int = Field(ge=0, description="groups whose copies span several sources")
    across_splits: int = Field(ge=0, description="groups whose copies span several splits")
    within_one_split: int = Field(
        ge=0, description="groups whose copies all lie in one split of one source")
    dedupe: bool = Field(description="true when --dedupe removed every copy but the first")
    dropped: int = Field(ge=0, description="samples --dedupe removed")
    links: list[DuplicateLink] = Field(
        description="groups per pair of places, each pair once (a <= b)")
    duplicate_groups: list[DuplicateGroup] = Field(description="every group, by first copy")


class Manifest(_Strict):
    schema_version: str = SCHEMA_VERSION
    medshard_version: str
    config: dict[str, Any]
    config_hash: str
    vocabulary_version: str
    pseudonym_key_id: str = Field(
        description="fingerprint of the installation secret used for subject pseudonyms"
    )
    sources: dict[str, SourceSummary]
    shards: list[ShardInfo]
    raw_receipts: dict[str, str] = Field(
        default_factory=dict,
        description="source -> sha256 over its download receipt's (path, size, sha256) list",
    )
    release: ReleaseInfo | None = Field(default=None, description="set in a release only")
    duplicates: DuplicateReport | None = Field(
        default=None, description="exact duplicate payloads within and across sources and splits")
