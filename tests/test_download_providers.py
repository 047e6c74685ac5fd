"""Providers end to end against loopback fakes of PhysioNet, Kaggle, Zenodo, GitHub and TCIA,
plus mirrors, manual placement, consent gating, receipts and the disk check."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from medshard.acquire.consent import record_acceptance
from medshard.acquire.download.engine import DownloadError, RetryPolicy
from medshard.acquire.download.run import DownloadFailed, download_source
from medshard.errors import UserError
from medshard.schemas.download import RECEIPT_NAME, DownloadSpec, Receipt
from tests.http_fixtures import FakeServer, Reply, json_reply, make_source, tar_bytes, zip_bytes

ENV_VARS = ["PHYSIONET_USERNAME", "PHYSIONET_PASSWORD", "KAGGLE_USERNAME", "KAGGLE_KEY",
            "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR", "GITHUB_TOKEN", "ZENODO_TOKEN", "TCIA_USERNAME", "TCIA_PASSWORD",
            "MEDSHARD_MIRROR", "NETRC", "MEDSHARD_PHYSIONET_URL", "MEDSHARD_KAGGLE_API",
            "MEDSHARD_ZENODO_API", "MEDSHARD_GITHUB_API", "MEDSHARD_TCIA_API"]


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture(autouse=True)
def env(tmp_path, monkeypatch):
    for v in ENV_VARS:
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "userhome"))  # no real ~/.netrc or ~/.kaggle
    monkeypatch.setenv("MEDSHARD_HOME", str(tmp_path / "medshard-home"))


@pytest.fixture
def server():
    with FakeServer() as s:
        yield s


def run(src, root: Path, **kw):
    record_acceptance(src.info)
    kw.setdefault("policy", RetryPolicy(retries=3, backoff_s=0.001, sleep=lambda s: None))
    return download_source(src, root, progress=False, echo=lambda s: None, **kw)


def receipt(root: Path, slug: str) -> Receipt:
    return Receipt.model_validate_json((root / slug / RECEIPT_NAME).read_bytes())


# --- PhysioNet ------------------------------------------------------------------------------

PN_FILES = {"RECORDS": b"records100/00000/00001_lr\n", "ptbxl_database.csv": b"ecg_id,patient_id\n1,7\n",
            "records100/00000/00001_lr.hea": b"00001_lr 12 100 1000\n",
            "records100/00000/00001_lr.dat": bytes(range(256)) * 40}


def physionet(server, project="proj", version="1.0.0", files=PN_FILES):
    prefix = f"/files/{project}/{version}/"
    for k, v in files.items():
        server.files[prefix + k] = v
    sums = "".join(f"{sha(v)}  {k}\n" for k, v in files.items())
    server.files[prefix + "SHA256SUMS.txt"] = sums.encode()
    return make_source(project, DownloadSpec(provider="physionet", project=project, version=version))


def test_physionet_basic_auth_sha256sums_and_receipt(server, tmp_path, monkeypatch):
    src = physionet(server)
    server.basic_auth = ("alice", "pn-secret")
    monkeypatch.setenv("PHYSIONET_USERNAME", "alice")
    monkeypatch.setenv("PHYSIONET_PASSWORD", "pn-secret")
    s = run(src, tmp_path / "data", base_url=server.url)
    dest = tmp_path / "data" / "proj"
    for k, v in PN_FILES.items():
        assert (dest / k).read_bytes() == v
    rec = receipt(tmp_path / "data", "proj")
    by_path = {f.path: f for f in rec.files}
    assert set(by_path) == set(PN_FILES) | {"SHA256SUMS.txt"}
    assert by_path["RECORDS"].sha256 == sha(PN_FILES["RECORDS"])
    assert by_path["RECORDS"].origin == f"{server.url}/files/proj/1.0.0/RECORDS"
    assert rec.provider == "physionet" and rec.completed_at.endswith("Z")
    assert s.files == 5 and s.downloaded_bytes == sum(f.size for f in rec.files)
    assert "downloaded" in s.line()
    # a second run trusts the intact receipt and sends no request
    before = len(server.requests)
    again = run(src, tmp_path / "data", base_url=server.url)
    assert again.up_to_date and len(server.requests) == before


def test_physionet_include_patterns(server, tmp_path):
    src = physionet(server)
    src.download = src.download.model_copy(update={"include": ["ptbxl_database.csv", "records100/*.hea"]})
    run(src, tmp_path, base_url=server.url)
    got = {f.path for f in receipt(tmp_path, "proj").files}
    assert got == {"ptbxl_database.csv", "records100/00000/00001_lr.hea", "SHA256SUMS.txt"}


def test_physionet_403_explained_with_project_url(server, tmp_path, monkeypatch):
    src = physionet(server)
    monkeypatch.setenv("PHYSIONET_USERNAME", "alice")
    monkeypatch.setenv("PHYSIONET_PASSWORD", "pn-secret")
    server.script("/files/proj/1.0.0/SHA256SUMS.txt", "403")
    with pytest.raises(DownloadError) as e:
        run(src, tmp_path, base_url=server.url)
    assert ("your account has not been granted access to this project: request it at "
            f"{server.url}/content/proj/1.0.0/") in str(e.value)


def test_physionet_login_required_without_credentials(server, tmp_path):
    src = physionet(server)
    server.basic_auth = ("alice", "pn-secret")
    with pytest.raises(DownloadError, match="set PHYSIONET_USERNAME and PHYSIONET_PASSWORD"):
        run(src, tmp_path, base_url=server.url)


def test_physionet_wrong_password_named_by_origin_not_value(server, tmp_path, monkeypatch):
    src = physionet(server)
    server.basic_auth = ("alice", "right")
    monkeypatch.setenv("PHYSIONET_USERNAME", "alice")
    monkeypatch.setenv("PHYSIONET_PASSWORD", "wrong-pw")
    with pytest.raises(DownloadError) as e:
        run(src, tmp_path, base_url=server.url)
    assert "PHYSIONET_USERNAME/PHYSIONET_PASSWORD" in str(e.value) and "wrong-pw" not in str(e.value)


def test_physionet_netrc_credentials(server, tmp_path, monkeypatch):
    src = physionet(server)
    server.basic_auth = ("bob", "netrc-pw")
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login bob password netrc-pw\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    run(src, tmp_path / "d", base_url=server.url)
    assert (tmp_path / "d/proj/RECORDS").is_file()


def test_physionet_corrupt_file_fails_naming_it_and_keeps_it_out(server, tmp_path):
    src = physionet(server)
    server.script("/files/proj/1.0.0/RECORDS", "corrupt", "corrupt")
    with pytest.raises(DownloadFailed, match=r"proj: RECORDS: sha256 .* twice"):
        run(src, tmp_path, base_url=server.url)
    assert not (tmp_path / "proj/RECORDS").exists()
    assert (tmp_path / "proj/ptbxl_database.csv").is_file()  # the others finished
    assert not (tmp_path / "proj" / RECEIPT_NAME).exists()


def test_ptbxl_declares_physionet_download(server, tmp_path):
    from medshard.sources.registry import source_class

    ptbxl = source_class("ptb-xl")
    physionet(server, "ptb-xl", "1.0.3")
    run(ptbxl, tmp_path, base_url=server.url)
    assert (tmp_path / "ptb-xl" / "ptbxl_database.csv").is_file()


# --- consent, disk, mirror --------------------------------------------------------------------

def test_download_refused_without_consent_before_any_request(server, tmp_path):
    src = physionet(server)
    with pytest.raises(UserError, match="medshard consent proj"):
        download_source(src, tmp_path, base_url=server.url, progress=False)
    assert server.requests == []


def test_free_disk_check_refuses_huge_download(server, tmp_path):
    src = physionet(server)
    src.download = src.download.model_copy(update={"approx_bytes": 10**18})
    with pytest.raises(UserError, match="needs about .* free .*--data-root"):
        run(src, tmp_path, base_url=server.url)
    assert [r.path for r in server.requests] == ["/files/proj/1.0.0/SHA256SUMS.txt"]


def test_mirror_serves_a_data_root_and_is_verified(server, tmp_path):
    src = physionet(server)
    run(src, tmp_path / "upstream", base_url=server.url)
    with FakeServer() as mirror:
        for p in (tmp_path / "upstream").rglob("*"):
            if p.is_file():
                mirror.files["/m/" + p.relative_to(tmp_path / "upstream").as_posix()] = p.read_bytes()
        s = run(src, tmp_path / "local", mirror=mirror.url + "/m")
        assert s.via.startswith("mirror")
        for k, v in PN_FILES.items():
            assert (tmp_path / "local/proj" / k).read_bytes() == v
        assert receipt(tmp_path / "local", "proj").provider == "mirror"
        # a mirror serving a corrupted copy is caught by the receipt's sha256
        mirror.files["/m/proj/RECORDS"] = b"tampered"
        (tmp_path / "other").mkdir()
        with pytest.raises(DownloadFailed, match="RECORDS"):
            run(src, tmp_path / "other", mirror=mirror.url + "/m")


def test_mirror_with_login_in_url_refused(tmp_path):
    src = make_source("m1", DownloadSpec(provider="https", files=[
        {"path": "a", "url": "http://127.0.0.1:9/a"}]))
    with pytest.raises(UserError, match="~/.netrc") as e:
        run(src, tmp_path, mirror="https://user:hunter2@mirror.example/data")
    assert "hunter2" not in str(e.value)


def test_mirror_from_config_file(server, tmp_path):
    src = physionet(server)
    run(src, tmp_path / "upstream", base_url=server.url)
    with FakeServer() as mirror:
        for p in (tmp_path / "upstream").rglob("*"):
            if p.is_file():
                mirror.files["/x/" + p.relative_to(tmp_path / "upstream").as_posix()] = p.read_bytes()
        home = tmp_path / "medshard-home"
        (home / "mirrors.json").write_text(json.dumps({"proj": mirror.url + "/x"}))
        s = run(src, tmp_path / "local")
        assert s.via == f"mirror {mirror.url}/x"


def test_https_archive_with_traversal_refused_end_to_end(server, tmp_path):
    server.files["/evil.zip"] = zip_bytes({"fine.txt": b"ok", "../escaped.txt": b"x",
                                          "/abs.txt": b"y"})
    src = make_source("evil", DownloadSpec(provider="https", files=[
        {"path": "evil.zip", "url": server.url + "/evil.zip", "extract": True}]))
    with pytest.raises(DownloadFailed, match="refusing to unpack evil.zip"):
        run(src, tmp_path / "root")
    assert not (tmp_path / "root" / "escaped.txt").exists()
    assert not (tmp_path / "escaped.txt").exists() and not Path("/abs.txt").exists()
    assert not (tmp_path / "root/evil/fine.txt").exists()


# --- Kaggle -----------------------------------------------------------------------------------

def kaggle_auth(user: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()


def test_kaggle_dataset_with_token_file_redirect_and_unzip(server, tmp_path, monkeypatch):
    archive = zip_bytes({"images/a.png": b"\x89PNG-a", "labels.csv": b"id,label\na,1\n"})
    server.files["/storage/bucket/ds.zip"] = archive

    def download(seen, query):
        if seen.headers.get("Authorization") != kaggle_auth("kuser", "kkey"):
            return Reply(401)
        assert query.get("datasetVersionNumber") == ["3"]
        return Reply(302, headers={"Location": "/storage/bucket/ds.zip"})

    server.routes["/api/v1/datasets/download/owner/skin-set"] = download
    kdir = tmp_path / "kaggle-cfg"
    kdir.mkdir()
    (kdir / "kaggle.json").write_text(json.dumps({"username": "kuser", "key": "kkey"}))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(kdir))
    src = make_source("skin", DownloadSpec(provider="kaggle", dataset="owner/skin-set", version="3",
                                           files=[{"path": "skin-set.zip", "sha256": sha(archive)}]))
    run(src, tmp_path / "d", base_url=server.url + "/api/v1")
    dest = tmp_path / "d/skin"
    assert (dest / "images/a.png").read_bytes() == b"\x89PNG-a"
    assert not (dest / "skin-set.zip").exists()
    origins = {f.path: f.origin for f in receipt(tmp_path / "d", "skin").files}
    assert origins["labels.csv"].endswith("/datasets/download/owner/skin-set?datasetVersionNumber=3!labels.csv")
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()
                       and p.name != "kaggle.json")
    assert b"kkey" not in written


def test_kaggle_competition_rules_not_accepted(server, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "kuser")
    monkeypatch.setenv("KAGGLE_KEY", "kkey")
    server.routes["/api/v1/competitions/data/download-all/aptos"] = lambda s, q: Reply(403)
    src = make_source("aptos", DownloadSpec(provider="kaggle", competition="aptos"))
    with pytest.raises(DownloadError) as e:
        run(src, tmp_path, base_url=server.url + "/api/v1")
    assert "competition rules have not been accepted" in str(e.value)
    assert "https://www.kaggle.com/competitions/aptos/rules" in str(e.value)


def test_kaggle_bearer_token_from_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "KGAT_test")
    monkeypatch.setenv("KAGGLE_USERNAME", "ignored")
    monkeypatch.setenv("KAGGLE_KEY", "ignored")
    server.files["/api/v1/competitions/data/download-all/aptos"] = zip_bytes({"train.csv": b"x\n"})
    src = make_source("aptos2", DownloadSpec(provider="kaggle", competition="aptos"))
    run(src, tmp_path, base_url=server.url + "/api/v1")
    assert (tmp_path / "aptos2/train.csv").read_bytes() == b"x\n"
    seen = server.seen("/api/v1/competitions/data/download-all/aptos")[0]
    assert seen.headers["Authorization"] == "Bearer KGAT_test"


def test_kaggle_without_token_says_how_to_get_one(server, tmp_path):
    server.routes["/api/v1/datasets/download/o/d"] = lambda s, q: Reply(401)
    src = make_source("kd", DownloadSpec(provider="kaggle", dataset="o/d"))
    with pytest.raises(DownloadError, match="Kaggle needs an API token: create a token"):
        run(src, tmp_path, base_url=server.url + "/api/v1")


# --- Zenodo -----------------------------------------------------------------------------------

def test_zenodo_record_api_md5_and_selection(server, tmp_path):
    blobs = {"scans.tar.gz": tar_bytes({"scan1.mhd": b"ObjectType = Image\n"}),
             "labels.csv": b"id,y\n1,0\n", "readme.txt": b"hi"}
    for k, v in blobs.items():
        server.files[f"/api/records/8348419/files/{k}/content"] = v
    entries = [{"key": k, "size": len(v), "checksum": "md5:" + hashlib.md5(v).hexdigest(),
                "links": {"self": f"{server.url}/api/records/8348419/files/{k}/content"}}
               for k, v in blobs.items()]
    server.routes["/api/records/8348419"] = lambda s, q: json_reply({"id": 8348419, "files": entries})
    src = make_source("lndb", DownloadSpec(
        provider="zenodo", record="8348419", include=["*.csv", "*.tar.gz"],
        files=[{"path": "scans.tar.gz", "extract": True}]))
    run(src, tmp_path, base_url=server.url + "/api")
    assert (tmp_path / "lndb/labels.csv").read_bytes() == blobs["labels.csv"]
    assert (tmp_path / "lndb/scan1.mhd").is_file() and not (tmp_path / "lndb/readme.txt").exists()


def test_zenodo_wrong_md5_fails_naming_file(server, tmp_path):
    server.files["/f/labels.csv"] = b"id,y\n"
    entries = [{"key": "labels.csv", "size": 5, "checksum": "md5:" + "0" * 32,
                "links": {"self": server.url + "/f/labels.csv"}}]
    server.routes["/api/records/1"] = lambda s, q: json_reply({"files": entries})
    src = make_source("zz", DownloadSpec(provider="zenodo", record="1"))
    with pytest.raises(DownloadFailed, match="labels.csv: md5"):
        run(src, tmp_path, base_url=server.url + "/api")
    assert not (tmp_path / "zz/labels.csv").exists()


def test_zenodo_unsafe_file_key_refused(server, tmp_path):
    server.routes["/api/records/2"] = lambda s, q: json_reply(
        {"files": [{"key": "../../etc/x", "size": 1, "links": {"self": server.url + "/x"}}]})
    src = make_source("zk", DownloadSpec(provider="zenodo", record="2"))
    with pytest.raises(DownloadError, match="unsafe file path"):
        run(src, tmp_path, base_url=server.url + "/api")


# --- GitHub -----------------------------------------------------------------------------------

def test_github_release_assets_with_digest(server, tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "gh-token")
    asset = zip_bytes({"clips/a.avi": b"RIFF....AVI "})
    server.files["/repos/o/r/releases/assets/7"] = asset
    server.routes["/repos/o/r/releases/tags/v1"] = lambda s, q: json_reply({"assets": [
        {"name": "data.zip", "size": len(asset), "url": server.url + "/repos/o/r/releases/assets/7",
         "digest": "sha256:" + sha(asset)},
        {"name": "paper.pdf", "size": 3, "url": server.url + "/nope", "digest": None}]})
    src = make_source("gh", DownloadSpec(provider="github", repo="o/r", tag="v1", include=["*.zip"]))
    run(src, tmp_path, base_url=server.url)
    assert (tmp_path / "gh/clips/a.avi").read_bytes() == b"RIFF....AVI "
    got = server.seen("/repos/o/r/releases/assets/7")[0].headers
    assert got["Accept"] == "application/octet-stream" and got["Authorization"] == "Bearer gh-token"


def test_github_source_tarball_strips_top_folder(server, tmp_path):
    server.files["/repos/o/r/tarball/main"] = tar_bytes(
        {"o-r-abc123/README.md": b"# r\n", "o-r-abc123/data/x.csv": b"1\n"})
    src = make_source("ghr", DownloadSpec(provider="github", repo="o/r", ref="main"))
    run(src, tmp_path, base_url=server.url)
    assert (tmp_path / "ghr/data/x.csv").read_bytes() == b"1\n"
    assert {f.path for f in receipt(tmp_path, "ghr").files} == {"README.md", "data/x.csv"}


# --- TCIA -------------------------------------------------------------------------------------

def test_tcia_series_land_per_patient_study_series(server, tmp_path):
    from pydicom.data import get_testdata_file

    dcm = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    series = [{"SeriesInstanceUID": "1.2.3.1", "PatientID": "CMMD-001", "StudyInstanceUID": "1.2.9",
               "Modality": "MG"},
              {"SeriesInstanceUID": "1.2.3.2", "PatientID": "CMMD-002", "StudyInstanceUID": "1.2.8",
               "Modality": "MG"}]

    def get_series(seen, query):
        assert query["Collection"] == ["CMMD"] and query["Modality"] == ["MG"]
        return json_reply(series)

    def get_image(seen, query):
        uid = query["SeriesInstanceUID"][0]
        return Reply(200, zip_bytes({"1-1.dcm": dcm, "1-2.dcm": dcm + uid.encode()}))

    server.routes["/v1/getSeries"] = get_series
    server.routes["/v1/getImage"] = get_image
    src = make_source("cmmd", DownloadSpec(provider="tcia", collection="CMMD", modality="MG"))
    run(src, tmp_path, base_url=server.url + "/v1")
    d = tmp_path / "cmmd/CMMD-001/1.2.9/1.2.3.1"
    assert (d / "1-1.dcm").read_bytes() == dcm
    import pydicom

    assert pydicom.dcmread(d / "1-1.dcm").Modality == "CT"
    assert len(receipt(tmp_path, "cmmd").files) == 4
    assert not list((tmp_path / "cmmd").rglob("*.zip"))


# --- manual -----------------------------------------------------------------------------------

def test_chexpert_manual_steps_printed_then_placed_zip_verified(tmp_path):
    from medshard.sources.registry import source_class

    chexpert = source_class("chexpert")
    record_acceptance(chexpert.info)
    printed: list[str] = []
    with pytest.raises(UserError) as e:
        download_source(chexpert, tmp_path, progress=False, echo=printed.append)
    text = "\n".join(printed)
    assert chexpert.download.manual.url in text
    for step in chexpert.download.manual.steps:
        assert step in text
    assert "CheXpert-v1.0-small/train.csv is missing" in str(e.value)
    assert "medshard download chexpert --data-root" in str(e.value)

    (tmp_path / "chexpert").mkdir(exist_ok=True)
    (tmp_path / "chexpert/CheXpert-v1.0-small.zip").write_bytes(zip_bytes({
        "CheXpert-v1.0-small/train.csv": b"Path,Sex\n", "CheXpert-v1.0-small/valid.csv": b"Path\n",
        "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg": b"\xff\xd8jpeg"}))
    s = download_source(chexpert, tmp_path, progress=False, echo=printed.append)
    assert "small layout" in s.via
    paths = {f.path for f in receipt(tmp_path, "chexpert").files}
    assert "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg" in paths
    assert "CheXpert-v1.0-small.zip" in paths  # the user's own file is kept and recorded


def test_tcia_restricted_collection_logs_in_for_a_bearer_token(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TCIA_USERNAME", "tuser")
    monkeypatch.setenv("TCIA_PASSWORD", "tpass")
    monkeypatch.setenv("MEDSHARD_TCIA_TOKEN_URL", server.url + "/oauth/token")

    def token(seen, form):
        ok = form.get("username") == ["tuser"] and form.get("password") == ["tpass"]
        return json_reply({"access_token": "tok-1"}) if ok else Reply(401)

    def guarded(reply):
        def route(seen, query):
            return reply(query) if seen.headers.get("Authorization") == "Bearer tok-1" else Reply(403)
        return route

    server.routes["/oauth/token"] = token
    server.routes["/v1/getSeries"] = guarded(lambda q: json_reply(
        [{"SeriesInstanceUID": "9.9", "PatientID": "P1", "StudyInstanceUID": "8.8"}]))
    server.routes["/v1/getImage"] = guarded(lambda q: Reply(200, zip_bytes({"1.dcm": b"DICM"})))
    src = make_source("restricted", DownloadSpec(provider="tcia", collection="R"))
    run(src, tmp_path, base_url=server.url + "/v1")
    assert (tmp_path / "restricted/P1/8.8/9.9/1.dcm").read_bytes() == b"DICM"
    monkeypatch.setenv("TCIA_PASSWORD", "bad")
    with pytest.raises(DownloadError, match="TCIA refused the login .*TCIA_USERNAME/TCIA_PASSWORD"):
        run(src, tmp_path / "again", base_url=server.url + "/v1")


def test_manual_steps_without_layouts_are_checked_by_the_source_root(tmp_path):
    from medshard.schemas.download import DownloadSpec, ManualSteps
    from medshard.sources.base import MissingRawData

    spec = DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://example.org/request", steps=["Ask for access.", "rsync it."]))
    base = make_source("handmade", spec)

    class Handmade(base):
        def check_root(self, root: Path) -> None:
            if not (root / "edf" / "train").is_dir():
                raise MissingRawData(f"handmade: {root}/edf/train not found")

    record_acceptance(Handmade.info)
    printed: list[str] = []
    with pytest.raises(UserError, match=r"edf/train not found; follow the steps above") as e:
        download_source(Handmade, tmp_path, progress=False, echo=printed.append)
    assert "1. Ask for access.\n  2. rsync it." in printed[0]
    assert "medshard download handmade --data-root" in str(e.value)
    (tmp_path / "handmade/edf/train").mkdir(parents=True)
    (tmp_path / "handmade/edf/train/a.edf").write_bytes(b"0       ")
    s = download_source(Handmade, tmp_path, progress=False, echo=printed.append)
    assert s.files == 1 and "verified" in s.line()
    assert receipt(tmp_path, "handmade").files[0].path == "edf/train/a.edf"
    assert download_source(Handmade, tmp_path, progress=False, echo=printed.append).up_to_date


def test_source_without_any_download_declaration_says_where_files_go(tmp_path):
    src = make_source("nothing", None)
    with pytest.raises(UserError, match="declares no download yet; place its files under"):
        download_source(src, tmp_path, progress=False)
