"""PPMI structural (DTI) connectomes as CLIMB reads them: BrainGB's `PPMI.mat`, Parkinson's
disease vs controls.

Raw layout (the file CLIMB's src/datasets/mri/ppmi.py and models/graphs/brain_datasets.py open):

    PPMI.mat          MATLAB 5 file: `X`, an N x 1 cell array, each cell an R x R x V
                      array (R ROIs, V connectivity "views"); `label`, N x 1 (+1 / -1)

What is confirmed and what is not. CLIMB gives no access details for PPMI; its code points
to braingb.us, loads `X` and `label` with `scipy.io.loadmat`, takes the first view
(`X[i][0][:, :, 0]`) as the adjacency, maps label -1 to 0, and predicts the binary label;
its Table 7 names the classes Control and PD patients, and counts 718 subjects. BrainGB
(Cui et al. 2022) describes PPMI as DTI structural networks from the Parkinson's
Progression Markers Initiative, 84 ROIs and several tractography methods as views (as we
recall the paper; not re-read here). Unconfirmed: which label value is PD (taken
as +1 = PD patients, -1 or 0 = Control, the order of CLIMB's Table 7 after its -1 -> 0
mapping; `source_labels` keeps the raw value), what each view is and its order, the ROI
order (node ids "1".."R"), whether a row is one subject or one scan (the file carries no
ids: records are numbered by row, `s0000`, and each row is taken as its own subject),
and how the file is obtained (PPMI data are under the PPMI Data Use Agreement).
A MATLAB 7.3 (HDF5) file is refused with a message; BrainGB's copy is read by scipy in
CLIMB's code, so it is a MATLAB 5 file.

What `load` yields: one graph per row (`connectome`) from view `view` (default 0, CLIMB's)
as shipped (structural connectivity computed upstream; no Pearson step applies), then the
options of `connectome.ConnectomeOptions` (CLIMB's graph by default: every non-zero entry
an edge, node features the matrix rows). A ROI whose row holds NaN is zeroed and listed
(`constant_roi`). A label other than +1 / -1 / 0, a cell that is not R x R x V, or a view
out of range quarantines the row. The whole `X` is read once per worker process and
cached (BrainGB's file is ~100 MB); listing reads only `label`. Split: no official split
(CLIMB: random 70/10/20); keyed hash of the row's record id.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from medshard.schemas import License, Payload, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import MissingRawData, Source
from medshard.sources.brain_networks.connectome import ConnectomeOptions, connectome_graph, nan_rois

MAT = "PPMI.mat"
LABELS = {1: "PD patients", -1: "Control", 0: "Control"}
MEASURE = "structural connectivity from DTI tractography (shipped by the copy; view {view})"


class PPMIOptions(ConnectomeOptions):
    view: int = Field(0, ge=0, le=15, description="which R x R slice of each cell's "
                      "R x R x V array is the graph (CLIMB: 0, the first)")


def _loadmat(path: Path, names: list[str]) -> dict[str, Any]:
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        with open(path, "rb") as f:
            return loadmat(f, variable_names=names)
    except NotImplementedError:
        raise MissingRawData(f"ppmi: {MAT} is a MATLAB 7.3 (HDF5) file; scipy reads MATLAB 5 "
                             "files, as BrainGB's copy is: re-save it with -v7") from None
    except (MatReadError, ValueError, OSError) as exc:
        raise MissingRawData(f"ppmi: cannot read {MAT} ({exc}); re-download it") from None


@lru_cache(maxsize=1)
def _cells(path: str, size: int, mtime: float) -> list[np.ndarray]:
    """The cells of `X`, read once per process (size and mtime key a changed file)."""
    x = _loadmat(Path(path), ["X"]).get("X")
    if x is None:
        raise RecordError(f"{MAT} holds no variable X")
    return [np.asarray(c) for c in np.asarray(x, dtype=object).reshape(-1)]


class PPMI(Source):
    payload_members = ("connectome.npz",)
    required_files = (MAT,)
    root_hint = "put BrainGB's PPMI.mat there (`medshard info ppmi`)"
    info: ClassVar[SourceInfo] = SourceInfo(
        name="ppmi",
        title="PPMI structural connectomes (BrainGB's PPMI.mat), Parkinson's disease vs "
        "controls",
        version="BrainGB PPMI.mat (PPMI release unconfirmed)",
        modality="graph",
        tasks=["Parkinson's disease classification"],
        license=License(name="PPMI Data Use Agreement; unconfirmed for the derived copy",
                        url="https://www.ppmi-info.org/access-data-specimens/download-data",
                        terms_version="not stated", credentialed=True),
        access="credentialed",
        homepage="https://www.ppmi-info.org/",
        citation="Marek K, et al. The Parkinson Progression Marker Initiative (PPMI). Prog "
        "Neurobiol 2011. Cui H, et al. BrainGB: A Benchmark for Brain Network Analysis with "
        "Graph Neural Networks. IEEE TMI 2022.",
        label_space=["Control", "PD patients"],
        split_policy="no official split: keyed hash of the row (80/10/10 by default; the file "
        "carries no subject ids, so each row is taken as one subject - unconfirmed)",
        split_unit="row of PPMI.mat (taken as a subject; no ids in the file)",
        published_counts=PublishedCounts(
            train=572, test=143, unit="subjects",
            reference="CLIMB Table/A.2 (572 + 143 = 715, not the 718 it totals)"),
        release_notes={"0.1.0": "first medshard adapter: BrainGB's PPMI.mat, first view; "
                       "label sign and views unconfirmed"},
    )
    Options = PPMIOptions
    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://braingb.us/datasets/",
        steps=[
            "Apply for PPMI data access (https://www.ppmi-info.org/access-data-specimens/"
            "download-data); BrainGB shares its processed PPMI.mat with approved users (see "
            "the page above: how it is requested is not confirmed here).",
            "Put PPMI.mat into the folder named below.",
        ],
    ))
    fixture: ClassVar[str | None] = "medshard.sources.brain_networks.ppmi_fixture:FIXTURE"

    def list_records(self, root: Path) -> Iterator[RawRecord]:
        """One record per row of `label`; loadmat reads `label` and skips over `X`."""
        self.check_root(root)
        try:
            path = self.path(root, MAT)
        except RecordError as exc:  # the one container refused (a symlink out of the root)
            raise MissingRawData(f"ppmi: {exc}") from None
        labels = _loadmat(path, ["label"]).get("label")
        if labels is None:
            raise MissingRawData(f"ppmi: {MAT} holds no variable 'label'; is it BrainGB's file?")
        values = np.asarray(labels).reshape(-1)
        size = path.stat().st_size // max(len(values), 1)
        for i, value in enumerate(values.tolist()):
            raw = float(value)
            yield RawRecord(
                record_id=f"s{i:04d}", subject_id=f"s{i:04d}", files=[MAT], size_bytes=size,
                source_labels={"label": int(raw) if raw.is_integer() else raw},
                meta={"row": i, "site": None},
            )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        raw = record.source_labels["label"]
        if raw not in LABELS:
            raise RecordError(f"{MAT} row {record.meta['row']}: label {raw!r} is not +1, -1 or 0")
        path = self.path(root, MAT)
        st = path.stat()
        cells = _cells(str(path), st.st_size, st.st_mtime)
        row = int(record.meta["row"])
        if row >= len(cells):
            raise RecordError(f"{MAT}: X has {len(cells)} cells, label has more rows")
        cell = cells[row]
        if cell.ndim == 2:
            cell = cell[:, :, None]
        view = int(self._options["view"])
        if cell.ndim != 3 or cell.shape[0] != cell.shape[1] or not np.issubdtype(
                cell.dtype, np.number):
            raise RecordError(f"{MAT} row {row}: X cell of shape {cell.shape} ({cell.dtype}) is "
                              "not R x R x V numbers")
        if view >= cell.shape[2]:
            raise RecordError(f"{MAT} row {row}: view {view} asked, the cell has "
                              f"{cell.shape[2]}; pick view < {cell.shape[2]}")
        matrix = np.asarray(cell[:, :, view], dtype=np.float64)
        n = matrix.shape[0]
        data, desc, extra = connectome_graph(matrix, [str(i + 1) for i in range(n)],
                                             self._options, nan_rois(matrix),
                                             MEASURE.format(view=view))
        yield Sample(
            classes=[LABELS[raw]],
            source_labels=dict(record.source_labels),
            payloads={"connectome": Payload("graph", data, desc)},
            meta={**record.meta, **extra, "view": view, "n_views": int(cell.shape[2]),
                  "atlas": "BrainGB PPMI (84 ROIs, Desikan-Killiany per BrainGB; unconfirmed)"},
            task="Parkinson's disease classification",
        )
