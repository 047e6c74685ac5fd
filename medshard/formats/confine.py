"""Paths a reader opens stay inside the source's root: resolved, symlinks checked.

Every file a source or a format reader opens goes through `resolve_in_root` first. The
path is taken relative to the root; `..` components, absolute paths and symlinks that
resolve outside the root are refused with `OutsideRoot` (a `RecordError`, so the record
is quarantined with the reason). A symlink whose target stays inside the root is refused
too unless `follow_symlinks_within_root` is set (`medshard build --follow-symlinks`): a
raw tree is normally plain files, and a link in it is worth a look. The root itself may
be a symlink. The returned path is the resolved one, so C-level readers (pyedflib,
nibabel, wfdb) that bypass Python's `open` get a path already checked.

A root on object storage (`medshard.formats.remote.RemotePath`) gets the same lexical
checks (object stores have no symlinks); the path returned is the file's local copy in
the current staging area (`medshard.formats.remote.stage`).
"""

from __future__ import annotations

import os
from pathlib import Path

from medshard.formats.remote import RemotePath, stage, staged_relative
from medshard.schemas.sample import RecordError


class OutsideRoot(RecordError):
    """A path that leaves the source's root (`..`, absolute, or through a symlink)."""


def relative_in_root(root: Path, path: str | os.PathLike[str]) -> str:
    """`path` (relative to `root`, or absolute under it) as a normalized relative POSIX path.

    Lexical only: raises OutsideRoot when `..` or an absolute path leaves the root.
    """
    p = Path(path)
    if p.is_absolute():
        rel = os.path.relpath(os.path.normpath(p), os.path.normpath(root.absolute()))
        if rel.startswith(".."):
            rel = os.path.relpath(os.path.normpath(p), os.path.normpath(root.resolve()))
    else:
        rel = os.path.normpath(p)
    rel = Path(rel).as_posix()
    if rel == ".." or rel.startswith("../") or Path(rel).is_absolute():
        raise OutsideRoot(f"path {Path(path).as_posix()!r} leads outside the source root; "
                          "raw files must lie inside it")
    return rel


def resolve_in_root(
    root: Path, path: str | os.PathLike[str], *, follow_symlinks_within_root: bool = False
) -> Path:
    """The resolved path of `path` under `root`; OutsideRoot when it leaves the root.

    Missing files are allowed (the caller's open reports them); every existing
    component is checked for symlinks.
    """
    if isinstance(root, RemotePath):
        return stage(root, _remote_relative(path))
    rel = relative_in_root(root, path)
    real_root = root.resolve()
    current = real_root
    for part in Path(rel).parts:
        current = current / part
        if current.is_symlink():
            target = current.resolve()
            if not target.is_relative_to(real_root):
                raise OutsideRoot(f"{rel} is a symlink to a file outside the source root; "
                                  "copy the file into the raw tree instead")
            if not follow_symlinks_within_root:
                raise OutsideRoot(f"{rel} is a symlink; pass --follow-symlinks to read links "
                                  "that stay inside the source root")
            current = target
    final = current.resolve()
    if not final.is_relative_to(real_root):
        raise OutsideRoot(f"{rel} resolves outside the source root")
    return final


def _remote_relative(path: str | os.PathLike[str]) -> str:
    """`path` under a remote root as a normalized relative POSIX path; a staged copy's
    local path (a reader opening a sibling file) maps back to its name under the root."""
    staged = staged_relative(path)
    if staged is not None:
        return staged
    raw = Path(path).as_posix()
    rel = os.path.normpath(raw).replace(os.sep, "/")
    if raw.startswith("/") or rel == ".." or rel.startswith("../") or rel == ".":
        raise OutsideRoot(f"path {raw!r} leads outside the source root; "
                          "raw files must lie inside it")
    return rel
