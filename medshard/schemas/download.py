"""How a source's raw files are fetched, and what medshard records about it.

A source declares a `DownloadSpec` as data (like its `info`); the download engine
turns it into verified transfers. A `Receipt` lists every file that landed under
`DATA_ROOT/<slug>/`; a `ConsentEntry` is one line of the local consent ledger.
Neither receipts nor ledger entries ever hold credentials.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Provider = Literal["https", "physionet", "kaggle", "zenodo", "github", "tcia", "manual"]
RECEIPT_NAME = ".medshard-receipt.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_relpath(path: str) -> str:
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{path!r} is not a clean relative path (no '..', '.', '//', '\\\\')")
    return path


class FileSpec(_Strict):
    """One file of a source, relative to `DATA_ROOT/<slug>/`, with what is known about it."""

    path: str = Field(description="relative path under the source directory, '/'-separated")
    url: str | None = Field(default=None, description="where to fetch it (https provider)")
    size: int | None = Field(default=None, ge=0)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    md5: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    extract: bool = Field(
        default=False, description="an archive: unpack into the source directory, then remove it"
    )
    strip_components: int = Field(default=0, ge=0, description="leading path parts to drop")

    @field_validator("path")
    @classmethod
    def _clean_path(cls, v: str) -> str:
        return _check_relpath(v)


class ManualSteps(_Strict):
    """What a person does by hand, and which files prove it was done.

    `layouts` names alternative complete layouts (e.g. CheXpert's small and full
    release); the download succeeds when any one is complete. `archives` are
    files the user may place instead; medshard unpacks them safely first.
    """

    url: str = Field(description="the page where the steps start")
    steps: list[str] = Field(min_length=1)
    layouts: dict[str, list[FileSpec]] = Field(
        default_factory=dict,
        description="named complete layouts; none: the source's own check of its root decides",
    )
    archives: list[FileSpec] = Field(default_factory=list)


class DownloadSpec(_Strict):
    """Where a source's raw files come from. Fields beyond `provider` depend on the provider.

    - https:     `files` with `url` each.
    - physionet: `project`, `version`; the project's SHA256SUMS.txt lists the files,
                 `include` (glob patterns) selects some; `files` may pin extra ones.
    - kaggle:    `dataset` ("owner/name") or `competition`; `version` pins a dataset version;
                 `files` may pin the archive's size/sha256.
    - zenodo:    `record`; the record API gives names, sizes and md5 checksums.
    - github:    `repo` ("owner/name") and `tag` (release assets, filtered by `include`)
                 or `ref` (source archive).
    - tcia:      `collection` (optionally `modality`); one folder per series.
    - manual:    `manual` steps; medshard verifies what the user placed.
    """

    provider: Provider
    files: list[FileSpec] = Field(default_factory=list)
    include: list[str] = Field(default_factory=list, description="glob patterns; empty: all")
    project: str | None = None
    version: str | None = None
    dataset: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$")
    competition: str | None = Field(default=None, pattern=r"^[\w.-]+$")
    record: str | None = Field(default=None, pattern=r"^\d+$")
    repo: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$")
    tag: str | None = None
    ref: str | None = None
    collection: str | None = None
    modality: str | None = None
    manual: ManualSteps | None = None
    approx_bytes: int | None = Field(
        default=None, ge=0, description="total size when files do not say, for the disk check"
    )

    @model_validator(mode="after")
    def _provider_fields(self) -> DownloadSpec:
        need: dict[str, tuple[str, ...]] = {
            "physionet": ("project", "version"),
            "zenodo": ("record",),
            "github": ("repo",),
            "tcia": ("collection",),
            "manual": ("manual",),
        }
        missing = [f for f in need.get(self.provider, ()) if getattr(self, f) is None]
        if missing:
            raise ValueError(f"provider {self.provider!r} needs {missing}")
        if self.provider == "https" and (not self.files or any(f.url is None for f in self.files)):
            raise ValueError("provider 'https' needs files, each with a url")
        if self.provider == "kaggle" and (self.dataset is None) == (self.competition is None):
            raise ValueError("provider 'kaggle' needs exactly one of dataset / competition")
        if self.provider == "github" and (self.tag is None) == (self.ref is None):
            raise ValueError("provider 'github' needs exactly one of tag (release) / ref (archive)")
        return self

    def describe(self) -> list[str]:
        """How `medshard download` gets the files, in lines a person reads (`medshard info`)."""
        where = {
            "physionet": f"PhysioNet project {self.project} {self.version} (SHA256SUMS verified)",
            "kaggle": f"Kaggle {'competition ' + str(self.competition) if self.competition else 'dataset ' + str(self.dataset)}",
            "zenodo": f"Zenodo record {self.record} (md5 verified)",
            "github": f"GitHub {self.repo} {'release ' + str(self.tag) if self.tag else 'archive ' + str(self.ref)}",
            "tcia": f"TCIA collection {self.collection}",
            "https": f"{len(self.files)} file(s) over https",
        }
        if self.provider != "manual":
            return [f"`medshard download` fetches it: {where.get(self.provider, self.provider)}"]
        assert self.manual is not None
        lines = [f"by hand (medshard prints these steps, then verifies the copy); start at "
                 f"{self.manual.url}"]
        lines += [f"{n}. {step}" for n, step in enumerate(self.manual.steps, start=1)]
        return lines


class ReceiptFile(_Strict):
    path: str
    size: int
    sha256: str
    origin: str = Field(description="URL without credentials, 'archive!member' or 'manual'")


class Receipt(_Strict):
    """What `medshard download` put under `DATA_ROOT/<slug>/`; no credentials, ever."""

    source: str
    provider: str
    spec_hash: str = Field(description="hash of the DownloadSpec the files were fetched under")
    completed_at: str = Field(description="UTC, ISO 8601")
    medshard_version: str
    files: list[ReceiptFile]


class ConsentEntry(_Strict):
    """One line of the consent ledger: an acceptance or a revocation of a source's terms."""

    action: Literal["accept", "revoke"]
    source: str
    terms_name: str
    terms_url: str | None
    terms_version: str
    user: str
    at: str = Field(description="UTC, ISO 8601")
