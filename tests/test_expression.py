"""Expression sources: every vector against an independent parse of the raw file (scipy's
MatrixMarket reader, pandas), the declared gene index and its masking, and the sparse
vector payload from encoder through tar, Parquet and the loader."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io

from medshard.pipeline.encoders import EncodeContext, encode_vector
from medshard.schemas import Payload, RecordError
from medshard.schemas.models import VectorDescriptor
from medshard.sources import get_source
from medshard.sources.omics.expression import ensembl_gene, ids_sha256


def _dense(payload: Payload) -> np.ndarray:
    """A source's vector payload as a dense float64 array (NaN where not measured)."""
    if isinstance(payload.data, dict):
        out = np.zeros(payload.data["length"])
        out[payload.data["indices"]] = payload.data["values"]
        out[payload.data["missing"]] = np.nan
        return out
    return np.asarray(payload.data, dtype=np.float64)


def _samples(slug: str, root: Path, record_id: str, **options) -> list:
    src = get_source(slug, **options)
    record = next(r for r in src.list_records(root) if getattr(r, "record_id", None) == record_id)
    return list(src.load(record, root))


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    from medshard.sources.omics import (
        expression_atlas_fixture,
        geo_fixture,
        scxa_fixture,
        tcga_fixture,
    )

    base = tmp_path_factory.mktemp("omics")
    return {slug: mod.write_fixture(base / slug) for slug, mod in (
        ("expression-atlas-scrna", scxa_fixture), ("expression-atlas", expression_atlas_fixture),
        ("geo", geo_fixture), ("tcga-genomic", tcga_fixture))}


def test_ensembl_ids_lose_their_version_and_keep_par_y() -> None:
    assert ensembl_gene("ENSG00000141510.17") == "ENSG00000141510"
    assert ensembl_gene("ENSG00000002586.20_PAR_Y") == "ENSG00000002586_PAR_Y"
    assert ensembl_gene("ENSMUSG00000000001") == "ENSMUSG00000000001"
    assert ensembl_gene("TP53") is None and ensembl_gene("1007_s_at") is None


# --- Single Cell Expression Atlas -------------------------------------------------------

@pytest.mark.parametrize("acc,gz", [("E-MTAB-9001", False), ("E-MTAB-9014", True)])
def test_each_cell_is_its_column_of_the_matrix_as_scipy_reads_it(roots, acc, gz) -> None:
    root = roots["expression-atlas-scrna"]
    base = root / acc / f"{acc}.aggregated_filtered_normalised_counts.mtx"
    if gz:
        with gzip.open(base.with_name(base.name + ".gz")) as f:
            matrix = scipy.io.mmread(f).tocsc()
    else:
        matrix = scipy.io.mmread(base).tocsc()
    genes = pd.read_csv(f"{base}_rows", sep="\t", header=None)[0].tolist()
    cells = pd.read_csv(f"{base}_cols", header=None)[0].tolist()
    design = pd.read_csv(root / acc / f"ExpDesign-{acc}.tsv", sep="\t", index_col=0)
    samples = _samples("expression-atlas-scrna", root, acc)
    assert len(samples) == len(cells) == matrix.shape[1]
    for j, sample in enumerate(samples):
        payload = sample.payloads["expression"]
        assert payload.descriptor["feature_ids"] == genes
        assert payload.descriptor["feature_index"]["sha256"] == ids_sha256(genes)
        np.testing.assert_allclose(_dense(payload), matrix[:, j].toarray().ravel(), rtol=1e-6)
        assert len(payload.data["indices"]) == matrix[:, j].nnz  # zeros are not stored
        assert sample.meta["cell_id"] == cells[j]
        assert sample.source_labels["cell_type"] == design.loc[
            cells[j], "Factor Value[inferred cell type - ontology labels]"]


def test_a_matrix_entry_outside_its_size_and_a_cut_gzip_are_broken_records(roots) -> None:
    root = roots["expression-atlas-scrna"]
    with pytest.raises(RecordError, match=r"entry 3 is at \(766, 1\), outside"):
        _samples("expression-atlas-scrna", root, "E-MTAB-9004")
    with pytest.raises(RecordError, match="cannot be read.*download it again"):
        _samples("expression-atlas-scrna", root, "E-MTAB-9005")


def test_a_declared_gene_index_masks_unmeasured_genes_and_drops_the_others(roots) -> None:
    root = roots["expression-atlas-scrna"]
    base = root / "E-MTAB-9001" / "E-MTAB-9001.aggregated_filtered_normalised_counts.mtx"
    genes = pd.read_csv(f"{base}_rows", sep="\t", header=None)[0].tolist()
    declared = ["ENSG00000141510", *genes[10:0:-1], "ENSG00000012048"]  # 2 unmeasured
    (root / "genes.txt").write_text("# declared\n" + "\n".join(declared) + "\n")
    matrix = scipy.io.mmread(base).tocsc()
    samples = _samples("expression-atlas-scrna", root, "E-MTAB-9001", gene_index="genes.txt")
    for j, sample in enumerate(samples):
        p = sample.payloads["expression"]
        assert p.descriptor["feature_ids"] is None
        assert p.descriptor["feature_index"] == {"name": "genes.txt", "length": 12,
                                                 "sha256": ids_sha256(declared)}
        dense = _dense(p)
        assert np.isnan(dense[[0, 11]]).all()  # masked, not zero
        column = matrix[:, j].toarray().ravel()
        np.testing.assert_allclose(dense[1:11], column[10:0:-1], rtol=1e-6)
        assert sample.meta["genes_outside_index"] == len(genes) - 10


# --- Expression Atlas (bulk) ------------------------------------------------------------

@pytest.mark.parametrize("acc", ["E-MTAB-9001", "E-MTAB-9004"])
def test_each_assay_group_is_its_column_as_pandas_reads_it(roots, acc) -> None:
    root = roots["expression-atlas"]
    table = pd.read_csv(root / acc / f"{acc}-tpms.tsv", sep="\t", index_col=0, dtype=str)
    sdrf = pd.read_csv(root / acc / f"{acc}.condensed-sdrf.tsv", sep="\t", header=None)
    samples = _samples("expression-atlas", root, acc)
    assert [s.source_labels["assay_group"] for s in samples] == list(table.columns[1:])
    for sample in samples:
        group = sample.source_labels["assay_group"]
        # a quantile cell "min,q1,median,q3,max" gives its median
        want = table[group].map(lambda c: float(c.split(",")[len(c.split(",")) // 2]))
        p = sample.payloads["expression"]
        assert p.descriptor["feature_ids"] == list(table.index)
        assert p.descriptor["units"] == "TPM"
        np.testing.assert_allclose(_dense(p), want.to_numpy(), rtol=1e-6)
        factors = sdrf[(sdrf[2].isin(sample.meta["assays"])) & (sdrf[3] == "factor")]
        assert [f["value"] for f in sample.source_labels["factors"]] == sorted(set(factors[5]))
        # the donor ("individual") never leaves; organism does
        names = {c["name"] for c in sample.meta["characteristics"]}
        assert names == {"organism"}


def test_a_row_one_field_short_quarantines_the_experiment(roots) -> None:
    with pytest.raises(RecordError, match=r"E-MTAB-9002-tpms.tsv line 8: 3 fields, the header "
                       "has 4"):
        _samples("expression-atlas", roots["expression-atlas"], "E-MTAB-9002")


# --- GEO ------------------------------------------------------------------------------

def _series_table(path: Path) -> pd.DataFrame:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        lines = f.read().splitlines()
    begin = lines.index("!series_matrix_table_begin")
    end = lines.index("!series_matrix_table_end")
    return pd.read_csv(io.StringIO("\n".join(lines[begin + 1:end])), sep="\t", index_col=0)


def _series_table_between(path: Path, begin_tag: str, end_tag: str) -> pd.DataFrame:
    with gzip.open(path, "rt") as f:
        lines = f.read().splitlines()
    begin, end = lines.index(begin_tag), lines.index(end_tag)
    return pd.read_csv(io.StringIO("\n".join(lines[begin + 1:end])), sep="\t", index_col=0)


@pytest.mark.parametrize("series,probes", [("GSE90001", True), ("GSE90002", False)])
def test_each_gsm_is_its_column_with_probes_averaged_per_gene(roots, series, probes) -> None:
    root = roots["geo"]
    name = f"{series}_series_matrix.txt" + (".gz" if probes else "")
    table = _series_table(root / series / "matrix" / name)
    if probes:
        gpl = pd.read_csv(root / "GPL90001.txt", sep="\t", comment="#", dtype=str)
        gpl = gpl[gpl["ENSEMBL_ID"].notna() & ~gpl["ENSEMBL_ID"].fillna("").str.contains("///")]
        mapped = table.join(gpl.set_index("ID")["ENSEMBL_ID"], how="inner")
        want = mapped.groupby("ENSEMBL_ID", sort=False).mean()
    else:
        want = table
    samples = _samples("geo", root, series)
    assert [s.meta["sample"] for s in samples] == list(table.columns)
    for sample in samples:
        p = sample.payloads["expression"]
        assert p.descriptor["feature_ids"] == list(want.index)
        np.testing.assert_allclose(_dense(p), want[sample.meta["sample"]].to_numpy(), rtol=1e-5)
        assert sample.source_labels["label_field"] == "cell type"
        assert {c["key"] for c in sample.source_labels["characteristics"]} == {"cell type",
                                                                             "tissue"}
    if probes:
        assert samples[0].meta["probes_ambiguous"] == 1
        assert samples[0].meta["probes_unmapped"] == 1


def test_a_gds_sample_is_its_column_with_its_subsets_as_characteristics(roots) -> None:
    root = roots["geo"]
    path = root / "datasets" / "GDS9007" / "soft" / "GDS9007_full.soft.gz"
    table = _series_table_between(path, "!dataset_table_begin", "!dataset_table_end")
    gpl = pd.read_csv(root / "GPL90001.txt", sep="\t", comment="#", dtype=str)
    gpl = gpl[gpl["ENSEMBL_ID"].notna() & ~gpl["ENSEMBL_ID"].fillna("").str.contains("///")]
    gsms = [c for c in table.columns if c.startswith("GSM")]
    want = table[gsms].join(gpl.set_index("ID")["ENSEMBL_ID"], how="inner")
    want = want.groupby("ENSEMBL_ID", sort=False).mean()
    with gzip.open(path, "rt") as f:
        soft = f.read()
    subsets = [dict(line[1:].split(" = ", 1) for line in block.splitlines()[1:]
                    if line.startswith("!subset"))
               for block in soft.split("^SUBSET")[1:]]
    record = next(r for r in get_source("geo").list_records(root) if r.record_id == "GDS9007")
    assert record.subject_id == "GSE90022"  # the series it was made from
    samples = list(get_source("geo").load(record, root))
    assert [s.meta["sample"] for s in samples] == gsms
    for sample in samples:
        gsm = sample.meta["sample"]
        np.testing.assert_allclose(_dense(sample.payloads["expression"]), want[gsm].to_numpy(),
                                   rtol=1e-5)
        cell_type = next(sub["subset_description"] for sub in subsets
                         if sub["subset_type"].startswith("cell type")
                         and gsm in sub["subset_sample_id"].split(","))
        assert sample.source_labels["label"] == cell_type
        assert sample.source_labels["label_field"] == "cell type"
        # the free-text `individual` subset never leaves
        assert [c["key"] for c in sample.source_labels["characteristics"]] == ["cell type"]


def test_a_probe_series_without_its_platform_table_names_the_fix(roots, tmp_path) -> None:
    import shutil

    root = tmp_path / "geo"
    shutil.copytree(roots["geo"] / "GSE90001", root / "GSE90001")
    with pytest.raises(RecordError, match="download the GPL full table"):
        _samples("geo", root, "GSE90001")


# --- TCGA ------------------------------------------------------------------------------

@pytest.mark.parametrize("column", ["tpm_unstranded", "unstranded"])
def test_each_sample_is_its_star_counts_column_as_pandas_reads_it(roots, column) -> None:
    root = roots["tcga-genomic"]
    src = get_source("tcga-genomic", value_column=column)
    records = [r for r in src.list_records(root) if getattr(r, "record_id", None)]
    checked = 0
    for record in records:
        path = root / record.files[0]
        if not path.exists() or record.subject_id == "TCGA-Z9-A007":
            continue
        table = pd.read_csv(path, sep="\t", comment="#")
        genes = table[~table["gene_id"].str.startswith("N_")]
        (sample,) = src.load(record, root)
        p = sample.payloads["expression"]
        assert p.descriptor["feature_ids"] == [g.split(".")[0] for g in genes["gene_id"]]
        np.testing.assert_allclose(_dense(p), genes[column].to_numpy(), rtol=1e-6)
        assert sample.meta["star_summary"][0] == {
            "name": "N_ambiguous", "reads": int(table.set_index("gene_id").loc["N_ambiguous",
                                                                            "unstranded"])}
        checked += 1
    assert checked == 5


def test_tcga_splits_by_patient_and_keeps_no_barcode(roots) -> None:
    root = roots["tcga-genomic"]
    records = [r for r in get_source("tcga-genomic").list_records(root)
               if getattr(r, "record_id", None)]
    sheet = pd.read_csv(next(root.glob("gdc_sample_sheet*.tsv")), sep="\t")
    assert {r.subject_id for r in records} == {c[:12] for c in sheet["Sample ID"]}
    # one patient, two samples (tumour and normal): one subject, so one split
    assert sum(r.subject_id == "TCGA-Z9-A003" for r in records) == 2
    for r in records:
        assert "TCGA-Z9" not in repr(r.meta) and "TCGA-Z9" not in repr(r.source_labels)


# --- the sparse vector payload ----------------------------------------------------------

def _ctx() -> EncodeContext:
    return EncodeContext(key="k", role="expression", modality="omics")


def test_a_sparse_vector_encodes_to_npz_and_decodes_dense_with_nan_where_missing() -> None:
    from medshard.loaders.decode import vector_tensor

    data = {"length": 6, "indices": np.array([1, 4]), "values": np.array([2.5, 7.0], np.float32),
            "missing": np.array([5])}
    members, desc = encode_vector(Payload("vector", data, {"feature_ids": list("abcdef")}), _ctx())
    assert list(members) == ["expression.npz"]
    assert (desc["storage"], desc["n_missing"], desc["length"]) == ("sparse", 1, 6)
    VectorDescriptor.model_validate(desc)
    with np.load(io.BytesIO(members["expression.npz"])) as npz:  # numpy reads it alone
        assert npz["indices"].tolist() == [1, 4]
    got = vector_tensor(members["expression.npz"], desc).numpy()
    np.testing.assert_array_equal(got, [0, 2.5, 0, 0, 7.0, np.nan])


@pytest.mark.parametrize("data,message", [
    ({"length": 3, "indices": np.array([3]), "values": np.array([1.0])}, "inside 0..2"),
    ({"length": 3, "indices": np.array([2, 1]), "values": np.array([1.0, 2.0])}, "ascending"),
    ({"length": 3, "indices": np.array([1]), "values": np.array([1.0, 2.0])}, "2 values for 1"),
    ({"length": 3, "indices": np.array([1]), "values": np.array([1.0]),
      "missing": np.array([1])}, "both stored and missing"),
])
def test_a_malformed_sparse_vector_is_a_record_error(data, message) -> None:
    with pytest.raises(RecordError, match=message):
        encode_vector(Payload("vector", data, {"feature_ids": list("abc")}), _ctx())


def test_a_feature_index_stands_for_the_ids_and_must_match_the_length() -> None:
    index = {"name": "genes.txt", "sha256": "0" * 64, "length": 3}
    _, desc = encode_vector(Payload("vector", np.zeros(3, np.float32),
                                    {"feature_index": index}), _ctx())
    assert desc["feature_ids"] is None and desc["feature_index"] == index
    VectorDescriptor.model_validate(desc)
    with pytest.raises(RecordError, match="4 entries but its feature index"):
        encode_vector(Payload("vector", np.zeros(4), {"feature_index": index}), _ctx())
    with pytest.raises(ValueError, match="feature_ids or a feature_index"):
        VectorDescriptor.model_validate({**desc, "feature_index": None})


def test_scrna_cells_come_out_of_tar_parquet_and_the_loader_as_scipy_reads_them(tmp_path) -> None:
    from medshard.loaders import ShardDataset
    from medshard.pipeline.build import BuildConfig, run_build
    from medshard.sources.omics.scxa_fixture import write_fixture

    raw = tmp_path / "raw"
    write_fixture(raw / "expression-atlas-scrna")
    out = tmp_path / "out"
    run_build(BuildConfig(sources=["expression-atlas-scrna"], data_root=raw, out=out,
                          formats=("webdataset", "parquet"), progress=False))
    want = {}
    for acc in ("E-MTAB-9001", "E-MTAB-9002"):
        base = raw / "expression-atlas-scrna" / acc / f"{acc}.aggregated_filtered_normalised_counts.mtx"
        m = scipy.io.mmread(base).tocsc()
        for j in range(m.shape[1]):
            want[f"expression-atlas-scrna_{acc}_c{j + 1:06d}"] = m[:, j].toarray().ravel()
    for fmt in ("webdataset", "parquet"):
        got = {s["key"]: s for s in ShardDataset(str(out), split=None, shuffle=False, format=fmt)}
        for key, column in want.items():
            tensor = got[key]["expression"]
            assert tensor.shape == column.shape
            np.testing.assert_allclose(tensor.numpy(), column, rtol=1e-6)
