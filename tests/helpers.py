"""Small helpers shared by tests."""

from __future__ import annotations

from pathlib import Path


def output_files(out: Path) -> dict[str, bytes]:
    """Every published file of a build (shards, index, manifest, quarantine) -> bytes."""
    files = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if p.is_file() and not rel.startswith(".medshard/"):
            files[rel] = p.read_bytes()
    return files
