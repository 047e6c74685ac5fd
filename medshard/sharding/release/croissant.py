"""croissant.json: Croissant 1.1 metadata of a release, with the RAI extension.

Every file of the release is a FileObject with its sha256; each source's shards of one
format are also a FileSet; the index columns are a RecordSet read from `index.parquet`.
The RAI fields are written from what each source declares (`SourceInfo`) and what the
build did (splits, filters, pseudonyms).
"""

from __future__ import annotations

from typing import Any

import pyarrow.parquet as pq

from medshard.schemas import Manifest, SourceInfo

CROISSANT_1_1 = "http://mlcommons.org/croissant/1.1"
RAI_1_0 = "http://mlcommons.org/croissant/RAI/1.0"

_CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileObject": "cr:fileObject",
    "fileProperty": "cr:fileProperty",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "arrayShape": "cr:arrayShape",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}

_MIME = {
    ".tar": "application/x-tar",
    ".parquet": "application/x-parquet",
    ".json": "application/json",
    ".jsonl": "application/jsonlines",
    ".md": "text/markdown",
    ".png": "image/png",
}

_INDEX_TYPES = {
    "string": "sc:Text",
    "large_string": "sc:Text",
    "double": "sc:Float",
    "float": "sc:Float",
    "bool": "sc:Boolean",
    "int64": "sc:Integer",
}


def _mime(path: str) -> str:
    for ext, mime in _MIME.items():
        if path.endswith(ext):
            return mime
    return "application/octet-stream"


def _file_id(path: str) -> str:
    return path


def _index_fields(index_path) -> list[dict[str, Any]]:
    schema = pq.read_schema(index_path)
    fields = []
    for f in schema:
        is_list = str(f.type).startswith("list<")
        base = str(f.type.value_type) if is_list else str(f.type)
        field: dict[str, Any] = {
            "@type": "cr:Field",
            "@id": f"index/{f.name}",
            "name": f.name,
            "dataType": _INDEX_TYPES.get(base, "sc:Text"),
            "source": {"fileObject": {"@id": "index.parquet"}, "extract": {"column": f.name}},
        }
        if is_list:
            field["isArray"] = True
            field["arrayShape"] = "-1"
        fields.append(field)
    return fields


def _rai(manifest: Manifest, infos: dict[str, SourceInfo],
         barriers: dict[str, str | None]) -> dict[str, str]:
    per = []
    for slug, info in sorted(infos.items()):
        counts = manifest.sources[slug].counts
        listed = sum(c.listed for c in counts.values())
        written = sum(c.written for c in counts.values())
        per.append(f"{slug}: {info.title}, upstream version {info.version}, {info.modality}; "
                   f"{listed} records listed, {written} written; homepage {info.homepage}")
    access = "; ".join(
        f"{s}: {i.access} access under {i.license.name}"
        + (f" (not redistributable: {barriers[s]})" if barriers[s] else "")
        for s, i in sorted(infos.items()))
    limitations = []
    for slug in sorted(infos):
        for split, c in sorted(manifest.sources[slug].counts.items()):
            for reason, n in sorted(c.filtered_reasons.items()):
                limitations.append(f"{slug}/{split}: {n} filtered ({reason})")
            if c.quarantined:
                limitations.append(f"{slug}/{split}: {c.quarantined} quarantined records")
    return {
        "rai:dataCollection": (
            "Collected by the upstream projects and built by medshard "
            f"{manifest.medshard_version} from the sources' own files: " + " | ".join(per)),
        "rai:dataCollectionType": "Secondary use of public clinical datasets",
        "rai:dataPreprocessingProtocol": (
            "Per modality standardization recorded in the build config "
            f"(hash {manifest.config_hash}); every sample's provenance lists its raw files "
            "with sha256."),
        "rai:dataAnnotationProtocol": " | ".join(
            f"{s}: source labels kept verbatim and mapped to unified vocabulary "
            f"{manifest.vocabulary_version} ({', '.join(i.tasks)})" for s, i in sorted(infos.items())),
        "rai:personalSensitiveInformation": (
            "Clinical recordings of patients (health data). Subject identifiers are replaced "
            f"by keyed pseudonyms (key {manifest.pseudonym_key_id}); metadata passes an "
            "allow-list; no names, dates of birth or record dates are kept. Access terms: "
            + access),
        "rai:dataBiases": (
            "Each source reflects the population, devices and referral patterns of the "
            "institutions that collected it; label definitions differ between sources and "
            "are merged only where their meaning is the same (see each source's mapping "
            "notes in the card)."),
        "rai:dataLimitations": (
            "Records that failed to load are quarantined and filtered records are counted: "
            + ("; ".join(limitations) if limitations else "none in this release")),
        "rai:dataUseCases": " | ".join(
            f"{s}: {', '.join(i.tasks)}; " + ("non-commercial use only"
                                              if i.license.non_commercial else "any use allowed by "
                                              + (i.license.spdx or i.license.name))
            for s, i in sorted(infos.items())),
        "rai:dataSocialImpact": (
            "Intended for research on clinical machine learning; not a medical device and not "
            "for diagnosis."),
        "rai:dataReleaseMaintenancePlan": (
            "Versioned releases with semantic versions: PATCH re-serializes the same data, "
            "MINOR only adds samples, MAJOR changes, removes or moves samples between splits. "
            "`medshard diff` lists the changes between releases and `medshard verify` checks "
            "a copy against SHA256SUMS."),
    }


def croissant_document(
    manifest: Manifest,
    infos: dict[str, SourceInfo],
    barriers: dict[str, str | None],
    files: dict[str, tuple[int, str]],
    index_path,
    name: str,
    url: str | None,
) -> dict[str, Any]:
    """The Croissant JSON-LD of a release. `files`: release path -> (bytes, sha256)."""
    rel = manifest.release
    assert rel is not None
    distribution: list[dict[str, Any]] = []
    for path, (size, sha) in sorted(files.items()):
        distribution.append({
            "@type": "cr:FileObject",
            "@id": _file_id(path),
            "name": path,
            "contentUrl": path,
            "contentSize": f"{size} B",
            "encodingFormat": _mime(path),
            "sha256": sha,
        })
    for slug in sorted(manifest.sources):
        for fmt, ext in (("webdataset", "tar"), ("parquet", "parquet")):
            if any(sh.source == slug and sh.format == fmt for sh in manifest.shards):
                distribution.append({
                    "@type": "cr:FileSet",
                    "@id": f"{slug}-{fmt}",
                    "name": f"{slug}-{fmt}",
                    "description": f"{slug} shards in {fmt} format, all splits",
                    "encodingFormat": _mime(f".{ext}"),
                    "includes": f"{fmt}/{slug}/*/{slug}-*.{ext}",
                })
    licenses = sorted({i.license.url or i.license.name for i in infos.values()})
    doc: dict[str, Any] = {
        "@context": _CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": [CROISSANT_1_1, RAI_1_0],
        "name": name,
        "description": (
            f"medshard release {rel.version} of {len(infos)} clinical datasets "
            f"({', '.join(sorted(infos))}), standardized and sharded; labels in the unified "
            f"vocabulary {manifest.vocabulary_version}."),
        "version": rel.version,
        "license": licenses,
        "citeAs": "\n\n".join(i.citation for _, i in sorted(infos.items())),
        "keywords": sorted({i.modality for i in infos.values()} | {"medical", "clinical"}),
        "isLiveDataset": False,
        "creator": [{"@type": "sc:Organization", "name": i.title, "url": i.homepage}
                    for _, i in sorted(infos.items())],
        "isBasedOn": [i.homepage for _, i in sorted(infos.items())],
        "distribution": distribution,
        "recordSet": [{
            "@type": "cr:RecordSet",
            "@id": "index",
            "name": "index",
            "description": "One record per sample: key, source, split, labels, shard paths, "
                           "metadata columns (no payload).",
            "key": {"@id": "index/key"},
            "field": _index_fields(index_path),
        }],
        **_rai(manifest, infos, barriers),
    }
    if url:
        doc["url"] = url
    if rel.date:
        doc["datePublished"] = rel.date
    return doc
