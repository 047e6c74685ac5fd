"""PMC Open Access figure-caption pairs over the miniature: safe JATS, figures, captions."""

from __future__ import annotations

import io
import tarfile
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from medshard.formats.jats import UnsafeXML, figures, parse_xml_safely
from medshard.pipeline.encoders import encode_payloads
from medshard.schemas import BadRow, RecordError
from medshard.sources import get_source
from medshard.sources.text import pmc_image_text_fixture as fx


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return fx.write_fixture(tmp_path_factory.mktemp("pmc") / "pmc-image-text")


@pytest.fixture(scope="module")
def records(root):
    out = list(get_source("pmc-image-text").list_records(root))
    assert not [r for r in out if isinstance(r, BadRow)]
    return {r.record_id: r for r in out}


def _package(root, pmcid) -> dict[str, bytes]:
    with tarfile.open(root / fx.package_path(pmcid), "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}


def _stdlib_captions(nxml: bytes) -> dict[str, str]:
    """Captions by ElementTree's own parser (the fixture's nxml declares no entity)."""
    tree = ET.fromstring(nxml)
    out = {}
    for fig in tree.iter("fig"):
        cap = fig.find("caption")
        blocks = [" ".join("".join(el.itertext()).split()) for el in cap]
        out[fig.get("id")] = " ".join(b for b in blocks if b)
    return out


def test_listing_reads_the_file_list_columns(records):
    r = records["PMC3400100"]
    assert r.files == [fx.package_path("PMC3400100")] == ["oa_package/00/01/PMC3400100.tar.gz"]
    assert r.subject_id == "PMC3400100" and r.split is None
    assert r.meta == {"pmid": "28001001", "license": "CC BY"}


def test_one_sample_per_figure_with_its_caption_and_graphic(root, records):
    src = get_source("pmc-image-text")
    samples = list(src.load(records["PMC3400100"], root))
    assert [s.key_suffix for s in samples] == ["F1", "F2"]  # Box 1 has no graphic
    files = _package(root, "PMC3400100")
    expected = _stdlib_captions(files["PMC3400100/PMC3400100.nxml"])
    for s in samples:
        assert s.payloads["caption"].data == expected[s.key_suffix]
        assert s.meta["figures_without_graphic"] == 1 and s.meta["n_graphics"] == 1
        assert s.meta["pmcid"] == "PMC3400100" and s.meta["pmid"] == "28001001"
        assert s.task == "image-text" and s.classes == []
    assert samples[0].payloads["caption"].data.startswith("Colour fundus photograph. Colour")

    # JPEG kept as its bytes minus EXIF; pixels as Pillow decodes the packaged file
    members, desc = encode_payloads(samples[0], {}, "text", "pmc-image-text_PMC3400100_F1")
    jpg = bytes(members["image.jpg"])
    assert fx.PHI_EXIF.encode() not in jpg and fx.PHI_OWNER.encode() not in jpg
    raw = np.asarray(Image.open(io.BytesIO(files["PMC3400100/ijo-1-001-f1.jpg"])))
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(jpg))), raw)

    # GIF decoded once, stored as lossless PNG with the palette applied
    members, desc = encode_payloads(samples[1], {}, "text", "pmc-image-text_PMC3400100_F2")
    png = np.asarray(Image.open(io.BytesIO(bytes(members["image.png"]))))
    gif = np.asarray(Image.open(io.BytesIO(files["PMC3400100/ijo-1-001-f2.gif"])).convert("RGB"))
    np.testing.assert_array_equal(png, gif)
    assert desc["image"]["source_encoding"] == "gif" and desc["image"]["photometric"] == "RGB"


def test_href_with_its_extension_is_found(root, records):
    (s,) = get_source("pmc-image-text").load(records["PMC3400106"], root)
    assert s.meta["graphic"] == "fig1.png" and s.key_suffix == "fig1"
    assert s.payloads["image"].data == _package(root, "PMC3400106")["PMC3400106/fig1.png"]


@pytest.mark.parametrize("pmcid, message", [
    ("PMC3400101", "unreadable article package"),
    ("PMC3400102", "names graphic 'gone-f1', which is not in the article package"),
    ("PMC3400103", "refused: the document declares an entity"),
])
def test_broken_articles_are_record_errors(root, records, pmcid, message):
    with pytest.raises(RecordError, match=message):
        list(get_source("pmc-image-text").load(records[pmcid], root))


def test_external_entities_and_dtds_are_never_fetched(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    doc = (f'<!DOCTYPE a [<!ENTITY x SYSTEM "file://{secret}">]><a>&x;</a>').encode()
    with pytest.raises(UnsafeXML, match="declares an entity"):
        parse_xml_safely(doc)
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY y "TOP-SECRET-MARKER">')
    doc = f'<!DOCTYPE a SYSTEM "file://{dtd}"><a>&y;</a>'.encode()
    with pytest.raises(UnsafeXML, match="undefined entity|refers to"):
        parse_xml_safely(doc)
    # the JATS doctype line alone is fine: read, never loaded
    tree = parse_xml_safely(fx.nxml("PMC1", "1", "t &amp; t", [fx.fig_xml("F1", "Fig 1",
                                                                          "A. B", "g")]))
    assert figures(tree)[0].graphics == ("g",)


def test_bad_rows_do_not_stop_the_listing(tmp_path):
    root = fx.write_fixture(tmp_path / "pmc")
    fx.malformed_row(root, tmp_path / "outside")
    out = list(get_source("pmc-image-text").list_records(root))
    bad = [r for r in out if isinstance(r, BadRow)]
    assert [("not PMC<digits>" in b.reason, "not a .tar.gz" in b.reason) for b in bad] == [
        (True, False), (False, True)]
    assert len(out) - len(bad) == 6


def test_the_file_list_option_and_a_missing_list(tmp_path):
    from medshard.sources.base import MissingRawData

    root = fx.write_fixture(tmp_path / "pmc")
    with pytest.raises(MissingRawData, match="oa_comm_use_file_list.csv not found"):
        list(get_source("pmc-image-text", file_list="oa_comm_use_file_list.csv")
             .list_records(root))


def test_package_reading_keeps_the_xml_and_figures_only(root):
    from medshard.sources.text.pmc_image_text import read_package

    held = read_package((root / fx.package_path("PMC3400100")).read_bytes())
    assert sorted(held) == ["PMC3400100/PMC3400100.nxml", "PMC3400100/ijo-1-001-f1.jpg",
                            "PMC3400100/ijo-1-001-f2.gif"]  # the PDF is skipped unread
