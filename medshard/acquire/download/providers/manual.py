"""Sources no program may fetch (data use agreements, request forms, Azure links by e-mail).

`medshard download` prints the steps exactly as the source declares them, then
verifies what the user placed under `DATA_ROOT/<slug>/`: any one complete
layout (declared files present, with their sizes/checksums where declared). An
archive the user placed instead is unpacked safely first and kept.
"""

from __future__ import annotations

from pathlib import Path

from medshard.acquire.download.archive import extract_archive
from medshard.acquire.download.engine import hash_file
from medshard.schemas.download import DownloadSpec, FileSpec, ManualSteps
from medshard.schemas.models import SourceInfo


def instructions(info: SourceInfo, steps: ManualSteps, dest: Path) -> str:
    """The exact steps, numbered, and where the files must end up."""
    lines = [f"{info.name} cannot be downloaded by a program. Do this once:", f"  start at {steps.url}"]
    lines += [f"  {n}. {s}" for n, s in enumerate(steps.steps, start=1)]
    if not steps.layouts:
        lines.append(f"Then place the files under {dest}/ in the layout `medshard info "
                     f"{info.name}` shows.")
    else:
        lines.append(f"Then place the files under {dest}/ so that one of these exists:")
    for name, files in steps.layouts.items():
        shown = ", ".join(f.path for f in files[:4]) + (", ..." if len(files) > 4 else "")
        lines.append(f"  {name}: {shown}")
    if steps.archives:
        lines.append("  (or leave the downloaded archive there: "
                     + ", ".join(a.path for a in steps.archives) + "; medshard unpacks it)")
    return "\n".join(lines)


def _file_problem(dest: Path, f: FileSpec) -> str | None:
    p = dest.joinpath(*f.path.split("/"))
    if not p.is_file():
        return f"{f.path} is missing"
    if f.size is None and f.sha256 is None and f.md5 is None:
        return None
    size, sha, md5 = hash_file(p) if (f.sha256 or f.md5) else (p.stat().st_size, None, None)
    if f.size is not None and size != f.size:
        return f"{f.path} has {size} bytes, expected {f.size} (incomplete download?)"
    if (f.sha256 and sha != f.sha256) or (f.md5 and md5 != f.md5):
        return f"{f.path} does not match its published checksum (corrupt download?)"
    return None


def complete_layout(steps: ManualSteps, dest: Path) -> tuple[str | None, list[str]]:
    """The name of the first complete layout, or None and what the closest one lacks."""
    best: list[str] | None = None
    for name, files in steps.layouts.items():
        problems = [p for f in files if (p := _file_problem(dest, f))]
        if not problems:
            return name, []
        if best is None or len(problems) < len(best):
            best = problems
    return None, best or []


def unpack_placed_archives(spec: DownloadSpec, dest: Path) -> list[str]:
    """Safely unpack archives the user placed; returns their paths (they are kept)."""
    assert spec.manual is not None
    done = []
    for a in spec.manual.archives:
        p = dest.joinpath(*a.path.split("/"))
        if p.is_file():
            extract_archive(p, dest, a.strip_components)
            done.append(a.path)
    return done
