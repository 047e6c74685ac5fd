"""MIMIC-IV: admissions as event sequences, the window, the linked ECG / X-ray roles, no dates.

Expected values are computed here with pandas and wfdb from the raw fixture tables, never
with the adapter's own parsing.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import re
import tarfile

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from medshard.schemas import BadRow, RawRecord, RecordError
from medshard.sources import get_source
from medshard.sources.base import MissingRawData
from medshard.sources.ehr import mimic_iv_fixture
from medshard.sources.ehr.mimic_iv_events import build_event_store


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("mimic-iv-raw") / "mimic-iv"
    mimic_iv_fixture.write_fixture(root)
    return root


@pytest.fixture(scope="module")
def built(raw, tmp_path_factory):
    from medshard.pipeline.build import BuildConfig, run_build

    out = tmp_path_factory.mktemp("mimic-iv-out")
    logger = logging.getLogger("medshard")
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        run_build(BuildConfig(sources=["mimic-iv"], data_root=raw.parent, out=out,
                              formats=("webdataset", "parquet"), progress=False))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    samples: dict[str, dict[str, bytes]] = {}
    for tar in sorted(out.rglob("*.tar")):
        with tarfile.open(tar) as tf:
            for m in tf.getmembers():
                key, _, member = m.name.partition(".")
                samples.setdefault(key, {})[member] = tf.extractfile(m).read()
    return out, samples, buf.getvalue()


def _admissions(raw) -> pd.DataFrame:
    df = pd.read_csv(raw / "hosp" / "admissions.csv.gz",
                     parse_dates=["admittime", "dischtime", "deathtime"])
    return df.set_index("hadm_id")


def _events(samples, hadm: int) -> list[dict]:
    data = samples[f"mimic-iv_{hadm}"]["ehr.jsonl"].decode()
    return [json.loads(line) for line in data.splitlines()]


def test_ecg_and_xray_inside_the_admission_give_one_sample_with_three_roles(built):
    _, samples, _ = built
    s = samples["mimic-iv_20001"]
    assert sorted(k for k in s if k != "json") == ["cxr_0.jpg", "ecg_0.npy", "ehr.jsonl"]
    meta = json.loads(s["json"])
    assert sorted(meta["payloads"]) == ["cxr_0", "ecg_0", "ehr"]
    assert [e["study_id"] for e in meta["meta"]["ecgs"]] == ["40000001"]
    assert [c["study_id"] for c in meta["meta"]["cxrs"]] == ["50000001"]
    # the JPEG is the raw file's bytes
    raw_jpg = [c for c in mimic_iv_fixture.CXRS if c[1] == 50000001][0]
    assert s["cxr_0.jpg"][:2] == b"\xff\xd8" and raw_jpg[2] in meta["meta"]["cxrs"][0][
        "dicom_id"]


def test_ecg_and_xray_outside_the_window_are_not_attached(built):
    _, samples, _ = built
    attached = set()
    for s in samples.values():
        m = json.loads(s["json"])["meta"]
        attached |= {e["study_id"] for e in m["ecgs"]} | {c["study_id"] for c in m["cxrs"]}
        roles = {k.split(".")[0] for k in s if k != "json"}
        assert roles == {"ehr"} | {e["role"] for e in m["ecgs"]} | {c["role"] for c in m["cxrs"]}
    # hour 97 of 20001 (inside the stay, after the 48-h window), between admissions,
    # after 20002's discharge: attached nowhere
    assert not attached & {"40000002", "40000003", "50000002"}
    assert attached == {"40000001", "40000005", "50000001", "50000003"}
    assert json.loads(samples["mimic-iv_20001"]["json"])["meta"]["ecgs_in_window"] == 1
    assert sorted(k for k in samples["mimic-iv_20002"] if k != "json") == ["ehr.jsonl"]


def test_an_admission_without_events_in_the_window_is_filtered_not_empty(built):
    out, samples, _ = built
    assert all(s["ehr.jsonl"] for s in samples.values())
    manifest = json.loads((out / "manifest.json").read_text())
    assert "no EHR event in the input window" in json.dumps(manifest["sources"]["mimic-iv"])
    assert {"mimic-iv_20009", "mimic-iv_20011", "mimic-iv_20012"}.isdisjoint(samples)


def test_no_absolute_date_in_any_output_byte_or_log(raw, built):
    out, _, log = built
    dates: set[str] = set()
    for table in sorted(raw.rglob("*.csv.gz")):
        with gzip.open(table, "rt") as f:
            dates |= set(re.findall(r"\d{4}-\d{2}-\d{2}", f.read()))
    with open(raw / "mimic-iv-ecg" / "record_list.csv") as f:
        dates |= set(re.findall(r"\d{4}-\d{2}-\d{2}", f.read()))
    for hea in raw.rglob("*.hea"):  # WFDB base date dd/mm/yyyy
        dates |= set(re.findall(r"\d{2}/\d{2}/\d{4}", hea.read_text()))
    dates |= {c[3] for c in mimic_iv_fixture.CXRS}  # StudyDate YYYYMMDD
    assert len(dates) > 30
    markers = sorted(dates | {"2017 - 2019", "2014 - 2016", "2020 - 2022"})
    assert log  # the build logged something, and it is searched too
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        data = path.read_bytes()
        texts = [data]
        if path.suffix == ".parquet":
            for col in pq.read_table(path).columns:
                for v in col.to_pylist():
                    if isinstance(v, (bytes, str)):
                        texts.append(v if isinstance(v, bytes) else v.encode())
        for m in markers:
            assert not any(m.encode() in t for t in texts), f"{m} in {path.name}"
    for m in markers:
        assert m not in log


def test_events_are_offsets_from_admission_cut_at_the_window(raw, built):
    _, samples, _ = built
    adm = _admissions(raw)
    labs = pd.read_csv(raw / "hosp" / "labevents.csv.gz", parse_dates=["charttime"])
    labs = labs[labs.hadm_id == 20001].dropna(subset=["charttime"])
    hours = (labs.charttime - adm.loc[20001, "admittime"]).dt.total_seconds() / 3600
    expected = sorted(hours[hours < 48].tolist())
    events = _events(samples, 20001)
    got = sorted(e["time"] for e in events if e["kind"] == "lab")
    assert got == pytest.approx(expected)
    assert (hours >= 48).any()  # the fixture has a lab after the window ...
    assert all(e["time"] < 48 for e in events)  # ... and it is not in the input
    assert [e["time"] for e in events] == sorted(e["time"] for e in events)
    one = [e for e in events if e["code"] == "lab:50931"][0]
    assert set(one) == {"time", "code", "kind", "name", "value", "text", "unit"}
    assert one["name"] == "Glucose" and one["unit"] == "mg/dL"
    meta = json.loads(samples["mimic-iv_20001"]["json"])["meta"]
    assert meta["events_without_time"] == 1 and meta["input_hours"] == 48.0


def test_a_wider_window_lets_later_events_in(raw):
    src = get_source("mimic-iv", input_hours=200.0)
    rec = {r.record_id: r for r in src.list_records(raw) if isinstance(r, RawRecord)}["20001"]
    sample = next(src.load(rec, raw))
    assert max(sample.payloads["ehr"].data["time"]) == pytest.approx(120.0)
    # the hour-97 ECG is inside this window
    assert [e["study_id"] for e in rec.meta["ecgs"]] == ["40000001", "40000002"]


def test_48h_mortality_and_length_of_stay_match_pandas(raw, built):
    _, samples, _ = built
    adm = _admissions(raw)
    died = (adm.deathtime - adm.admittime) < pd.Timedelta(hours=48)
    los = (adm.dischtime - adm.admittime).dt.total_seconds() / 86400
    n = 0
    for hadm in adm.index:
        key = f"mimic-iv_{hadm}"
        if key not in samples:
            continue
        meta = json.loads(samples[key]["json"])
        assert meta["source_labels"]["death_within_48h"] == bool(died[hadm])
        assert meta["labels"] == (["ehr.in-hospital-death-48h"] if died[hadm]
                                  else ["ehr.no-in-hospital-death-48h"])
        assert meta["meta"]["los_days"] == pytest.approx(los[hadm], abs=1e-6)
        n += 1
    assert n == 9 and died.sum() == 1  # 13 admissions: 1 quarantined, 3 without events
    # 20005 died in hospital, but at hour 111: not the 48-h class
    m = json.loads(samples["mimic-iv_20005"]["json"])
    assert m["source_labels"]["hospital_expire_flag"] == "1"
    assert m["source_labels"]["death_within_48h"] is False


def test_diagnoses_are_targets_never_input_events(raw, built):
    _, samples, _ = built
    dx = pd.read_csv(raw / "hosp" / "diagnoses_icd.csv.gz", dtype=str)
    meta = json.loads(samples["mimic-iv_20001"]["json"])
    got = [d["icd_code"] for d in meta["source_labels"]["diagnoses"]]
    assert got == dx[dx.hadm_id == "20001"].sort_values("seq_num").icd_code.tolist()
    assert not any(e["code"].startswith("icd") or e["kind"] == "diagnosis"
                   for e in _events(samples, 20001))


def test_ecg_role_is_the_wfdb_record_at_the_ecg_standard(raw, built):
    import wfdb

    _, samples, _ = built
    meta = json.loads(samples["mimic-iv_20001"]["json"])
    desc = meta["payloads"]["ecg_0"]
    stored = np.load(io.BytesIO(samples["mimic-iv_20001"]["ecg_0.npy"]))
    assert stored.shape == (12, 5000) and desc["standard"] == "ecg"
    base = raw / "mimic-iv-ecg/files/p1000/p10001/s40000001/40000001"
    sig, fields = wfdb.rdsamp(str(base))
    col = {n.upper(): i for i, n in enumerate(fields["sig_name"])}
    for row, name in enumerate(desc["channels"]):
        physical = stored[row] * desc["scale"][row]
        assert np.allclose(physical, sig[:, col[name.upper()]], atol=1e-3)


def test_loader_decodes_the_three_roles(built):
    from medshard.loaders import ShardDataset

    out, _, _ = built
    ds = ShardDataset(str(out), split=None)
    by_key = {s["key"]: s for s in ds}
    s = by_key["mimic-iv_20001"]
    assert set(s["ehr"]) == {"time", "code", "kind", "name", "value", "text", "unit"}
    assert s["ecg_0"].shape == (12, 5000)
    assert s["ehr"]["time"].dtype.is_floating_point


def test_event_store_partitions_a_table_by_admission(tmp_path):
    """The store against a direct pandas group-by of a small generated labevents table."""
    rng = np.random.default_rng(0)
    adm = pd.DataFrame({"subject_id": [1, 2, 3], "hadm_id": [11, 12, 13],
                        "admittime": ["2150-01-01 00:00:00", "2150-02-01 06:00:00",
                                      "2150-03-01 12:30:00"]})
    n = 500
    hadm = rng.choice([11, 12, 13, 99], n)
    base = pd.to_datetime(adm.set_index("hadm_id").admittime.reindex(hadm).fillna(
        "2150-01-01 00:00:00").to_numpy())
    t = base + pd.to_timedelta(rng.integers(-3600, 90 * 3600, n), unit="s")
    labs = pd.DataFrame({"labevent_id": range(n), "subject_id": 1, "hadm_id": hadm,
                         "itemid": rng.choice([50912, 50931], n),
                         "charttime": t.strftime("%Y-%m-%d %H:%M:%S"),
                         "value": "1", "valuenum": rng.normal(size=n).round(3),
                         "valueuom": "mg/dL"})
    adm.to_csv(tmp_path / "admissions.csv", index=False)
    labs.to_csv(tmp_path / "labevents.csv", index=False)
    store = build_event_store(lambda rel: open(tmp_path / rel, newline=""),
                              {"admissions": "admissions.csv", "labevents": "labevents.csv"},
                              tmp_path / "s.sqlite")
    admit = pd.to_datetime(adm.set_index("hadm_id").admittime)
    for h in (11, 12, 13):
        rows = labs[labs.hadm_id == h]
        expect = sorted(((pd.to_datetime(rows.charttime) - admit[h]).dt.total_seconds()
                         / 3600).tolist())
        got = [e[0] for e in store.events(h)]
        assert got == pytest.approx(expect)
    assert store.events(99) == []  # rows of an admission not listed are not stored


def test_root_without_the_tables_is_one_actionable_line(tmp_path):
    (tmp_path / "hosp").mkdir()
    with pytest.raises(MissingRawData, match="hosp/admissions.csv.gz not found"):
        list(get_source("mimic-iv").list_records(tmp_path))


def test_a_truncated_ecg_quarantines_its_admission(raw):
    src = get_source("mimic-iv")
    rec = {r.record_id: r for r in src.list_records(raw) if isinstance(r, RawRecord)}
    with pytest.raises(RecordError, match="40000004"):
        next(src.load(rec[mimic_iv_fixture.BROKEN_ADMISSION], raw))


def test_malformed_record_list_row_is_a_bad_row(raw, tmp_path):
    import shutil

    root = tmp_path / "mimic-iv"
    shutil.copytree(raw, root)
    with open(root / "mimic-iv-ecg" / "record_list.csv", "a", newline="") as f:
        csv.writer(f, lineterminator="\n").writerow([10001, "s-x", 1, "2150-03-15", "x"])
    items = list(get_source("mimic-iv").list_records(root))
    bad = [b for b in items if isinstance(b, BadRow)]
    assert [b.file for b in bad] == ["mimic-iv-ecg/record_list.csv"]
    assert "2150" not in bad[0].reason


@pytest.mark.parametrize("damage", ["truncated", "no_valuenum"])
def test_a_broken_event_table_quarantines_admissions_with_one_line(raw, tmp_path, damage):
    import shutil

    root = tmp_path / "mimic-iv"
    shutil.copytree(raw, root)
    path = root / "hosp" / "labevents.csv.gz"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
        expected = "unreadable"
    else:
        with gzip.open(path, "rt", newline="") as f:
            rows = list(csv.reader(f))
        rows[0] = ["value_num" if c == "valuenum" else c for c in rows[0]]
        mimic_iv_fixture.write_table(path, rows[0], rows[1:])
        expected = "hosp/labevents.csv.gz has no column valuenum"
    src = get_source("mimic-iv")
    recs = [r for r in src.list_records(root) if isinstance(r, RawRecord)]
    messages = set()
    for rec in recs[:3]:
        with pytest.raises(RecordError) as err:
            next(src.load(rec, root))
        messages.add(str(err.value))
    assert len(messages) == 1 and expected in messages.pop()


def test_a_batch_mixes_admissions_with_and_without_linked_roles(built):
    from medshard.loaders import ShardDataset
    from medshard.loaders.collate import Collate

    out, _, _ = built
    samples = sorted(ShardDataset(str(out), split=None), key=lambda s: s["key"])
    batch = Collate()(samples)
    keys = [s["key"] for s in samples]
    assert len(batch["ehr"]) == len(samples) == 9
    with_ecg = [k for k, e in zip(keys, batch["ecg_0"], strict=True) if e is not None]
    assert with_ecg == ["mimic-iv_20001", "mimic-iv_20013"]
    assert [k for k, c in zip(keys, batch["cxr_0"], strict=True) if c is not None] == [
        "mimic-iv_20001", "mimic-iv_20005"]


def test_an_unreadable_ecg_header_quarantines_without_its_date(raw, tmp_path):
    import shutil

    root = tmp_path / "mimic-iv"
    shutil.copytree(raw, root)
    hea = root / "mimic-iv-ecg/files/p1000/p10001/s40000001/40000001.hea"
    lines = hea.read_text().splitlines()
    assert "15/03/2150" in lines[0]  # wfdb wrote the base date: the header carries it
    hea.write_text("\n".join([lines[0].replace(" 12 ", " twelve ")] + lines[1:]) + "\n")
    src = get_source("mimic-iv")
    rec = {r.record_id: r for r in src.list_records(root) if isinstance(r, RawRecord)}
    with pytest.raises(RecordError, match="unreadable ECG record 40000001.hea") as err:
        next(src.load(rec["20001"], root))
    assert "2150" not in str(err.value) and "10:30" not in str(err.value)


def test_chartevents_can_be_left_out(raw):
    src = get_source("mimic-iv", chartevents=False)
    assert "icu/chartevents.csv.gz" not in src.label_files(raw)
    rec = {r.record_id: r for r in src.list_records(raw) if isinstance(r, RawRecord)}["20001"]
    kinds = {k for k in next(src.load(rec, raw)).payloads["ehr"].data["kind"]}
    assert kinds == {"lab", "medication", "icu"}
    full = next(get_source("mimic-iv").load(rec, raw)).payloads["ehr"].data["kind"]
    assert "chart" in full


def test_two_worker_processes_build_the_same_bytes(raw, built, tmp_path):
    """Each worker process partitions the event tables into its own store: the shards
    must not depend on which process (and which store) wrote them."""
    from medshard.pipeline.build import BuildConfig, run_build

    ref, _, _ = built
    out = tmp_path / "mp"
    run_build(BuildConfig(sources=["mimic-iv"], data_root=raw.parent, out=out,
                          formats=("webdataset", "parquet"), progress=False, workers=2))
    shards = sorted(p.relative_to(out) for p in out.rglob("*") if p.suffix in (".tar",
                                                                                ".parquet"))
    assert len([s for s in shards if s.suffix == ".tar"]) > 1  # several shard tasks
    for rel in shards:
        assert (out / rel).read_bytes() == (ref / rel).read_bytes(), rel
