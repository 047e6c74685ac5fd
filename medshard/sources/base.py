"""The source contract: declarative info plus `list_records` and `load`.

A source never writes files and knows nothing about shards, Beam or PyTorch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from medshard.schemas import RawRecord, Sample, SourceInfo


class MissingRawData(Exception):
    """The raw files of a source are not where the user said they are."""


class Source:
    """Base class for a dataset. Subclasses set `info` and implement the two functions.

    Options (e.g. CheXpert's uncertainty policy) are keyword arguments of the
    constructor and listed in `options()`, so they enter the build config hash.
    """

    info: ClassVar[SourceInfo]
    # How `medshard download` fetches the raw files (medshard.schemas.download.DownloadSpec);
    # None: the source declares no download yet.
    download: ClassVar[Any] = None

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - set(self.default_options())
        if unknown:
            raise ValueError(
                f"unknown option(s) {sorted(unknown)} for source {self.info.name}; "
                f"known: {sorted(self.default_options())}"
            )
        self._options = {**self.default_options(), **options}

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        return {}

    def options(self) -> dict[str, Any]:
        return dict(self._options)

    def check_root(self, root: Path) -> None:
        """Raise MissingRawData with what to do when `root` lacks the source's layout."""
        if not root.is_dir():
            raise MissingRawData(f"{self.info.name}: raw data directory {root} does not exist")

    def label_classes(self) -> list[str]:
        """The classes this source emits with its current options (default: all of
        `info.label_space`). Their unified concepts form the build's label mask, so a
        class an option makes impossible is never a silent negative."""
        return list(self.info.label_space)

    def label_files(self, root: Path) -> list[str]:
        """Files (relative to `root`) shared by every record that labels are read from.

        Their sha256 goes into every sample's provenance and the manifest, and a change
        in them rebuilds the source's shards (upstream revises label files in place).
        """
        return []

    def list_records(self, root: Path) -> Iterator[RawRecord]:
        raise NotImplementedError

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        raise NotImplementedError

    def estimate_output_bytes(self, record: RawRecord) -> int:
        """Bytes a record will take in a shard; used to plan shards before any payload is read."""
        return max(record.size_bytes, 1)
