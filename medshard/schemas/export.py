"""JSON Schema export of the models other tools rely on."""

from __future__ import annotations

import json
from pathlib import Path

from medshard.schemas.download import ConsentEntry, Receipt
from medshard.schemas.models import Manifest, RawRecord, SampleMeta, SourceInfo
from medshard.schemas.vocabulary import VocabularyFile

EXPORTED = {
    "manifest": Manifest,
    "sample": SampleMeta,
    "source-info": SourceInfo,
    "raw-record": RawRecord,
    "vocabulary": VocabularyFile,
    "download-receipt": Receipt,
    "consent-entry": ConsentEntry,
}


def json_schemas() -> dict[str, dict]:
    return {name: model.model_json_schema() for name, model in EXPORTED.items()}


def export_json_schemas(out: Path) -> list[Path]:
    """Write `<name>.schema.json` for each exported model; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, schema in json_schemas().items():
        path = out / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        paths.append(path)
    return paths
