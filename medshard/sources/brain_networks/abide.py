"""ABIDE I preprocessed (Preprocessed Connectomes Project): one resting-state functional
connectome per subject, autism spectrum disorder (ASD) vs typical controls.

Raw layout (the PCP release: the `fcp-indi` S3 bucket's paths, or nilearn's fetch_abide_pcp copy):

    Phenotypic_V1_0b_preprocessed1.csv        one row per subject: SUB_ID, FILE_ID,
                                              SITE_ID, DX_GROUP, AGE_AT_SCAN, SEX, ...
    Outputs/<pipeline>/<strategy>/rois_<atlas>/<FILE_ID>_rois_<atlas>.1D
                                              e.g. Outputs/cpac/filt_noglobal/rois_cc200/
                                              Pitt_0050003_rois_cc200.1D
    or, as nilearn.datasets.fetch_abide_pcp(data_dir=ROOT) saves it:
    ABIDE_pcp/Phenotypic_V1_0b_preprocessed1.csv
    ABIDE_pcp/<pipeline>/<strategy>/<FILE_ID>_rois_<atlas>.1D

    A `.1D` file is an AFNI-style whitespace table: a header line naming the ROIs
    (`#1 #2 ... #200` for CC200, the atlas's label values for AAL and the others), then
    one row per volume (TR) with one column per ROI: the mean BOLD signal of its voxels.

Facts and where they came from: the S3 path template `Outputs/<pipeline>/<strategy>/
<derivative>/<FILE_ID>_<derivative>.1D`, the pipelines (ccs, cpac, dparsf, niak), the four
strategies (filt/nofilt x global/noglobal: band-pass filtering and global signal
regression), the ROI derivatives (rois_aal, rois_cc200, rois_cc400, rois_dosenbach160,
rois_ez, rois_ho, rois_tt) and the phenotypic file's name: the PCP ABIDE pages
(preprocessed-connectomes-project.org/abide, `cpac.md`) and nilearn's `fetch_abide_pcp`
(which also gives its own folder layout, reads a `.1D` with `np.loadtxt`, so `#`-comment
header, and drops FILE_ID `no_filename`); quoted phenotypic fields may hold commas;
DX_GROUP 1 = autism, 2 = control; SEX 1 = male, 2 = female: nilearn's documentation of
the phenotypic filters; FILE_ID `no_filename` for the subjects the PCP did not
preprocess: nilearn's code. -9999 as the missing-value code of numeric columns is from
memory of the ABIDE phenotypic legend, not confirmed here: read as null (so is a blank).

What CLIMB's numbers come from: CLIMB's `src/datasets/mri/abide.py` and
`models/graphs/brain_datasets.py` read BrainNetworkTransformer's repackaged `abide.npy`
(a pickled dict with `corr`, `label`, `site`, `timeseires`, as BNT's loader reads it;
1,009 subjects, the CLIMB count) - a copy derived from this PCP release (CC200, 200 ROIs,
per the BNT paper as we recall it; unconfirmed). Which PCP
pipeline and strategy that copy used is not stated where we could read it (unconfirmed);
medshard reads the owner's release, and the defaults (cpac, filt_noglobal, cc200) are
options. CLIMB splits 70/10/20 stratified by site (`StratifiedShuffleSplit`, seed 42);
its paper's table counts 807/202.

What `load` yields: one graph per subject (`connectome`), nodes = the atlas's ROIs (ids
from the `.1D` header), edge weights = the Pearson correlation of the ROI time series,
computed here (`connectome.pearson_connectivity`, float64), then the options of
`connectome.ConnectomeOptions` (CLIMB's graph by default: every non-zero entry an edge,
the diagonal included, node features = each ROI's row of the matrix). A ROI with a
constant series (e.g. all zeros, a parcel without signal in the subject's run; CLIMB's
GNN code masks the NaN such ROIs give) has no correlation: by default its entries are 0
(no edges) and it is listed in meta `constant_rois`, so the subject is kept as CLIMB keeps
it and the gap is explicit; `constant_roi=quarantine` quarantines the subject instead.

Labels: `DX_GROUP` verbatim in `source_labels`; classes `ASD` (1) and `Typical controls`
(2; the class names are CLIMB Table 7's). Split: no official split; keyed hash of SUB_ID.
Sites: `SITE_ID` is meta `site` (the index's `site` column); multi-site leakage is ABIDE's
known pitfall, so `medshard.jobs.sites.write_leave_site_out` (CLI `medshard sites BUILD
--out DIR`) writes, from a finished build, per site a `held_out.json` and a `train.json`
key list that the loader's `keys=` takes: leave-one-site-out training without a rebuild.
Subjects without preprocessed data (FILE_ID `no_filename`) are filtered. The free-text
phenotypic columns (medication, comorbidity, QC notes) never leave the source.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from medshard.schemas import License, Payload, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.schemas.sample import Filtered
from medshard.sources.base import MissingRawData, Source
from medshard.sources.brain_networks.connectome import (
    ConnectomeOptions,
    connectome_graph,
    pearson_connectivity,
)

PHENOTYPIC = "Phenotypic_V1_0b_preprocessed1.csv"
DX_GROUPS = {1: "ASD", 2: "Typical controls"}
SEXES = {1: "M", 2: "F"}
MISSING = -9999.0  # ABIDE's code for a missing numeric value
NILEARN = "ABIDE_pcp"  # the folder nilearn's fetch_abide_pcp writes under its data_dir
ATLASES = {
    "cc200": "Craddock 200 (CC200, spatially constrained spectral clustering)",
    "cc400": "Craddock 400 (CC400)",
    "aal": "Automated Anatomical Labeling (AAL)",
    "ez": "Eickhoff-Zilles (EZ)",
    "ho": "Harvard-Oxford (HO)",
    "tt": "Talairach-Tournoux (TT)",
    "dosenbach160": "Dosenbach 160",
}
_ID = re.compile(r"^[A-Za-z0-9_-]+$")
MEASURE = "Pearson correlation of ROI mean BOLD time series"


class ABIDEOptions(ConnectomeOptions):
    pipeline: Literal["cpac", "ccs", "dparsf", "niak"] = Field(
        "cpac", description="the PCP preprocessing pipeline whose ROI series are read")
    strategy: Literal["filt_noglobal", "filt_global", "nofilt_noglobal", "nofilt_global"] = \
        Field("filt_noglobal", description="band-pass filtering (filt) and global signal "
              "regression (global) of the series read")
    atlas: Literal["cc200", "cc400", "aal", "ez", "ho", "tt", "dosenbach160"] = Field(
        "cc200", description="the parcellation (PCP derivative rois_<atlas>); CLIMB's "
        "copy uses cc200")


def _optional_number(value: str) -> float | None:
    """A phenotypic number, None when blank or ABIDE's -9999."""
    text = value.strip()
    if not text:
        return None
    number = float(text)
    return None if number == MISSING else number


def read_roi_series(text: str, name: str) -> tuple[list[str], np.ndarray]:
    """(ROI ids from the header, T x N float64 series) of a PCP `.1D` file."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or not lines[0].lstrip().startswith("#"):
        raise RecordError(f"{name}: no '#1 #2 ...' ROI header line")
    rois = [tok.lstrip("#") for tok in lines[0].split()]
    if not rois or any(not r for r in rois) or len(set(rois)) != len(rois):
        raise RecordError(f"{name}: the ROI header line is empty or repeats a ROI")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split()
        if len(fields) != len(rois):
            raise RecordError(f"{name}: row {number} has {len(fields)} values for "
                              f"{len(rois)} ROIs (truncated or ragged file)")
        try:
            rows.append([float(v) for v in fields])
        except ValueError:
            raise RecordError(f"{name}: row {number} holds a value that is not a number") \
                from None
    if not rows:
        raise RecordError(f"{name}: no time points")
    return rois, np.asarray(rows, dtype=np.float64)


class ABIDE(Source):
    payload_members = ("connectome.npz",)
    info: ClassVar[SourceInfo] = SourceInfo(
        name="abide",
        title="ABIDE I preprocessed (Preprocessed Connectomes Project): resting-state "
        "functional connectomes, autism vs typical controls",
        version="PCP ABIDE I (Phenotypic_V1_0b_preprocessed1)",
        modality="graph",
        tasks=["autism spectrum disorder classification"],
        license=License(name="Creative Commons Attribution-NonCommercial-ShareAlike 3.0",
                        spdx="CC-BY-NC-SA-3.0",
                        url="http://preprocessed-connectomes-project.org/abide/",
                        terms_version="3.0", non_commercial=True, share_alike=True),
        access="open",
        homepage="http://preprocessed-connectomes-project.org/abide/",
        citation="Craddock C, Benhajali Y, Chu C, et al. The Neuro Bureau Preprocessing "
        "Initiative: open sharing of preprocessed neuroimaging data and derivatives. "
        "Frontiers in Neuroinformatics 2013. Di Martino A, et al. The autism brain imaging "
        "data exchange. Molecular Psychiatry 19, 659-667 (2014).",
        label_space=list(DX_GROUPS.values()),
        split_policy="no official split: keyed hash of SUB_ID (80/10/10 by default); sites "
        "are recorded, and leave-one-site-out key lists are written from a build "
        "(`medshard sites`)",
        split_unit="subject",
        published_counts=PublishedCounts(
            train=807, test=202, unit="subjects",
            reference="CLIMB Table/A.2 (1,009 subjects of BrainNetworkTransformer's CC200 "
            "copy; CLIMB's code splits 70/10/20 by site)"),
        release_notes={"0.1.0": "first medshard adapter: PCP .1D ROI series, Pearson "
                       "connectivity computed here, CLIMB's graph by default"},
    )
    Options = ABIDEOptions
    demographic_fields = {"age_years": "age"}
    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="http://preprocessed-connectomes-project.org/abide/download.html",
        steps=[
            "Download the phenotypic file Phenotypic_V1_0b_preprocessed1.csv from the page "
            "above (https://s3.amazonaws.com/fcp-indi/data/Projects/ABIDE_Initiative/"
            "Phenotypic_V1_0b_preprocessed1.csv) into the folder named below.",
            "Download the ROI time series of one pipeline, strategy and atlas, keeping the "
            "bucket's layout under Outputs/, e.g. with nilearn: fetch_abide_pcp(data_dir=..., "
            "pipeline='cpac', band_pass_filtering=True, global_signal_regression=False, "
            "derivatives=['rois_cc200'], quality_checked=False), or the PCP script "
            "download_abide_preproc.py (-d rois_cc200 -p cpac -s filt_noglobal).",
            "Put the files at Outputs/<pipeline>/<strategy>/rois_<atlas>/"
            "<FILE_ID>_rois_<atlas>.1D under the folder named below (nilearn keeps the "
            "file names; move them into that path).",
        ],
    ))
    fixture: ClassVar[str | None] = "medshard.sources.brain_networks.abide_fixture:FIXTURE"

    def layout(self, root: Path) -> tuple[str, str, str]:
        """(layout name, phenotypic file, folder of the .1D files) found under `root`:
        the bucket's paths, else nilearn's `ABIDE_pcp/` copy."""
        o = self._options
        if (root / NILEARN / PHENOTYPIC).is_file() and not (root / PHENOTYPIC).is_file():
            return ("nilearn", f"{NILEARN}/{PHENOTYPIC}",
                    f"{NILEARN}/{o['pipeline']}/{o['strategy']}")
        return "pcp-bucket", PHENOTYPIC, f"Outputs/{o['pipeline']}/{o['strategy']}/rois_{o['atlas']}"

    def label_files(self, root: Path) -> list[str]:
        return [self.layout(root)[1]]

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        _, pheno, folder = self.layout(root)
        if not (root / pheno).is_file():
            raise MissingRawData(f"abide: no {PHENOTYPIC} in {root} (or {NILEARN}/); download "
                                 "the PCP phenotypic file there (medshard info abide)")
        if not (root / folder).is_dir():
            raise MissingRawData(f"abide: no {folder}/ under {root}; download the ROI series "
                                 "of this pipeline/strategy/atlas or pick the options that "
                                 "match yours")

    def _parse(self, row: dict[str, str], root: Path, layout: str, folder: str) -> RawRecord:
        sub = int(row["SUB_ID"])
        site = row["SITE_ID"].strip()
        file_id = row["FILE_ID"].strip()
        dx = int(row["DX_GROUP"])
        if dx not in DX_GROUPS:
            raise ValueError(f"DX_GROUP {dx} is not 1 (autism) or 2 (control)")
        sex = int(row["SEX"])
        if sex not in SEXES:
            raise ValueError(f"SEX {sex} is not 1 (male) or 2 (female)")
        if not _ID.match(site):
            raise ValueError(f"SITE_ID {site!r} is not a site code")
        age = _optional_number(row.get("AGE_AT_SCAN", ""))
        dsm = _optional_number(row.get("DSM_IV_TR", ""))
        fd = _optional_number(row.get("func_mean_fd", ""))
        if file_id == "no_filename":
            record_id, files, size = f"{site}_{sub:07d}", [], 0
        else:
            if not _ID.match(file_id):
                raise ValueError(f"FILE_ID {file_id!r} is not a PCP file id")
            rel = f"{folder}/{file_id}_rois_{self._options['atlas']}.1D"
            path = root / rel
            record_id, files = file_id, [rel]
            size = path.stat().st_size if path.is_file() else 0
        return RawRecord(
            record_id=record_id, subject_id=str(sub), files=files, size_bytes=size,
            source_labels={"DX_GROUP": dx, "DSM_IV_TR": None if dsm is None else int(dsm)},
            meta={"site": site, "sex": SEXES[sex], "age": age, "func_mean_fd": fd,
                  "file_id": None if file_id == "no_filename" else file_id, "layout": layout},
        )

    def list_records(self, root: Path) -> Iterator[Any]:
        """One record per phenotypic row; reads the CSV and stats the .1D files."""
        self.check_root(root)
        layout, pheno, folder = self.layout(root)
        yield from self.csv_records(root, pheno, lambda row: self._parse(row, root, layout, folder))

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        if not record.files:
            raise Filtered("no preprocessed data (FILE_ID no_filename)")
        rel = record.files[0]
        text = self.read_bytes(root, rel, "ROI time series").decode("ascii", errors="replace")
        rois, series = read_roi_series(text, rel)
        corr, constant = pearson_connectivity(series)
        o = self._options
        data, desc, extra = connectome_graph(corr, rois, o, constant, MEASURE)
        dx = record.source_labels["DX_GROUP"]
        yield Sample(
            classes=[DX_GROUPS[dx]],
            source_labels=dict(record.source_labels),
            payloads={"connectome": Payload("graph", data, desc)},
            meta={**record.meta, **extra, "atlas": o["atlas"], "atlas_name": ATLASES[o["atlas"]],
                  "pipeline": o["pipeline"], "strategy": o["strategy"],
                  "connectivity_computed_by": "medshard (numpy, float64)",
                  "n_timepoints": int(series.shape[0])},
            task="autism spectrum disorder classification",
        )
