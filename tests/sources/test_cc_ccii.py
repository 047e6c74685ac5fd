"""CC-CCII: scans stacked from PNG slices, checked against OpenCV reads of the files."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from medshard.schemas import BadRow, RecordError
from medshard.sources.ct import cc_ccii_fixture as demo
from medshard.sources.ct.cc_ccii import CCCCII


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("ccccii")
    demo.write_fixture(r)
    return r


def _records(root):
    return {r.record_id: r for r in CCCCII().list_records(root) if not isinstance(r, BadRow)}


def test_scans_stack_slices_in_numeric_order(root):
    index = pd.read_csv(root / "unzip_filenames.csv", dtype={"patient_id": str, "scan_id": str})
    recs = _records(root)
    assert len(recs) == len(index)
    for row in index.itertuples(index=False):
        rid = f"{row.label}_{row.patient_id}_{row.scan_id}"
        if rid in (demo.UNREADABLE, demo.MISSING):
            continue
        [sample] = CCCCII().load(recs[rid], root)
        folder = root / row.label / row.patient_id / row.scan_id
        names = sorted((p.name for p in folder.glob("*.png")), key=lambda n: int(n.split(".")[0]))
        want = np.stack([cv2.imread(str(folder / n), cv2.IMREAD_UNCHANGED) for n in names], axis=2)
        got = sample.payloads["volume"].data
        np.testing.assert_array_equal(got, want)
        assert sample.classes == [row.label]
        assert sample.meta["n_slice_listed"] == row.n_slice == got.shape[2]
        assert sample.meta["spacing_mm"] is None and sample.meta["orientation"] is None
    # 1.png ... 11.png: 10.png is the tenth slice, not the second
    [s] = CCCCII().load(recs["NCP_1002_2003"], root)
    tenth = cv2.imread(str(root / "NCP" / "1002" / "2003" / "10.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(s.payloads["volume"].data[:, :, 9], tenth)


def test_subject_is_the_patient(root):
    recs = _records(root)
    assert recs["NCP_1001_2001"].subject_id == recs["NCP_1001_2002"].subject_id == "1001"
    assert all(r.split is None for r in recs.values())


def test_broken_scans_and_rows(root, tmp_path):
    recs = _records(root)
    with pytest.raises(RecordError, match="unreadable slice"):
        list(CCCCII().load(recs[demo.UNREADABLE], root))
    with pytest.raises(RecordError, match="no slice files"):
        list(CCCCII().load(recs[demo.MISSING], root))
    mutated = tmp_path / "m"
    demo.write_fixture(mutated)
    expect = demo.malformed_row(mutated, tmp_path / "outside")
    bad = {f"{b.file}:{b.line}" for b in CCCCII().list_records(mutated) if isinstance(b, BadRow)}
    assert bad == set(expect.quarantined)
