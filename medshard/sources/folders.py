"""Listing datasets whose labels are folder names (`<class>/<image>`): sorted, cheap, confined.

Reads directory entries only (no file contents), never follows a directory symlink, and
returns paths relative to the source root, so a listing is the same on every machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FolderFile:
    """One file found in a class folder: its path relative to the root and its size."""

    rel: str
    name: str
    size: int


def first_existing_dir(root: Path, candidates: Iterable[str]) -> str | None:
    """The first of `candidates` (relative, '/'-separated; '' is the root) that is a real
    directory under `root`, not a symlink."""
    for rel in candidates:
        path = root / rel if rel else root
        if path.is_dir() and not path.is_symlink():
            return rel
    return None


def files_in(root: Path, rel_dir: str, suffixes: tuple[str, ...]) -> Iterator[FolderFile]:
    """Files of `root/rel_dir` whose lower-cased name ends with one of `suffixes`, by name.

    Symlinked files are listed (loading them goes through `Source.path`, which refuses
    links that leave the root); symlinked directories are not descended into.
    """
    folder = root / rel_dir if rel_dir else root
    if not folder.is_dir() or folder.is_symlink():
        return
    if not isinstance(folder, Path):  # a root on object storage (medshard.formats.remote)
        for child in sorted(folder.iterdir(), key=lambda c: c.name):
            if child.name.startswith(".") or not child.name.lower().endswith(suffixes):
                continue
            if child.is_file():
                rel = f"{rel_dir}/{child.name}" if rel_dir else child.name
                yield FolderFile(rel=rel, name=child.name, size=int(child.stat().st_size))
        return
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        if e.name.startswith(".") or not e.name.lower().endswith(suffixes):
            continue
        if e.is_dir(follow_symlinks=False):
            continue
        st = e.stat(follow_symlinks=False)
        rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
        yield FolderFile(rel=rel, name=e.name, size=int(st.st_size))
