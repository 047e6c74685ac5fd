"""Multi-payload samples through the real build: descriptors keyed by role, one encoder per
payload kind, the loader returning every role.

Two test sources are registered through the `medshard.sources` entry point:
  - `test-two-view-mammo`: one exam, CC + MLO views of one breast. No real mammogram ships
    in any package: the pixels are pydicom-data's real radiographs RG1_UNCR / RG3_UNCR,
    re-tagged as MG views (illustrative tags, real pixels). A second exam carries a payload
    of an unknown kind and must be quarantined.
  - `test-payload-kinds`: one sample per new kind. The graph is a lead-correlation graph of
    pydicom's real 12-lead ECG (`waveform_ecg.dcm`), the mask lies on a real radiograph;
    the expression vector, the events and the texts are illustrative.
Every expectation is computed from the inputs with numpy / pydicom / PIL / json / pyarrow /
webdataset, never read back through medshard's own writer only.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pydicom
import pytest
import torch
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut

from medshard.formats.dicom import read_image
from medshard.loaders import ShardDataset
from medshard.loaders.collate import collate
from medshard.pipeline.build import BuildConfig, run_build
from medshard.pipeline.encoders import (
    EncodeContext,
    UnknownPayloadKind,
    encode_payload,
    encode_payloads,
)
from medshard.schemas import (
    License,
    Payload,
    RawRecord,
    RecordError,
    Sample,
    SampleMeta,
    SourceInfo,
)
from medshard.schemas.vocabulary import load_vocabulary
from medshard.sources import registry
from medshard.sources.base import Source

MAMMO = "test-two-view-mammo"
KINDS = "test-payload-kinds"
VIEWS = {"cc": "RG1_UNCR.dcm", "mlo": "RG3_UNCR.dcm"}
REPORT = "Mamma links: Verkalkungen gruppiert, 5 mm — BI-RADS 4. 乳腺 ✓"
QUESTION = "¿Hay derrame pleural?"
ANSWER = "Não; coração de tamanho normal."


def _info(name: str, modality: str, label_space: list[str]) -> SourceInfo:
    return SourceInfo(
        name=name, title=f"{name} (test)", version="1", modality=modality,
        tasks=["classification"], access="open", homepage="https://example.org",
        citation="-", label_space=label_space, split_policy="official: every record train",
        license=License(name="CC0", spdx="CC0-1.0", terms_version="1"),
    )


def write_mammo_raw(root: Path) -> None:
    """Exam p1 (left CC + MLO) and exam p2 (left CC), as MG DICOM files."""
    for patient, views in (("p1", ("cc", "mlo")), ("p2", ("cc",))):
        for view in views:
            ds = pydicom.dcmread(get_testdata_file(VIEWS[view]))
            ds.Modality = "MG"
            ds.ViewPosition = view.upper()
            ds.ImageLaterality = "L"
            (root / patient).mkdir(parents=True, exist_ok=True)
            ds.save_as(root / patient / f"L_{view.upper()}.dcm")


class TwoViewMammo(Source):
    info = _info(MAMMO, "mammography", ["BI-RADS 1", "BI-RADS 4"])
    payload_members = ("cc.png", "mlo.png")

    def list_records(self, root: Path):
        yield RawRecord(record_id="p1_L", subject_id="p1", split="train",
                        files=["p1/L_CC.dcm", "p1/L_MLO.dcm"], source_labels={"birads": 4})
        yield RawRecord(record_id="p2_L", subject_id="p2", split="train",
                        files=["p2/L_CC.dcm"], source_labels={"birads": 1},
                        meta={"extra_kind": "hologram"})

    def load(self, record: RawRecord, root: Path):
        payloads = {}
        for f in record.files:
            image = read_image(root / f)
            payloads[image.descriptor["view"].lower()] = Payload("image", image.pixels,
                                                                 image.descriptor)
        if "extra_kind" in record.meta:  # a payload kind no encoder knows
            payloads["scan3d"] = Payload(record.meta["extra_kind"], b"\x00" * 8)
        yield Sample(classes=[f"BI-RADS {record.source_labels['birads']}"],
                     source_labels=record.source_labels, payloads=payloads)


def _ecg() -> tuple[np.ndarray, list[str]]:
    """pydicom's real 12-lead ECG: 12 x 10000 in uV at 1000 Hz, and its lead names."""
    ds = pydicom.dcmread(get_testdata_file("waveform_ecg.dcm"))
    sig = ds.waveform_array(0).T.astype(np.float64)
    leads = [str(c.ChannelSourceSequence[0].CodeMeaning) for c in
             ds.WaveformSequence[0].ChannelDefinitionSequence]
    return sig, leads


def _ecg_graph() -> dict:
    """Nodes = the 12 leads of a real ECG; edge where |Pearson r| >= 0.5, weight r, both
    directions listed (undirected); node features = mean, std, peak-to-peak (uV)."""
    sig, leads = _ecg()
    r = np.corrcoef(sig)
    src, dst = np.nonzero((np.abs(r) >= 0.5) & ~np.eye(len(r), dtype=bool))
    return {
        "edge_index": np.stack([src, dst]).astype(np.int64),
        "edge_weight": r[src, dst].astype(np.float32),
        "node_features": np.stack([sig.mean(1), sig.std(1), np.ptp(sig, 1)], 1).astype(np.float32),
        "node_ids": leads,
    }


# illustrative expression values for real Ensembl gene ids (no real profile ships offline)
GENES = ["ENSG00000111640", "ENSG00000075624", "ENSG00000198851", "ENSG00000170458",
         "ENSG00000156738", "ENSG00000105374", "ENSG00000090382", "ENSG00000163736"]
EXPRESSION = np.array([812.5, 1530.25, 12.0, 0.0, 3.75, 41.5, 96.125, 0.5], dtype=np.float32)
# illustrative EHR events, hours since admission, deliberately out of order with a tie
EVENTS = {
    "time": np.array([6.5, 0.0, 2.25, 2.25, 30.0]),
    "code": ["LOINC:2160-0", "ICD10:I50.9", "LOINC:2823-3", "LOINC:2951-2", "ATC:C03CA01"],
    "value": np.array([1.4, np.nan, 4.1, 139.0, np.nan]),
    "unit": ["mg/dL", None, "mmol/L", "mmol/L", None],
}


def _radiograph_crop() -> np.ndarray:
    """A 160 x 120 real radiograph patch (RG3, modality LUT applied), as uint16."""
    ds = pydicom.dcmread(get_testdata_file("RG3_UNCR.dcm"))
    return np.asarray(apply_modality_lut(ds.pixel_array, ds))[800:960, 700:820].astype(np.uint16)


def _masks(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An 8-bit tissue map (0 / 1 / 2 by intensity tercile) and a 16-bit instance map
    (values 0 and 300, which 8 bits cannot hold)."""
    t1, t2 = np.percentile(image, [33, 66])
    tissue = (image > t1).astype(np.uint8) + (image > t2).astype(np.uint8)
    instances = np.where(image > t2, 300, 0).astype(np.uint16)
    return tissue, instances


def kind_payloads(record_id: str) -> dict[str, Payload]:
    """What `test-payload-kinds` yields for each record: the inputs the build must keep."""
    if record_id == "graph":
        return {"connectivity": Payload("graph", _ecg_graph(),
                                        {"directed": False, "edge_weight_meaning": "pearson r",
                                         "node_feature_names": ["mean", "std", "ptp"]})}
    if record_id == "vector":
        return {"expression": Payload("vector", EXPRESSION,
                                      {"feature_ids": GENES, "units": "TPM"})}
    if record_id == "events":
        return {"events": Payload("events", EVENTS,
                                  {"time_unit": "h", "time_origin": "admission"})}
    if record_id == "text":
        return {"report": Payload("text", REPORT, {"text_kind": "report", "language": "de"}),
                "question": Payload("text", QUESTION, {"text_kind": "question"}),
                "answer": Payload("text", ANSWER, {"text_kind": "answer", "language": "pt"})}
    if record_id == "ecg_xray":  # a signal in a sample of another modality names its standard
        sig, leads = _ecg()
        return {"ecg": Payload("signal", sig, {"sampling_rate_hz": 1000.0, "channels": leads,
                                               "units": "uV", "standard": "ecg"}),
                "cxr": Payload("image", _radiograph_crop(), {"bit_depth": 16,
                                                             "photometric": "MONOCHROME2"})}
    image = _radiograph_crop()
    tissue, instances = _masks(image)
    return {"image": Payload("image", image, {"bit_depth": 16, "photometric": "MONOCHROME2"}),
            "tissue": Payload("mask", tissue, {"annotates": "image", "label_names": {
                0: "background", 1: "soft tissue", 2: "bone"}}),
            "instances": Payload("mask", instances, {"annotates": "image"})}


class PayloadKinds(Source):
    info = _info(KINDS, "ehr", [])
    payload_members = ("answer.txt", "connectivity.npz", "cxr.png", "ecg.npy", "events.jsonl",
                       "expression.npy", "image.png", "instances.png", "question.txt",
                       "report.txt", "tissue.png")

    def list_records(self, root: Path):
        for rid in ("graph", "vector", "events", "text", "mask", "ecg_xray"):
            yield RawRecord(record_id=rid, subject_id=f"s-{rid}", split="train",
                            files=["README.txt"])

    def load(self, record: RawRecord, root: Path):
        yield Sample(classes=[], source_labels={}, payloads=kind_payloads(record.record_id))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One build of both test sources, as WebDataset tar and Parquet."""
    eps = [EntryPoint(name=MAMMO, value=f"{__name__}:TwoViewMammo", group="medshard.sources"),
           EntryPoint(name=KINDS, value=f"{__name__}:PayloadKinds", group="medshard.sources")]
    raw = tmp_path_factory.mktemp("raw")
    write_mammo_raw(raw / MAMMO)
    (raw / KINDS).mkdir()
    (raw / KINDS / "README.txt").write_text("payload kinds test source\n")
    out = tmp_path_factory.mktemp("out")
    with pytest.MonkeyPatch.context() as mp:
        registry._registry.cache_clear()
        mp.setattr(registry, "entry_points",
                   lambda group=None: eps if group == "medshard.sources" else [])
        sources = load_vocabulary().data.sources
        mp.setitem(sources, MAMMO, {"BI-RADS 1": ["mammo.birads-1"],
                                    "BI-RADS 4": ["mammo.birads-4"]})
        mp.setitem(sources, KINDS, {})
        run_build(BuildConfig(sources=[MAMMO, KINDS], data_root=raw, out=out,
                              formats=("webdataset", "parquet"), progress=False))
        yield out
    registry._registry.cache_clear()


def _shard(out: Path, source: str, fmt: str) -> Path:
    manifest = json.loads((out / "manifest.json").read_text())
    (path,) = [s["path"] for s in manifest["shards"] if s["source"] == source
               and s["format"] == fmt]
    return out / path


def _tar_members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def _loaded(out: Path, source: str) -> dict[str, dict[str, dict]]:
    """format -> key -> decoded sample, through the loader."""
    return {fmt: {s["key"]: s for s in ShardDataset(str(out), split=None, sources=[source],
                                                    shuffle=False, format=fmt)}
            for fmt in ("webdataset", "parquet")}


def _expected_view(name: str) -> tuple[np.ndarray, int]:
    """Stored pixels of a MONOCHROME1 radiograph, computed with pydicom: the modality LUT
    applied, then mirrored into MONOCHROME2 at 2**BitsStored - 1."""
    ds = pydicom.dcmread(get_testdata_file(name))
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    top = 2 ** int(ds.BitsStored) - 1
    return top - np.asarray(apply_modality_lut(ds.pixel_array, ds)).astype(np.int64), top


def test_two_view_sample_keeps_both_descriptors_and_both_images(built):
    key = f"{MAMMO}_p1_L"
    members = _tar_members(_shard(built, MAMMO, "webdataset"))
    meta = json.loads(members[f"{key}.json"])
    SampleMeta.model_validate(meta)
    assert meta["members"] == ["cc.png", "mlo.png"]
    assert set(meta["payloads"]) == {"cc", "mlo"}
    table = pq.read_table(_shard(built, MAMMO, "parquet")).to_pylist()
    (row,) = [r for r in table if r["key"] == key]
    assert json.loads(row["json"]) == meta
    for role, name in VIEWS.items():
        desc = meta["payloads"][role]
        expected, top = _expected_view(name)
        assert desc["kind"] == "image" and desc["member"] == f"{role}.png"
        assert desc["view"] == role.upper() and desc["inverted_from"] == top
        assert (desc["height"], desc["width"]) == expected.shape
        png = members[f"{key}.{role}.png"]
        assert row[f"{role}_png"] == png  # the Parquet column holds the very same bytes
        with Image.open(io.BytesIO(png)) as im:
            np.testing.assert_array_equal(np.asarray(im).astype(np.int64), expected)
    assert meta["payloads"]["cc"]["height"] != meta["payloads"]["mlo"]["height"]


def test_webdataset_library_reads_both_views(built):
    import webdataset as wds

    members = _tar_members(_shard(built, MAMMO, "webdataset"))
    tar = str(_shard(built, MAMMO, "webdataset"))
    (sample,) = wds.WebDataset([tar], shardshuffle=False, empty_check=False)
    assert sorted(k for k in sample if not k.startswith("__")) == ["cc.png", "json", "mlo.png"]
    for role in VIEWS:
        assert sample[f"{role}.png"] == members[f"{sample['__key__']}.{role}.png"]


def test_two_view_sample_round_trips_through_the_loader(built):
    key = f"{MAMMO}_p1_L"
    loaded = _loaded(built, MAMMO)
    vocab = load_vocabulary()
    for fmt, samples in loaded.items():
        s = samples[key]
        assert set(s["meta"]["payloads"]) == {"cc", "mlo"}, fmt
        for role, name in VIEWS.items():
            expected, _ = _expected_view(name)
            assert s[role].dtype == torch.int32 and s[role].shape == (1, *expected.shape)
            np.testing.assert_array_equal(s[role][0].numpy(), expected)
            assert s["meta"]["payloads"][role]["view"] == role.upper()
        assert s["labels"][vocab.index["mammo.birads-4"]] == 1
    with pytest.raises(AssertionError):  # the two views really differ
        np.testing.assert_array_equal(loaded["parquet"][key]["cc"][0, :100, :100],
                                      loaded["parquet"][key]["mlo"][0, :100, :100])


def test_unknown_payload_kind_is_quarantined_naming_it(built):
    lines = [json.loads(x) for x in (built / "quarantine.jsonl").read_text().splitlines()]
    (q,) = [x for x in lines if x["source"] == MAMMO]
    assert q["key"] == f"{MAMMO}_p2_L" and q["stage"] == "transform"
    assert q["error_type"] == "UnknownPayloadKind"
    assert "'hologram'" in q["message"] and "'scan3d'" in q["message"]
    counts = json.loads((built / "manifest.json").read_text())["sources"][MAMMO]["counts"]
    assert counts["train"]["quarantined"] == 1 and counts["train"]["written"] == 1
    with pytest.raises(UnknownPayloadKind, match="hologram"):
        encode_payload(Payload("hologram", b""), EncodeContext(key="k", role="scan3d"))


@pytest.fixture(scope="module")
def kinds(built):
    """(tar members, Parquet rows by key, loader samples per format) of the kinds source."""
    members = _tar_members(_shard(built, KINDS, "webdataset"))
    rows = {r["key"]: r for r in pq.read_table(_shard(built, KINDS, "parquet")).to_pylist()}
    return members, rows, _loaded(built, KINDS)


def _member(kinds, record: str, member: str) -> bytes:
    members, rows, _ = kinds
    key = f"{KINDS}_{record}"
    data = members[f"{key}.{member}"]
    assert rows[key][member.replace(".", "_")] == data
    meta = json.loads(members[f"{key}.json"])
    SampleMeta.model_validate(meta)
    return data


def test_graph_round_trips(kinds):
    graph = kind_payloads("graph")["connectivity"].data
    data = _member(kinds, "graph", "connectivity.npz")
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:  # numpy alone reads it
        assert npz.files == ["edge_index", "edge_weight", "node_features", "node_ids"]
        np.testing.assert_array_equal(npz["edge_index"], graph["edge_index"])
        assert npz["edge_index"].dtype == np.int64 and npz["edge_weight"].dtype == np.float32
        assert npz["node_ids"].tolist() == graph["node_ids"]
    n_edges = graph["edge_index"].shape[1]
    assert 0 < n_edges < 12 * 11 and n_edges % 2 == 0  # thresholded, both directions
    for s in (kinds[2][f][f"{KINDS}_graph"] for f in ("webdataset", "parquet")):
        g = s["connectivity"]
        assert torch.equal(g["edge_index"], torch.from_numpy(graph["edge_index"]))
        assert torch.equal(g["edge_weight"], torch.from_numpy(graph["edge_weight"]))
        assert torch.equal(g["node_features"], torch.from_numpy(graph["node_features"]))
        assert g["node_ids"] == graph["node_ids"] and len(g["node_ids"]) == 12
        desc = s["meta"]["payloads"]["connectivity"]
        assert (desc["n_nodes"], desc["n_edges"], desc["directed"]) == (12, n_edges, False)


def test_vector_round_trips_with_feature_ids(kinds):
    data = _member(kinds, "vector", "expression.npy")
    np.testing.assert_array_equal(np.load(io.BytesIO(data)), EXPRESSION)
    for fmt, samples in kinds[2].items():
        s = samples[f"{KINDS}_vector"]
        assert torch.equal(s["expression"], torch.from_numpy(EXPRESSION)), fmt
        desc = s["meta"]["payloads"]["expression"]
        assert desc["feature_ids"] == GENES and desc["length"] == 8 and desc["units"] == "TPM"


def test_events_round_trip_ordered_by_time(kinds):
    data = _member(kinds, "events", "events.jsonl")
    lines = [json.loads(x) for x in data.decode("utf-8").splitlines()]  # plain JSON Lines
    order = [1, 2, 3, 0, 4]  # by time, the tie at 2.25 h in the source's order
    assert [x["code"] for x in lines] == [EVENTS["code"][i] for i in order]
    assert lines[0] == {"code": "ICD10:I50.9", "time": 0.0, "unit": None, "value": None}
    for fmt, samples in kinds[2].items():
        ev = samples[f"{KINDS}_events"]["events"]
        assert ev["time"].dtype == torch.float64, fmt
        np.testing.assert_array_equal(ev["time"].numpy(), EVENTS["time"][order])
        np.testing.assert_array_equal(ev["value"].numpy(), EVENTS["value"][order])  # NaN kept
        assert ev["code"] == [EVENTS["code"][i] for i in order]
        assert ev["unit"] == [EVENTS["unit"][i] for i in order]
        desc = samples[f"{KINDS}_events"]["meta"]["payloads"]["events"]
        assert desc["columns"] == {"code": "string", "time": "float64", "unit": "string",
                                   "value": "float64"}
        assert (desc["n_events"], desc["time_unit"], desc["time_origin"]) == (5, "h", "admission")


def test_text_round_trips_non_ascii(kinds):
    for role, text in (("report", REPORT), ("question", QUESTION), ("answer", ANSWER)):
        assert _member(kinds, "text", f"{role}.txt") == text.encode("utf-8")
        for fmt, samples in kinds[2].items():
            s = samples[f"{KINDS}_text"]
            assert s[role] == text, fmt
            desc = s["meta"]["payloads"][role]
            assert desc["n_chars"] == len(text) and desc["n_bytes"] == len(text.encode())
    assert kinds[2]["parquet"][f"{KINDS}_text"]["meta"]["payloads"]["report"]["language"] == "de"


def test_masks_round_trip_with_their_image(kinds):
    image = _radiograph_crop()
    tissue, instances = _masks(image)
    for role, mask, depth in (("tissue", tissue, 8), ("instances", instances, 16)):
        with Image.open(io.BytesIO(_member(kinds, "mask", f"{role}.png"))) as im:
            np.testing.assert_array_equal(np.asarray(im), mask)  # PIL reads the label values
        for fmt, samples in kinds[2].items():
            s = samples[f"{KINDS}_mask"]
            assert s[role].shape == mask.shape, fmt
            np.testing.assert_array_equal(s[role].numpy(), mask)
            desc = s["meta"]["payloads"][role]
            assert desc["bit_depth"] == depth and desc["annotates"] == "image"
            assert desc["values"] == np.unique(mask).tolist()
            np.testing.assert_array_equal(s["image"][0].numpy(), image)
    names = kinds[2]["webdataset"][f"{KINDS}_mask"]["meta"]["payloads"]["tissue"]["label_names"]
    assert names == {"0": "background", "1": "soft tissue", "2": "bone"}
    assert tissue.max() == 2 and instances.max() == 300


def test_an_ecg_beside_an_xray_gets_the_ecg_standard(built, kinds):
    from scipy.signal import resample_poly

    raw, _ = _ecg()
    expected = resample_poly(raw, 1, 2, axis=1)  # 1000 Hz -> ECG standard's 500 Hz, 10 s
    paper = {s["key"]: s for s in ShardDataset(str(built), split=None, sources=[KINDS],
                                               shuffle=False, ecg_view="climb-paper")}
    for fmt, samples in kinds[2].items():
        s = samples[f"{KINDS}_ecg_xray"]
        desc = s["meta"]["payloads"]["ecg"]
        assert s["modality"] == "ehr" and desc["standard"] == "ecg", fmt
        assert s["ecg"].shape == (12, 5000) and desc["original_sampling_rate_hz"] == 1000.0
        np.testing.assert_allclose(s["ecg"].numpy() * np.asarray(desc["scale"])[:, None],
                                   expected, rtol=1e-4, atol=1e-3 * np.ptp(expected))
        np.testing.assert_array_equal(s["cxr"][0].numpy(), _radiograph_crop())
    view = paper[f"{KINDS}_ecg_xray"]  # the loader's ECG views follow the standard
    assert view["ecg"].shape == (12, 2500) and view["meta"]["payloads"]["ecg"]["view"] == "climb-paper"
    ctx = EncodeContext(key="k", role="ecg", modality="chest-xray")
    with pytest.raises(RecordError, match="no signal standard 'chest-xray'"):
        encode_payload(Payload("signal", raw, {"sampling_rate_hz": 1000.0, "channels": [],
                                               "units": "uV"}), ctx)


def test_collate_stacks_vectors_and_lists_graphs_events_and_text(kinds):
    by_key = kinds[2]["parquet"]
    vector, graph = by_key[f"{KINDS}_vector"], by_key[f"{KINDS}_graph"]
    assert collate([vector, vector])["expression"].shape == (2, len(GENES))
    pair = collate([graph, graph])["connectivity"]
    assert isinstance(pair, list) and len(pair) == 2 and pair[0] is graph["connectivity"]
    mixed = collate([by_key[f"{KINDS}_{r}"] for r in ("graph", "events", "text", "mask")])
    assert mixed["connectivity"][1:] == [None, None, None]
    assert mixed["events"][1]["code"][0] == "ICD10:I50.9" and mixed["events"][0] is None
    assert mixed["report"] == [None, None, REPORT, None]
    assert mixed["tissue"][3].shape == (160, 120) and mixed["labels"].shape[0] == 4


def test_encoders_refuse_what_they_cannot_store_losslessly():
    ctx = EncodeContext(key="k", role="r")
    bad = [
        (Payload("mask", np.full((4, 4), -1, np.int16)), "outside 0..65535"),
        (Payload("mask", np.zeros((2, 4, 4), np.uint8)), "2-D integer"),
        (Payload("mask", np.zeros((4, 4), np.float32)), "2-D integer"),
        (Payload("graph", {"edge_index": np.array([[0], [5]])}, {"directed": True, "n_nodes": 3}),
         "node 5 outside 0..2"),
        (Payload("graph", {"edge_index": np.zeros((2, 0), int)}, {"directed": True}), "n_nodes"),
        (Payload("graph", {"edge_index": np.zeros((2, 1), int), "node_ids": ["a", "b"],
                           "node_features": np.zeros((3, 1))}, {"directed": True}), "disagree"),
        (Payload("vector", np.zeros(3), {"feature_ids": ["a", "a", "b"]}), "unique feature_ids"),
        (Payload("events", {"time": np.array([0.0, np.inf]), "code": ["a", "b"]}), "finite"),
        (Payload("events", {"time": np.array([0.0]), "code": ["a", "b"]}), "2 values for 1"),
        (Payload("events", {"time": np.array([0.0]), "code": ["a"], "x": ["s", 1]}), "mixes"),
        (Payload("text", b"\xff\xfe"), "not UTF-8"),
        (Payload("video", np.zeros((2, 4, 4, 3), np.uint8), {"encoding": "avi"}), "encoded bytes"),
    ]
    for p, message in bad:
        with pytest.raises(RecordError, match=message):
            encode_payload(p, ctx)


def test_every_payload_kind_has_an_encoder_a_descriptor_and_a_loader_decoding():
    from medshard.loaders.decode import PAYLOAD_DECODERS
    from medshard.pipeline.encoders import ENCODERS
    from medshard.schemas import PAYLOAD_KINDS

    assert set(ENCODERS) == set(PAYLOAD_DECODERS) == set(PAYLOAD_KINDS)


def test_a_mask_must_lie_on_the_image_it_annotates():
    payloads = {"image": Payload("image", np.zeros((8, 6), np.uint8)),
                "mask": Payload("mask", np.zeros((8, 5), np.uint8), {"annotates": "image"})}
    sample = Sample(classes=[], source_labels={},
                    payloads=payloads)
    with pytest.raises(RecordError, match=r"'mask' is \(8, 5\), the 'image' it annotates is"):
        encode_payloads(sample, {}, "text", "k")
    payloads["mask"].descriptor["annotates"] = "photo"
    with pytest.raises(RecordError, match="lacks"):
        encode_payloads(sample, {}, "text", "k")


def test_sample_schema_refuses_mismatched_roles():
    sample = Sample(classes=[], source_labels={},
                    payloads={"report": Payload("text", "x")})
    members, payloads = encode_payloads(sample, {}, "text", "k")
    base = {"key": "k", "source": "s", "modality": "text", "split": "train", "subject": "x",
            "task": "t", "labels": [], "source_labels": {},
            "provenance": {"files": [], "source_version": "1", "transform_config_hash": "0",
                           "medshard_version": "0"}}
    SampleMeta.model_validate({**base, "payloads": payloads, "members": list(members)})
    with pytest.raises(ValueError, match="members"):
        SampleMeta.model_validate({**base, "payloads": payloads, "members": ["other.txt"]})
    with pytest.raises(ValueError, match="reserved"):
        SampleMeta.model_validate({**base, "payloads": {"labels": payloads["report"]},
                                   "members": ["labels.txt"]})


def test_encoding_is_deterministic_for_every_kind():
    from medshard.pipeline.build import BuildConfig

    specs = BuildConfig(sources=[], data_root=Path("."), out=Path(".")).signal_specs

    def encoded(record: str) -> dict[str, bytes]:
        sample = Sample(classes=[], source_labels={},
                        payloads=kind_payloads(record))
        members, _ = encode_payloads(sample, specs, "ehr", "k")
        return {m: bytes(data) for m, data in members.items()}

    records = ("graph", "vector", "events", "text", "mask", "ecg_xray")
    first = {r: encoded(r) for r in records}
    time.sleep(2.1)  # a zip entry's timestamp has 2-s resolution: cross a tick
    for record in records:
        assert encoded(record) == first[record], record


def test_the_loader_refuses_a_schema_1_build_with_one_clear_line(built, tmp_path):
    from medshard.errors import UserError

    manifest = json.loads((built / "manifest.json").read_text())
    manifest["schema_version"] = "1.1"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="schema 1.1.*rebuild it"):
        ShardDataset(str(tmp_path))
