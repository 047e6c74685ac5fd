"""The source contract: declarative info plus `list_records` and `load`.

A source never writes files and knows nothing about shards, Beam or PyTorch.
"""

from __future__ import annotations

import csv
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medshard.formats.confine import resolve_in_root
from medshard.schemas import BadRow, RawRecord, RecordError, Sample, SourceInfo
from medshard.sources.splits import hash_split


class SourceOptions(BaseModel):
    """A source's options: typed, bounded, documented (`medshard info` prints them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CarveValOptions(SourceOptions):
    """Options of a source whose validation split is carved from its official train split."""

    val_fraction: float = Field(
        0.1, ge=0.0, lt=1.0,
        description="share of the official train subjects moved to val, by keyed subject hash",
    )


class DicomImageOptions(SourceOptions):
    """Options of a source whose images are DICOM (formats/dicom.py's read_image)."""

    monochrome1: typing.Literal["invert", "keep"] = Field(
        "invert", description="invert MONOCHROME1 images to MONOCHROME2 (exact), or keep them"
    )
    burned_in: typing.Literal["quarantine", "keep"] = Field(
        "quarantine", description="images flagged BurnedInAnnotation=YES (text in the pixels): "
        "quarantined, or kept and flagged burned_in_annotation = true in the image's meta",
    )


# What parsing one malformed index row raises: a bad row, never a crashed build.
# (pydantic's ValidationError is a ValueError; UnicodeError too.)
ROW_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, KeyError, IndexError, SyntaxError, TypeError, ArithmeticError,
)


def row_error_reason(exc: BaseException) -> str:
    """One line saying why a row was refused."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if hasattr(exc, "errors") and callable(exc.errors):  # pydantic ValidationError
        first = exc.errors()[0]
        text = f"{'.'.join(str(x) for x in first['loc'])}: {first['msg']}"
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


class MissingRawData(Exception):
    """The raw files of a source are not where the user said they are."""


def _bound(m: Any) -> str:
    """`Ge(ge=0.0)` -> ">= 0.0": an option's bound as people write it."""
    for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        if hasattr(m, attr):
            return f"{sign} {getattr(m, attr)}"
    return ""


def _option_error(exc: ValidationError, model: type[SourceOptions]) -> str:
    """One line for the first problem of a ValidationError on source options."""
    e = exc.errors()[0]
    name = ".".join(str(x) for x in e["loc"])
    if e["type"] == "extra_forbidden":
        return f"unknown option {name!r}; known: {', '.join(sorted(model.model_fields)) or 'none'}"
    return f"option {name}={e.get('input')!r}: {e['msg']}"


class Source:
    """Base class for a dataset. Subclasses set `info` and implement the two functions.

    Options (e.g. CheXpert's uncertainty policy) are keyword arguments of the
    constructor and listed in `options()`, so they enter the build config hash.
    """

    info: ClassVar[SourceInfo]
    Options: ClassVar[type[SourceOptions]] = SourceOptions
    # How `medshard download` fetches the raw files (medshard.schemas.download.DownloadSpec);
    # None: the source declares no download yet. Manual steps live there and only there.
    download: ClassVar[Any] = None
    # "package.module:FIXTURE": the source's miniature raw copy (medshard.testing.Fixture)
    fixture: ClassVar[str | None] = None
    # class -> concept ids, for a source that vocabulary.json does not know (third-party)
    vocabulary_map: ClassVar[dict[str, list[str]] | None] = None
    # Every payload member (`<role>.<ext>`) a sample of this source may carry, e.g.
    # ("image.png", "image.npy"). A Parquet build gets one column per member of every
    # source, so all its shards share one schema; a member not declared is quarantined.
    payload_members: ClassVar[tuple[str, ...]] = ()
    # The meta fields that hold the index's first-class demographic columns, where the
    # source names them otherwise: {"sex": ..., "age_years": ..., "site": ...}; the
    # defaults are the meta fields "sex", "age" and "site".
    demographic_fields: ClassVar[dict[str, str]] = {}
    # Label files every copy of the dataset holds, relative to the root (its metadata CSV,
    # ...): the base `check_root` refuses a root that lacks one, naming it and `root_hint`
    # (what to put there), and the base `label_files` returns them.
    required_files: ClassVar[tuple[str, ...]] = ()
    root_hint: ClassVar[str] = ""

    # Set by the build (--follow-symlinks): read symlinks whose target stays in the root.
    follow_symlinks_within_root: bool = False

    def __init__(self, **options: Any) -> None:
        try:
            self.opts = self.Options(**options)
        except ValidationError as exc:
            raise ValueError(f"{self.info.name}: {_option_error(exc, self.Options)}") from None
        self._options = self.opts.model_dump()

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        return cls.Options().model_dump()

    @classmethod
    def option_docs(cls) -> list[tuple[str, str, Any, str]]:
        """(name, type, default, description) of each option, for `medshard info`."""
        out = []
        for name, f in cls.Options.model_fields.items():
            if typing.get_origin(f.annotation) is typing.Literal:
                kind = "one of " + ", ".join(repr(a) for a in typing.get_args(f.annotation))
            else:
                kind = getattr(f.annotation, "__name__", None) or str(f.annotation)
            bounds = [_bound(m) for m in f.metadata if _bound(m)]
            out.append((name, kind + (f" ({', '.join(bounds)})" if bounds else ""), f.default,
                        f.description or ""))
        return out

    @classmethod
    def invalid_option_values(cls) -> dict[str, Any]:
        """A value each option must refuse, from its type and bounds (the kit tries them)."""
        bad: dict[str, Any] = {}
        for name, f in cls.Options.model_fields.items():
            if typing.get_origin(f.annotation) is typing.Literal:
                bad[name] = "not-one-of-the-choices"
            elif f.annotation in (int, float):
                for m in f.metadata:
                    if isinstance(m, (annotated_types.Ge, annotated_types.Gt)):
                        bad[name] = (m.ge if isinstance(m, annotated_types.Ge) else m.gt) - 1
                    elif isinstance(m, (annotated_types.Le, annotated_types.Lt)):
                        bad[name] = (m.le if isinstance(m, annotated_types.Le) else m.lt) + 1
                bad.setdefault(name, "not-a-number")
            elif f.annotation is bool:
                bad[name] = "perhaps"
        return bad

    def options(self) -> dict[str, Any]:
        return dict(self._options)

    def carve_val(self, official: str | None, subject_id: str) -> str | None:
        """The split policy "val is carved from train by keyed subject hash", in one place.

        Subjects of the official train split go to val with probability `val_fraction`
        (HMAC-SHA256 keyed "medshard-split:<source>"), so a subject never straddles the two.
        """
        frac = float(self._options["val_fraction"])
        if official != "train" or frac == 0:
            return official
        return hash_split(self.info.name, subject_id, {"train": 1.0 - frac, "val": frac})

    def path(self, root: Path, rel: str | Path) -> Path:
        """The resolved path of `rel` (relative to `root`) to open; every read goes through
        here. Raises OutsideRoot (a RecordError) for `..`, absolute paths and symlinks
        leaving the root, and for any symlink unless `follow_symlinks_within_root`."""
        return resolve_in_root(root, rel,
                               follow_symlinks_within_root=self.follow_symlinks_within_root)

    def read_bytes(self, root: Path, rel: str, what: str = "image file") -> bytes:
        """The bytes of `rel`, opened through `path`; a missing file is a RecordError
        ("missing <what> <rel>"), quarantined like any broken record."""
        try:
            return self.path(root, rel).read_bytes()
        except FileNotFoundError:
            raise RecordError(f"missing {what} {rel}") from None

    def csv_records(
        self,
        root: Path,
        rel: str,
        parse: Callable[[dict[str, str]], RawRecord | None],
        *,
        encoding: str = "utf-8",
        delimiter: str = ",",
    ) -> Iterator[RawRecord | BadRow]:
        """`parse(row)` for each row of the CSV `rel` (TSV: delimiter="\t"); a row it
        cannot parse (ROW_ERRORS) becomes a BadRow with the file and line, and the listing
        goes on. None: skip."""
        with open(self.path(root, rel), newline="", encoding=encoding, errors="strict") as f:
            reader = csv.DictReader(f, delimiter=delimiter)
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except (csv.Error, UnicodeError) as exc:
                    yield BadRow(rel, reader.line_num + 1, row_error_reason(exc),
                                 type(exc).__name__)
                    return  # the reader cannot resync after a decoding error
                try:
                    record = parse(row)
                except ROW_ERRORS as exc:
                    yield BadRow(rel, reader.line_num, row_error_reason(exc), type(exc).__name__)
                    continue
                if record is not None:
                    yield record

    def check_root(self, root: Path) -> None:
        """Raise MissingRawData with what to do when `root` lacks the source's layout."""
        if not root.is_dir():
            raise MissingRawData(f"{self.info.name}: raw data directory {root} does not exist")
        for rel in self.required_files:
            if not (root / rel).is_file():
                hint = self.root_hint or f"see `medshard info {self.info.name}`"
                raise MissingRawData(f"{self.info.name}: {rel} not found in {root}; {hint}")

    def label_classes(self) -> list[str]:
        """The classes this source emits with its current options (default: all of
        `info.label_space`). Their unified concepts form the build's label mask, so a
        class an option makes impossible is never a silent negative."""
        return list(self.info.label_space)

    def label_files(self, root: Path) -> list[str]:
        """Files (relative to `root`) shared by every record that labels are read from.

        Their sha256 goes into every sample's provenance and the manifest, and a change
        in them rebuilds the source's shards (upstream revises label files in place).
        Default: those of `required_files` that are there.
        """
        return [rel for rel in self.required_files if (root / rel).is_file()]

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        """Raw records, and a BadRow for each index row that cannot make one."""
        raise NotImplementedError

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        raise NotImplementedError

    def estimate_output_bytes(self, record: RawRecord) -> int:
        """Bytes a record will take in a shard; used to plan shards before any payload is read."""
        return max(record.size_bytes, 1)
