"""ABCD resting-state connectomes as CLIMB reads them: BrainNetworkTransformer's copy
(Pearson matrices on the HCP 2016 parcellation), sex classification.

Raw layout (the files CLIMB's loaders open, named as in BrainNetworkTransformer's ABCD.yaml):

    abcd_rest-pearson-HCP2016.npy            N x R x R float Pearson matrices (R = 360)
    ids_HCP2016.txt                          N lines: the subject id of each matrix, in order
    id2sex.txt                               CSV with columns id, sex (M / F)
    abcd_rest-timeseires-HCP2016.npy         optional: N' x R x T ROI time series
    ids_HCP2016_timeseires.txt               optional: the subject id of each series

What is confirmed and what is not. CLIMB gives no access details for ABCD; its code points
to braingb.us and reads exactly the three first files (matrices, ids, id2sex), matching
ids to sexes by id, and predicts sex: that is the task here (classes M / F, id2sex's
values verbatim), not Table 7's Normal/Abnormal, whose meaning is stated nowhere.
The file names say resting state, Pearson and HCP2016 (the HCP multimodal parcellation,
360 ROIs; CLIMB's brain GNN takes 360 input channels); BrainNetworkTransformer's loader
(`source/dataset/abcd.py`) drops subjects whose matrix holds NaN and those without a sex.
Unconfirmed: how the copy is distributed (the ABCD Data Use Certification through NDA
governs ABCD data; BrainGB/BNT share the derived matrices on request), the ABCD release it
was cut from, the ROI order (taken as the atlas's label order, node ids "1".."R"), the
exact id format (NDA GUIDs, `NDAR_INV...`, are assumed), and the dtype (any float).

What `load` yields: one graph per subject (`connectome`) from its shipped matrix
(`connectivity="shipped"`, CLIMB's input: computed upstream, recorded as such), or, with
`connectivity="timeseries"`, the Pearson correlation of its ROI series computed here
(`connectome.pearson_connectivity`); then the options of `connectome.ConnectomeOptions`
(CLIMB's graph by default). A ROI whose row holds NaN (a constant series upstream) is
zeroed and listed in meta `constant_rois` (or quarantined, `constant_roi=quarantine`);
BNT drops such subjects, CLIMB keeps them with a NaN mask. A subject without a sex in
id2sex.txt is filtered (both drop it). Split: no official split (CLIMB: random 70/10/20);
keyed hash of the subject id. No site is shipped in this layout: `site` is null.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from medshard.schemas import BadRow, License, Payload, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.schemas.sample import Filtered
from medshard.sources.base import MissingRawData, Source
from medshard.sources.brain_networks.connectome import (
    ConnectomeOptions,
    connectome_graph,
    nan_rois,
    pearson_connectivity,
)

PEARSON = "abcd_rest-pearson-HCP2016.npy"
IDS = "ids_HCP2016.txt"
ID2SEX = "id2sex.txt"
SERIES = "abcd_rest-timeseires-HCP2016.npy"  # BNT's spelling
SERIES_IDS = "ids_HCP2016_timeseires.txt"
SEXES = ("M", "F")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SHIPPED = "Pearson correlation of ROI time series (shipped by the copy, computed upstream)"
COMPUTED = "Pearson correlation of ROI time series"


class ABCDOptions(ConnectomeOptions):
    connectivity: Literal["shipped", "timeseries"] = Field(
        "shipped", description="shipped: the copy's Pearson matrices (CLIMB's input); "
        "timeseries: Pearson correlation computed here from abcd_rest-timeseires-HCP2016.npy")


def npy_shape(f: Any) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from an open `.npy` file's header, reading nothing else."""
    version = np.lib.format.read_magic(f)
    reader = {(1, 0): np.lib.format.read_array_header_1_0,
              (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if reader is None:
        raise MissingRawData(f"abcd: .npy format version {version} is not 1.0 or 2.0")
    shape, _fortran, dtype = reader(f)
    return shape, dtype


@lru_cache(maxsize=4)
def _mapped(path: str, size: int, mtime: float) -> np.ndarray:
    """The `.npy` memory-mapped once per process (size and mtime key a changed file)."""
    return np.load(path, mmap_mode="r", allow_pickle=False)


def _row(path: Path, index: int, name: str) -> np.ndarray:
    st = path.stat()
    try:
        arr = _mapped(str(path), st.st_size, st.st_mtime)
    except (ValueError, OSError) as exc:
        raise RecordError(f"{name}: cannot memory-map it ({exc}); re-download the file") \
            from None
    if not np.issubdtype(arr.dtype, np.floating) or index >= arr.shape[0]:
        raise RecordError(f"{name}: no float row {index} (dtype {arr.dtype}, {arr.shape[0]} rows)")
    return np.array(arr[index], dtype=np.float64)


class ABCD(Source):
    payload_members = ("connectome.npz",)
    info: ClassVar[SourceInfo] = SourceInfo(
        name="abcd",
        title="ABCD resting-state functional connectomes (BrainNetworkTransformer/BrainGB "
        "copy, HCP 2016 atlas), sex classification",
        version="BrainNetworkTransformer ABCD copy (abcd_rest-pearson-HCP2016); ABCD release "
        "unconfirmed",
        modality="graph",
        tasks=["sex classification"],
        license=License(name="ABCD Study Data Use Certification (NIMH Data Archive); "
                        "unconfirmed for the derived copy",
                        url="https://nda.nih.gov/abcd", terms_version="not stated",
                        credentialed=True),
        access="credentialed",
        homepage="https://abcdstudy.org/",
        citation="Casey BJ, et al. The Adolescent Brain Cognitive Development (ABCD) study: "
        "imaging acquisition across 21 sites. Dev Cogn Neurosci 2018. Kan X, et al. Brain "
        "Network Transformer. NeurIPS 2022.",
        label_space=list(SEXES),
        split_policy="no official split: keyed hash of the subject id (80/10/10 by default); "
        "CLIMB splits 70/10/20 at random; no site in this layout",
        split_unit="subject",
        published_counts=PublishedCounts(
            train=7650, test=1613, unit="subjects",
            reference="CLIMB Table/A.2 (7,650 + 1,613 = 9,263, not the 9,563 it totals; "
            "CLIMB's loader notes 9,557 ids with a sex)"),
        release_notes={"0.1.0": "first medshard adapter: BNT's ABCD copy, sex as the task; "
                       "distribution and release unconfirmed"},
    )
    Options = ABCDOptions
    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://braingb.us/datasets/",
        steps=[
            "Obtain ABCD access through the NIMH Data Archive (a Data Use Certification "
            "at https://nda.nih.gov/abcd); the connectome copy CLIMB reads is BrainGB / "
            "BrainNetworkTransformer's, which they share with ABCD-approved users (see the "
            "page above: how it is requested is not confirmed here).",
            "Put abcd_rest-pearson-HCP2016.npy, ids_HCP2016.txt and id2sex.txt (and, for "
            "connectivity=timeseries, abcd_rest-timeseires-HCP2016.npy with "
            "ids_HCP2016_timeseires.txt) into the folder named below.",
        ],
    ))
    fixture: ClassVar[str | None] = "medshard.sources.brain_networks.abcd_fixture:FIXTURE"

    def _matrix_file(self) -> tuple[str, str]:
        if self._options["connectivity"] == "timeseries":
            return SERIES, SERIES_IDS
        return PEARSON, IDS

    def label_files(self, root: Path) -> list[str]:
        return [self._matrix_file()[1], ID2SEX]

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        missing = [n for n in (*self._matrix_file(), ID2SEX) if not (root / n).is_file()]
        if missing:
            raise MissingRawData(f"abcd: {', '.join(missing)} not in {root}; put the ABCD "
                                 "connectome copy there (medshard info abcd)")

    def _sexes(self, root: Path) -> tuple[dict[str, str], list[BadRow]]:
        sexes: dict[str, str] = {}
        bad: list[BadRow] = []

        def parse(row: dict[str, str]) -> None:
            sid, sex = row["id"].strip(), row["sex"].strip()
            if sex not in SEXES:
                raise ValueError(f"sex {sex!r} is not M or F")
            sexes[sid] = sex

        for entry in self.csv_records(root, ID2SEX, parse):
            bad.append(entry)
        return sexes, bad

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        """One record per line of the ids file; reads the ids, id2sex.txt and the .npy header."""
        self.check_root(root)
        matrix, ids_file = self._matrix_file()
        with open(self.path(root, ids_file), encoding="utf-8", errors="replace") as f:
            ids = [line.strip() for line in f.read().splitlines()]
        while ids and not ids[-1]:
            ids.pop()
        try:
            with open(self.path(root, matrix), "rb") as f:
                shape, dtype = npy_shape(f)
        except RecordError:  # a symlink out of the root: every record's load says so
            shape, dtype = (len(ids), 0, 0), np.dtype(np.float32)
        if len(shape) != 3 or shape[0] != len(ids):
            raise MissingRawData(f"abcd: {matrix} holds shape {shape} but {ids_file} lists "
                                 f"{len(ids)} ids; the two files must come from one copy")
        sexes, bad = self._sexes(root)
        yield from bad
        per_row = max(int(np.prod(shape[1:])) * np.dtype(dtype).itemsize, 1)
        seen: set[str] = set()
        for i, sid in enumerate(ids):
            if not _ID.match(sid) or sid in seen:
                yield BadRow(ids_file, i + 1, f"id {sid[:40]!r} is "
                             + ("listed twice" if sid in seen else "not an id"), "ValueError")
                continue
            seen.add(sid)
            yield RawRecord(
                record_id=sid, subject_id=sid, files=[matrix], size_bytes=per_row,
                source_labels={"sex": sexes.get(sid)},
                meta={"row": i, "sex": sexes.get(sid), "site": None},
            )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        sex = record.source_labels["sex"]
        if sex is None:
            raise Filtered("no sex in id2sex.txt")
        rel = record.files[0]
        values = _row(self.path(root, rel), int(record.meta["row"]), rel)
        o = self._options
        if o["connectivity"] == "timeseries":
            corr, constant = pearson_connectivity(values.T)  # stored R x T
            measure = COMPUTED
        else:
            corr, constant, measure = values, nan_rois(values), SHIPPED
        n = corr.shape[0]
        data, desc, extra = connectome_graph(corr, [str(i + 1) for i in range(n)], o,
                                             constant, measure)
        yield Sample(
            classes=[sex],
            source_labels=dict(record.source_labels),
            payloads={"connectome": Payload("graph", data, desc)},
            meta={**record.meta, **extra, "atlas": "HCP2016",
                  "atlas_name": "HCP multimodal parcellation 1.0 (Glasser 2016), as the copy "
                  "names it; ROI order unconfirmed",
                  "connectivity_source": o["connectivity"]},
            task="sex classification",
        )
