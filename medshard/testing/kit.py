"""The source conformance kit: every generic promise a source makes, checked on its fixture.

Usage (pytest, also from a third-party package):

    kit = build_fixtures(["my-source"], tmp_path)      # writes fixtures, builds twice
    for check in CHECKS:
        run_check(kit, "my-source", check)             # raises ConformanceError

`build_fixtures` writes each source's fixture under one data root and builds them all in
one build (both formats), then again into a second folder for the byte-identity check,
with the logs captured. Each check reads that build, or calls the source directly with
file reads traced. A failure is a `ConformanceError` whose message starts with
"<source>: <check>:" and says what was found.

`start_build_fixtures(slugs, workdir)` runs the same in a child process and returns at
once; its `result()` is the `KitBuild`. A test session starts it when collection ends and
runs its other tests meanwhile (tests/conftest.py).

`check_adversarial(slug, workdir)` builds a mutated copy of the fixture of its own
(`medshard.testing.adversarial`): a payload symlinked out of the root, and the cases the
fixture declares (`..` paths, malformed index rows, long file names).
"""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import logging
import os
import sys
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from medshard.schemas.models import RawRecord, SampleMeta
from medshard.schemas.vocabulary import load_vocabulary
from medshard.sources.base import MissingRawData, Source
from medshard.sources.registry import available_sources, source_class
from medshard.testing.fixture import Fixture, load_fixture

LISTING_BYTES_PER_FILE = 64 << 10  # a header read while listing is fine; a payload is not


class ConformanceError(AssertionError):
    """A source broke one of the kit's checks; the message names the source and the check."""


@dataclass
class KitBuild:
    """One build over several sources' fixtures (and its repeat), as the checks read it."""

    data_root: Path
    out: Path
    out_again: Path
    fixtures: dict[str, Fixture]
    log_text: str
    index: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    traces: dict[str, Any] = field(default_factory=dict)  # slug -> SourceTrace, made once
    phi_hits: dict[str, str] | None = None  # slug -> first leak found; one scan for all


def fixture_of(slug: str) -> Fixture:
    """The `Fixture` a registered source declares; ConformanceError when it has none."""
    try:
        cls = source_class(slug)
    except RuntimeError as exc:
        raise ConformanceError(f"{slug}: registered: {exc}") from None
    if not cls.fixture:
        raise ConformanceError(f"{slug}: fixture: the source declares no fixture "
                               "(set `fixture = \"package.module:FIXTURE\"` on the class)")
    return load_fixture(cls.fixture)


def write_fixtures(slugs: list[str], data_root: Path) -> dict[str, Fixture]:
    """Write each source's fixture at `data_root/<slug>` (skipped when already there)."""
    fixtures = {}
    for slug in slugs:
        fixtures[slug] = fixture_of(slug)
        target = data_root / slug
        if not target.exists():
            fixtures[slug].write(target)
    return fixtures


class _LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def captured_logs() -> Iterator[_LogCapture]:
    """Every log line at DEBUG and above, with tracebacks, while the block runs."""
    handler = _LogCapture()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


# Checks that need no build: `build_fixtures(..., build=False)` is enough for them.
SOURCE_CHECKS = ("registered", "label_space", "options", "missing_root",
                 "listing_reads_no_payload", "unique_ids", "reads_inside_root",
                 "labels_in_label_space")


def build_fixtures(slugs: list[str], workdir: Path, build: bool = True,
                   repeat: bool = True) -> KitBuild:
    """Write the fixtures and build them twice (both formats); the logs are kept.

    The sources' listings are checked first (registration, unique ids), so that a source
    the build itself would reject fails here with the check's name. `build=False` writes
    the fixtures only, for the checks in SOURCE_CHECKS; `repeat=False` builds once (every
    check but rebuild_identical).
    """
    data_root = workdir / "raw"
    fixtures = write_fixtures(slugs, data_root)
    kit = KitBuild(data_root, workdir / "build", workdir / "build-again", fixtures, "")
    for slug in slugs:
        check_registered(kit, slug)
        check_unique_ids(kit, slug)
    if not build:
        return kit
    kit.log_text = _build_twice(kit, repeat)
    _read_build(kit)
    return kit


def _build_twice(kit: KitBuild, repeat: bool) -> str:
    """Build every fixture into `kit.out` (and `kit.out_again`); everything the builds said."""
    from medshard.pipeline.build import BuildConfig, run_build

    options = {s: dict(f.options) for s, f in kit.fixtures.items() if f.options}
    printed, errors = io.StringIO(), io.StringIO()
    with (captured_logs() as logs, warnings.catch_warnings(record=True) as caught,
          contextlib.redirect_stdout(printed), contextlib.redirect_stderr(errors)):
        warnings.simplefilter("always")
        def build(out: Path) -> None:
            run_build(BuildConfig(
                sources=list(kit.fixtures), data_root=kit.data_root, out=out,
                formats=("webdataset", "parquet"), shard_size=4 << 20,
                source_options=options, progress=False,
            ))

        # the repeat runs at the same time as the first build, in a second thread: the
        # waits of one (fsync, zlib, decoders, which release the GIL) overlap the other's
        # work, and two builds scheduled differently are a stronger test of determinism
        outs = (kit.out, kit.out_again) if repeat else (kit.out,)
        with ThreadPoolExecutor(max_workers=2) as pool:
            for done in [pool.submit(build, out) for out in outs]:
                done.result()
    # everything the build said, however it said it: log lines, warnings, prints
    return "\n".join([*logs.lines, *(str(w.message) for w in caught),
                      printed.getvalue(), errors.getvalue()])


def _read_build(kit: KitBuild) -> None:
    kit.index = pq.read_table(kit.out / "index.parquet").to_pylist()
    kit.quarantine = [json.loads(line) for line in
                      (kit.out / "quarantine.jsonl").read_text().splitlines() if line]
    kit.manifest = json.loads((kit.out / "manifest.json").read_text())


class PendingKit:
    """`build_fixtures` running in a child process (`start_build_fixtures`).

    The child writes the fixtures, traces each source's reads, builds twice and leaves
    the logs and traces beside the build; `result()` waits and returns the `KitBuild`,
    or raises the child's `ConformanceError` as its own.
    """

    LOG, TRACES, ERROR, OUTPUT = "kit-log.txt", "kit-traces.pickle", "kit-error.txt", "kit-child.txt"

    def __init__(self, slugs: list[str], workdir: Path, repeat: bool = True) -> None:
        import subprocess

        self.slugs, self.workdir = list(slugs), workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self._output = open(workdir / self.OUTPUT, "wb")  # noqa: SIM115 - closed in result()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "medshard.testing._kit_child", str(workdir),
             "1" if repeat else "0", *self.slugs],
            stdin=subprocess.DEVNULL, stdout=self._output, stderr=subprocess.STDOUT)
        self._kit: KitBuild | None = None

    def result(self) -> KitBuild:
        if self._kit is not None:
            return self._kit
        code = self._proc.wait()
        self._output.close()
        error = self.workdir / self.ERROR
        if error.exists():
            raise ConformanceError(error.read_text())
        if code != 0:
            tail = (self.workdir / self.OUTPUT).read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the kit's build process exited with {code}; its last "
                               f"output:\n{tail}")
        import pickle

        kit = KitBuild(self.workdir / "raw", self.workdir / "build",
                       self.workdir / "build-again", {s: fixture_of(s) for s in self.slugs},
                       (self.workdir / self.LOG).read_text())
        kit.traces = pickle.loads((self.workdir / self.TRACES).read_bytes())
        _read_build(kit)
        self._kit = kit
        return kit

    def cancel(self) -> None:
        """Stop the child if it still runs (a session that ends early)."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._output.close()


def start_build_fixtures(slugs: list[str], workdir: Path, repeat: bool = True) -> PendingKit:
    """`build_fixtures(slugs, workdir)` in a child process, started now: a test session
    runs its other tests while the kit builds on another core."""
    return PendingKit(slugs, workdir, repeat)


# --- tracing what a source reads --------------------------------------------------------


@dataclass
class ReadTrace:
    """Bytes read per resolved path while the trace was on."""

    bytes_read: dict[Path, int] = field(default_factory=lambda: defaultdict(int))


class _CountingFile(io.RawIOBase):
    """Delegates to a real file object and counts the bytes handed out."""

    def __init__(self, f: Any, path: Path, trace: ReadTrace) -> None:
        self._f, self._path, self._trace = f, path, trace

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def _count(self, data: Any) -> Any:
        if data:
            self._trace.bytes_read[self._path] += len(data)
        return data

    def read(self, *a: Any) -> Any:
        return self._count(self._f.read(*a))

    def read1(self, *a: Any) -> Any:
        return self._count(self._f.read1(*a))

    def readline(self, *a: Any) -> Any:
        return self._count(self._f.readline(*a))

    def readlines(self, *a: Any) -> list:
        lines = self._f.readlines(*a)
        self._count("".join(lines) if lines and isinstance(lines[0], str) else b"".join(lines))
        return lines

    def readinto(self, b: Any) -> int:
        n = self._f.readinto(b)
        if n:
            self._trace.bytes_read[self._path] += n
        return n

    def __iter__(self) -> Iterator[Any]:
        for line in self._f:
            yield self._count(line)

    def __next__(self) -> Any:
        return self._count(next(self._f))

    def __enter__(self) -> _CountingFile:
        self._f.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._f.__exit__(*exc)

    def close(self) -> None:
        self._f.close()

    @property
    def closed(self) -> bool:  # type: ignore[override]
        return self._f.closed

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._f.seekable()

    def seek(self, *a: Any) -> int:
        return self._f.seek(*a)

    def tell(self) -> int:
        return self._f.tell()

    def fileno(self) -> int:
        return self._f.fileno()


@contextmanager
def traced_reads() -> Iterator[ReadTrace]:
    """Trace every file opened for reading through `open` while the block runs."""
    trace = ReadTrace()
    real_open = builtins.open

    def tracing_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        f = real_open(file, mode, *args, **kwargs)
        if isinstance(file, (str, os.PathLike)) and not any(c in mode for c in "wax+"):
            path = Path(os.fspath(file)).resolve()
            trace.bytes_read[path] += 0
            return _CountingFile(f, path, trace)
        return f

    builtins.open = tracing_open
    io.open = tracing_open
    try:
        yield trace
    finally:
        builtins.open = real_open
        io.open = real_open


def _installed_roots() -> list[Path]:
    roots = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    roots |= {Path(p).resolve() for p in sys.path if p and Path(p).is_dir() and "site-packages" in p}
    roots.add(Path(__file__).resolve().parents[1])  # medshard's own package data
    if os.environ.get("MEDSHARD_HOME"):
        roots.add(Path(os.environ["MEDSHARD_HOME"]).resolve())
    return sorted(roots)


def _outside(path: Path, root: Path, allowed: list[Path]) -> bool:
    return not path.is_relative_to(root) and not any(path.is_relative_to(a) for a in allowed)


# --- the checks ---------------------------------------------------------------------------


def _fail(slug: str, check: str, detail: str) -> None:
    raise ConformanceError(f"{slug}: {check}: {detail}")


def check_registered(kit: KitBuild, slug: str) -> None:
    if slug not in available_sources():
        _fail(slug, "registered", "not in `medshard sources`; register it (entry point "
              "`medshard.sources`)")
    try:
        name = source_class(slug).info.name
    except RuntimeError as exc:  # the registry refuses a class whose name differs
        _fail(slug, "registered", str(exc))
    if name != slug:
        _fail(slug, "registered", f"registered as {slug!r} but info.name is {name!r}")


def check_label_space(kit: KitBuild, slug: str) -> None:
    cls = source_class(slug)
    vocab = load_vocabulary()
    mapping = vocab.data.sources.get(slug, cls.vocabulary_map)
    if mapping is None:
        _fail(slug, "label_space", "no vocabulary map: add one to vocabulary.json or set "
              "`vocabulary_map` on the source")
    if set(mapping) != set(cls.info.label_space):
        extra, missing = set(mapping) - set(cls.info.label_space), set(cls.info.label_space) - set(mapping)
        _fail(slug, "label_space", f"info.label_space and its vocabulary map differ "
              f"(only in map: {sorted(extra)}; only in label_space: {sorted(missing)})")
    unknown = {t for ts in mapping.values() for t in ts} - set(vocab.concept_ids)
    if unknown:
        _fail(slug, "label_space", f"maps to unknown concepts {sorted(unknown)}")


def _one_line_value_error(slug: str, check: str, make: Callable[[], Any], what: str) -> None:
    try:
        make()
    except ValueError as exc:
        text = str(exc)
        if "\n" in text.strip() or not text.strip():
            _fail(slug, check, f"{what} is refused, but not in one line: {text!r}")
        return
    _fail(slug, check, f"{what} is accepted")


def check_options(kit: KitBuild, slug: str) -> None:
    cls = source_class(slug)
    _one_line_value_error(slug, "options", lambda: cls(no_such_option=1), "an unknown option")
    for name, bad in cls.invalid_option_values().items():
        _one_line_value_error(slug, "options", lambda n=name, b=bad: cls(**{n: b}),
                              f"option {name}={bad!r}")


def check_missing_root(kit: KitBuild, slug: str) -> None:
    src = source_class(slug)(**kit.fixtures[slug].options)
    empty = kit.out.parent / "empty-root" / slug
    empty.mkdir(parents=True, exist_ok=True)
    for root in (empty, kit.out.parent / "no-such-root" / slug):
        try:
            src.check_root(root)
            list(src.list_records(root))
        except MissingRawData as exc:
            if "\n" in str(exc).strip() or not str(exc).strip():
                _fail(slug, "missing_root", f"the message is not one line: {exc!r}")
            continue
        _fail(slug, "missing_root", f"an {'empty' if root.exists() else 'absent'} root "
              "raises no MissingRawData")


@dataclass
class SourceTrace:
    """One traced pass of a source over its fixture: listing, then loading every record."""

    root: Path
    records: list
    list_reads: ReadTrace
    load_reads: ReadTrace
    classes: dict[str, set[str]]  # record id -> classes its samples carry


def _traced(kit: KitBuild, slug: str) -> SourceTrace:
    """The source's traced pass, made once per build and shared by the checks that read it."""
    cached = kit.traces.get(slug)
    if cached is not None:
        return cached
    src = source_class(slug)(**kit.fixtures[slug].options)
    root = (kit.data_root / slug).resolve()
    with traced_reads() as list_reads:
        records = list(src.list_records(root))
    classes: dict[str, set[str]] = {}
    with traced_reads() as load_reads:
        for rec in records:
            try:
                for sample in src.load(rec, root):
                    classes.setdefault(rec.record_id, set()).update(sample.classes)
            except Exception:  # noqa: BLE001 - broken records are the quarantine check's
                continue
    kit.traces[slug] = SourceTrace(root, records, list_reads, load_reads, classes)
    return kit.traces[slug]


def check_listing_reads_no_payload(kit: KitBuild, slug: str) -> None:
    t = _traced(kit, slug)
    payload = {(t.root / f).resolve() for r in t.records if isinstance(r, RawRecord)
               for f in r.files}
    heavy = {p: n for p, n in t.list_reads.bytes_read.items()
             if p in payload and n > LISTING_BYTES_PER_FILE}
    if heavy:
        path, n = next(iter(sorted(heavy.items())))
        _fail(slug, "listing_reads_no_payload", f"list_records read {n} bytes of "
              f"{path.relative_to(t.root)} (more than a header: payloads are for load)")


def check_unique_ids(kit: KitBuild, slug: str) -> None:
    seen: set[str] = set()
    for r in _traced(kit, slug).records:
        if not isinstance(r, RawRecord):  # a bad listing entry (BadRow) has no id
            continue
        if r.record_id in seen:
            _fail(slug, "unique_ids", f"record id {r.record_id!r} listed twice")
        seen.add(r.record_id)


def check_reads_inside_root(kit: KitBuild, slug: str) -> None:
    t = _traced(kit, slug)
    allowed = _installed_roots()
    for rec in t.records:  # what a source passes to readers that open files themselves
        for f in (rec.files if isinstance(rec, RawRecord) else ()):
            if not (t.root / f).resolve().is_relative_to(t.root):
                _fail(slug, "reads_inside_root", f"record {rec.record_id} names {f}, which "
                      f"resolves outside the source root {t.root}")
    for path in [*t.list_reads.bytes_read, *t.load_reads.bytes_read]:
        if _outside(path, t.root, allowed):
            _fail(slug, "reads_inside_root", f"read {path}, outside the source root {t.root}")


def check_labels_in_label_space(kit: KitBuild, slug: str) -> None:
    space = set(source_class(slug).info.label_space)
    for record_id, classes in _traced(kit, slug).classes.items():
        outside = classes - space
        if outside:
            _fail(slug, "labels_in_label_space", f"record {record_id} has class(es) "
                  f"{sorted(outside)} outside info.label_space")


def _source_rows(kit: KitBuild, slug: str) -> list[dict[str, Any]]:
    return [r for r in kit.index if r["source"] == slug]


def check_split_counts(kit: KitBuild, slug: str) -> None:
    counts = kit.manifest["sources"][slug]["counts"]
    got = {split: c["samples"] for split, c in counts.items() if c["samples"]}
    want = {split: n for split, n in kit.fixtures[slug].samples.items() if n}
    if got != want:
        _fail(slug, "split_counts", f"samples per split {got}, the fixture declares {want}")


def check_quarantine(kit: KitBuild, slug: str) -> None:
    got = {_quarantine_id(q): q["stage"] for q in kit.quarantine if q["source"] == slug}
    want = dict(kit.fixtures[slug].quarantined)
    if got != want:
        detail = {_quarantine_id(q): f"{q['stage']}: {q['message']}" for q in kit.quarantine
                  if q["source"] == slug and want.get(_quarantine_id(q)) != q["stage"]}
        _fail(slug, "quarantine", f"quarantined {got}, the fixture declares {want} "
              f"(unexpected: {detail})")


def check_filters(kit: KitBuild, slug: str) -> None:
    got: dict[str, int] = defaultdict(int)
    for c in kit.manifest["sources"][slug]["counts"].values():
        for reason, n in c["filtered_reasons"].items():
            got[reason] += n
    if dict(got) != dict(kit.fixtures[slug].filtered):
        _fail(slug, "filters", f"filtered {dict(got)}, the fixture declares "
              f"{dict(kit.fixtures[slug].filtered)}")


def check_subject_in_one_split(kit: KitBuild, slug: str) -> None:
    splits: dict[str, set[str]] = defaultdict(set)
    for r in _source_rows(kit, slug):
        splits[r["subject"]].add(r["split"])
    for subject, where in splits.items():
        if len(where) > 1:
            _fail(slug, "subject_in_one_split", f"subject {subject[:12]}... is in "
                  f"{sorted(where)}")


def _tar_samples(path: Path) -> dict[str, dict[str, bytes]]:
    import tarfile

    out: dict[str, dict[str, bytes]] = defaultdict(dict)
    with tarfile.open(path) as tf:
        for m in tf.getmembers():
            key, _, ext = m.name.rpartition("/")[2].partition(".")
            out[key][ext] = tf.extractfile(m).read()  # type: ignore[union-attr]
    return dict(out)


def _parquet_samples(path: Path) -> dict[str, dict[str, bytes]]:
    from medshard.loaders.decode import _member_of_column

    table = pq.read_table(path)
    base = {"key", "source", "modality", "split", "subject", "labels", "json"}
    out = {}
    for row in table.to_pylist():
        members = {"json": row["json"].encode()}
        members.update({_member_of_column(c): v for c, v in row.items()
                        if c not in base and v is not None})
        out[row["key"]] = members
    return out


def _shards(kit: KitBuild, slug: str, fmt: str) -> list[Path]:
    return [kit.out / s["path"] for s in kit.manifest["shards"]
            if s["source"] == slug and s["format"] == fmt]


def check_formats_agree(kit: KitBuild, slug: str) -> None:
    tar: dict[str, dict[str, bytes]] = {}
    for p in _shards(kit, slug, "webdataset"):
        tar.update(_tar_samples(p))
    par: dict[str, dict[str, bytes]] = {}
    for p in _shards(kit, slug, "parquet"):
        par.update(_parquet_samples(p))
    if set(tar) != set(par):
        _fail(slug, "formats_agree", f"tar and Parquet hold different keys "
              f"({sorted(set(tar) ^ set(par))[:3]})")
    for key, members in tar.items():
        if members != par[key]:
            diff = sorted(k for k in set(members) | set(par[key])
                          if members.get(k) != par[key].get(k))
            _fail(slug, "formats_agree", f"sample {key}: members {diff} differ")


def _first_json_difference(a: Any, b: Any, where: str = "") -> str | None:
    """The path of the first value that differs between two JSON documents, with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{where}.{key}: only in the {'second' if key in b else 'first'}"
            found = _first_json_difference(a[key], b[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            found = _first_json_difference(x, y, f"{where}[{i}]")
            if found:
                return found
        return f"{where}: {len(a)} against {len(b)} items" if len(a) != len(b) else None
    return None if a == b else f"{where}: {json.dumps(a)[:120]} against {json.dumps(b)[:120]}"


def check_rebuild_identical(kit: KitBuild, slug: str) -> None:
    paths = [s["path"] for s in kit.manifest["shards"] if s["source"] == slug]
    for rel in [*paths, "manifest.json", "index.parquet", "quarantine.jsonl"]:
        a, b = kit.out / rel, kit.out_again / rel
        if not b.exists() or a.read_bytes() != b.read_bytes():
            what = ""
            if rel == "manifest.json" and b.exists():
                first, second = json.loads(a.read_bytes()), json.loads(b.read_bytes())
                what = f" (at {_first_json_difference(first, second) or 'key order'})"
            _fail(slug, "rebuild_identical", f"{rel} differs between two builds{what}")


def _output_texts(kit: KitBuild) -> Iterator[tuple[str, bytes]]:
    for path in sorted(kit.out.rglob("*")):
        if path.is_file():
            yield str(path.relative_to(kit.out)), path.read_bytes()
            if path.suffix == ".parquet":  # pages may be compressed: read the values too
                table = pq.read_table(path)
                for name, col in zip(table.column_names, table.columns, strict=True):
                    # a column's values as one text, NUL between values (no marker holds a
                    # NUL, so none is found across two values): one search per column
                    yield f"{path.name}:{name}", b"\0".join(
                        v.encode() if isinstance(v, str) else v if isinstance(v, bytes)
                        else json.dumps(v, default=str).encode()
                        for v in col.to_pylist() if v is not None)
    yield "logs", kit.log_text.encode()


def _phi_hits(kit: KitBuild) -> dict[str, str]:
    """Every source's planted markers against every output, in one pass over the outputs."""
    if kit.phi_hits is None:
        wanted = {slug: [m.lower().encode() for m in f.phi_markers]
                  for slug, f in kit.fixtures.items() if f.phi_markers}
        unique = sorted({m for markers in wanted.values() for m in markers})  # sources share
        hits: dict[str, str] = {}
        for where, data in _output_texts(kit):
            lowered = data.lower()  # "ROE" and "Roe" are the same leak
            present = {m for m in unique if m in lowered}
            if not present:
                continue
            for slug, markers in wanted.items():
                found = next((m for m in markers if m in present), None)
                if slug not in hits and found is not None:
                    hits[slug] = f"planted marker {found.decode()!r} found in {where}"
        kit.phi_hits = hits
    return kit.phi_hits


def check_no_phi(kit: KitBuild, slug: str) -> None:
    leak = _phi_hits(kit).get(slug)
    if leak:
        _fail(slug, "no_phi", leak)


def check_sample_schema(kit: KitBuild, slug: str) -> None:
    for p in _shards(kit, slug, "webdataset"):
        for key, members in _tar_samples(p).items():
            try:
                SampleMeta.model_validate_json(members["json"])
            except Exception as exc:  # noqa: BLE001 - report any validation failure
                _fail(slug, "sample_schema", f"{key}.json: {str(exc).splitlines()[0]}")


def check_loader_reads_all(kit: KitBuild, slug: str) -> None:
    from medshard.loaders import ShardDataset

    want = sorted(r["key"] for r in _source_rows(kit, slug))
    if not want:
        return
    for fmt in ("webdataset", "parquet"):
        ds = ShardDataset(str(kit.out), split=None, sources=[slug], format=fmt, shuffle=False)
        got = sorted(s["key"] for s in ds)
        if got != want:
            _fail(slug, "loader_reads_all", f"{fmt}: the loader read {len(got)} of "
                  f"{len(want)} samples")


_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string",
               list: "array", dict: "object"}


def _json_shape(value: Any, path: str, types: dict[str, set[str]],
                keys: dict[str, set[frozenset[str]]]) -> None:
    """Record the JSON type at every path (nulls aside) and the key set of every object."""
    if value is None:
        return
    types.setdefault(path, set()).add(_JSON_TYPES[type(value)])
    if isinstance(value, dict):
        keys.setdefault(path, set()).add(frozenset(value))
        for k, v in value.items():
            _json_shape(v, f"{path}.{k}", types, keys)
    elif isinstance(value, list):
        for v in value:
            _json_shape(v, f"{path}[]", types, keys)


def check_stable_json(kit: KitBuild, slug: str) -> None:
    """Every field of `<key>.json` has one type, and every object one key set, across the
    source's samples (a value may be null). Readers that infer a schema from the first
    samples (Hugging Face `datasets`) refuse a field that is a float in one sample and a
    list in another, and a map keyed by data (file paths) gives each sample its own type."""
    types: dict[str, set[str]] = {}
    keys: dict[str, set[frozenset[str]]] = {}
    for p in _shards(kit, slug, "webdataset"):
        for members in _tar_samples(p).values():
            _json_shape(json.loads(members["json"]), "", types, keys)
    for path, seen in sorted(types.items()):
        if len(seen) > 1:
            _fail(slug, "stable_json", f"{path.lstrip('.')} is {' in one sample and '.join(sorted(seen))} in another")
    for path, sets in sorted(keys.items()):
        # `payloads` is keyed by role: a sample carries a subset of the source's declared
        # `payload_members` (BUSI: one mask per lesion), each role's descriptor stays checked
        if len(sets) > 1 and path != ".payloads":
            union, common = frozenset().union(*sets), frozenset.intersection(*sets)
            _fail(slug, "stable_json", f"{path.lstrip('.') or 'the sample'} has keys "
                  f"{sorted(union - common)[:4]} in some samples only (give every sample every "
                  "key, null when absent; a map keyed by data becomes a list of objects)")


def hf_webdataset_features(tars: list[str]) -> Any:
    """`datasets.Features` for a source's tars, typed from every sample's JSON.

    Hugging Face's webdataset builder types the JSON from the first five samples of the
    first tar; an optional field that is null in all five and set later fails there. The
    types are one per field across a source (check `stable_json`), so the union of all
    samples gives them; this is the snippet the README gives users, as a function.
    """
    import tarfile

    import datasets
    import pyarrow as pa
    from datasets.features.features import cast_to_python_objects
    from datasets.packaged_modules.webdataset.webdataset import WebDataset

    rows: list[dict[str, Any]] = []
    one: dict[str, Any] = {}  # one decoded value per payload member, as the builder decodes it
    for path in tars:
        with tarfile.open(path) as tf:
            for m in tf:
                ext = m.name.partition(".")[2]
                if ext == "json":
                    rows.append({"json": json.loads(tf.extractfile(m).read())})  # type: ignore[union-attr]
                elif m.isfile() and ext not in one:
                    data = tf.extractfile(m).read()  # type: ignore[union-attr]
                    last = ext.rsplit(".", 1)[-1]
                    one[ext] = WebDataset.DECODERS[last](data) if last in WebDataset.DECODERS else data
    tables = [pa.Table.from_pylist([r]) for r in rows]
    tables.append(pa.Table.from_pylist(cast_to_python_objects([one], only_1d_for_numpy=True)))
    features = datasets.Features.from_arrow_schema(
        pa.concat_tables(tables, promote_options="default").schema)
    for ext in one:
        last = ext.rsplit(".", 1)[-1]
        for exts, feature in ((WebDataset.IMAGE_EXTENSIONS, datasets.Image),
                              (WebDataset.VIDEO_EXTENSIONS, datasets.Video),
                              (WebDataset.AUDIO_EXTENSIONS, datasets.Audio)):
            if last in exts:
                features[ext] = feature()
    features["__key__"] = datasets.Value("string")
    features["__url__"] = datasets.Value("string")
    return features


def check_hf_datasets_reads(kit: KitBuild, slug: str) -> None:
    """Hugging Face `datasets` reads the source's tars (its webdataset builder, with the
    features of `hf_webdataset_features`) and its Parquet shards (its parquet builder, as
    is), every sample with its payload members."""
    import datasets

    want = {r["key"] for r in _source_rows(kit, slug)}
    if not want:
        return
    cache = str(kit.out.parent / "hf-cache")
    datasets.disable_progress_bars()
    for fmt, builder in (("webdataset", "webdataset"), ("parquet", "parquet")):
        files = [str(p) for p in _shards(kit, slug, fmt)]
        features = hf_webdataset_features(files) if fmt == "webdataset" else None
        try:
            ds = datasets.load_dataset(builder, data_files=files, split="train",
                                       cache_dir=cache, features=features)
        except Exception as exc:  # noqa: BLE001 - report why the real client refused
            cause = exc.__cause__ or exc
            _fail(slug, "hf_datasets_reads", f"{builder} builder: {type(cause).__name__}: "
                  f"{str(cause).splitlines()[0][:300]}")
        key_col = "__key__" if fmt == "webdataset" else "key"
        rows = ds.to_list()
        got = {r[key_col] for r in rows}
        if got != want:
            _fail(slug, "hf_datasets_reads", f"{builder} builder read {len(got)} of "
                  f"{len(want)} samples")
        for r in rows:
            meta = json.loads(r["json"]) if isinstance(r["json"], str) else r["json"]
            for m in meta["members"]:
                col = m if fmt == "webdataset" else m.replace(".", "_")
                if r.get(col) is None:
                    _fail(slug, "hf_datasets_reads", f"{builder} builder: sample "
                          f"{r[key_col]} has no {col}")


CHECKS: dict[str, Callable[[KitBuild, str], None]] = {
    "registered": check_registered,
    "label_space": check_label_space,
    "options": check_options,
    "missing_root": check_missing_root,
    "listing_reads_no_payload": check_listing_reads_no_payload,
    "unique_ids": check_unique_ids,
    "reads_inside_root": check_reads_inside_root,
    "labels_in_label_space": check_labels_in_label_space,
    "split_counts": check_split_counts,
    "quarantine": check_quarantine,
    "filters": check_filters,
    "subject_in_one_split": check_subject_in_one_split,
    "formats_agree": check_formats_agree,
    "rebuild_identical": check_rebuild_identical,
    "no_phi": check_no_phi,
    "sample_schema": check_sample_schema,
    "loader_reads_all": check_loader_reads_all,
    "stable_json": check_stable_json,
    "hf_datasets_reads": check_hf_datasets_reads,
}


def _pick_readable_record(src: Source, root: Path, skip: set[str]) -> Any:
    """The first listed record (not in `skip`) that loads to at least one sample.

    A record whose last file every listed record shares (one container for the whole
    dataset: BrainGB's PPMI.mat) is no candidate: replacing that file is missing raw
    data for the whole source, refused at listing, not one broken record."""
    from medshard.schemas import BadRow

    records = [r for r in src.list_records(root) if not isinstance(r, BadRow)]
    shared = set.intersection(*(set(r.files) for r in records)) if len(records) > 1 else set()
    for rec in records:
        if rec.record_id in skip or (rec.files and rec.files[-1] in shared):
            continue
        if not all((root / f).is_file() and not (root / f).is_symlink() for f in rec.files):
            continue
        try:
            if next(iter(src.load(rec, root)), None) is not None:
                return rec
        except Exception:  # noqa: BLE001 - a broken record is not a candidate
            continue
    return None


def _quarantine_id(q: dict[str, Any]) -> str:
    """A quarantine line's record id, or "file:line" for an index row that made no record
    (as fixtures and `medshard.testing.adversarial.Expect` declare it)."""
    if q.get("record_id"):
        return str(q["record_id"])
    return f"{q['files'][0]}:{q.get('line')}"


def _outputs_hold(out: Path, marker: bytes) -> str | None:
    """The first output (file, or Parquet file:column) holding `marker`, if any."""
    for path in sorted(out.rglob("*")):
        if not path.is_file() or path.name.endswith(".lock"):
            continue
        if marker in path.read_bytes():
            return str(path.relative_to(out))
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            for name, col in zip(table.column_names, table.columns, strict=True):
                for v in col.to_pylist():
                    if isinstance(v, bytes) and marker in v or isinstance(v, str) and \
                            marker.decode() in v:
                        return f"{path.relative_to(out)}:{name}"
    return None


def check_adversarial(slug: str, workdir: Path) -> None:
    """Apply every adversarial mutation that applies to `slug`'s fixture, build, and check.

    Generic: the last file of a readable record is replaced by a symlink to a marked copy
    outside the root; it must be quarantined naming the symlink. Source-specific: the
    fixture's `adversarial` cases and their `Expect`. Always: the build finishes, no
    output holds the outside marker, no quarantine line carries the root's absolute path,
    every sample key fits a tar header.
    """
    from medshard.pipeline.build import BuildConfig, run_build
    from medshard.pipeline.shard_task import MAX_KEY_CHARS
    from medshard.testing.adversarial import OUTSIDE_MARKER, Expect, symlink_out

    fixture = fixture_of(slug)
    data_root = workdir / "raw"
    root = data_root / slug
    outside = data_root / f"outside-{slug}"
    fixture.write(root)
    expect = Expect()
    for mutate in fixture.adversarial.values():
        expect = expect.merged(mutate(root, outside))
    src = source_class(slug)(**fixture.options)
    skip = set(expect.quarantined) | set(expect.long_keys) | set(fixture.quarantined)
    victim = _pick_readable_record(src, root, skip)
    if victim is not None:
        symlink_out(root, victim.files[-1], outside)
        expect = expect.merged(Expect({victim.record_id: "*"}, {victim.record_id: "symlink"}))
    out = workdir / "build"
    try:
        result = run_build(BuildConfig(
            sources=[slug], data_root=data_root, out=out, formats=("webdataset", "parquet"),
            shard_size=4 << 20, source_options={slug: dict(fixture.options)}, progress=False))
    except Exception as exc:  # noqa: BLE001 - the point: nothing may stop the build
        _fail(slug, "adversarial", f"the build of the mutated fixture failed: "
              f"{type(exc).__name__}: {str(exc)[:300]}")
    text = (out / "quarantine.jsonl").read_text()
    quarantine = {_quarantine_id(q): q for q in map(json.loads, text.splitlines()) if q}
    for rid, stage in expect.quarantined.items():
        q = quarantine.get(rid)
        if q is None:
            _fail(slug, "adversarial", f"{rid} was not quarantined (quarantined: "
                  f"{sorted(quarantine)})")
        if stage != "*" and q["stage"] != stage:
            _fail(slug, "adversarial", f"{rid} quarantined at {q['stage']}, expected {stage}: "
                  f"{q['message']}")
        fragment = expect.message_has.get(rid)
        if fragment and fragment not in q["message"]:
            _fail(slug, "adversarial", f"{rid}: quarantine message {q['message']!r} does not "
                  f"say {fragment!r}")
    for base in {str(root.resolve()), str(root.absolute())}:
        if base in text:
            _fail(slug, "adversarial", "a quarantine line carries the absolute raw path")
    where = _outputs_hold(out, OUTSIDE_MARKER)
    if where:
        _fail(slug, "adversarial", f"bytes of a file outside the root reached {where}")
    rows = pq.read_table(out / "index.parquet").to_pylist()
    too_long = [r["key"] for r in rows if len(r["key"]) > MAX_KEY_CHARS]
    if too_long:
        _fail(slug, "adversarial", f"key {too_long[0]!r} is longer than {MAX_KEY_CHARS}")
    full_keys = {r["full_key"] or "" for r in rows}
    for rid in expect.long_keys:
        if not any(f"_{rid}" in k for k in full_keys):
            _fail(slug, "adversarial", f"record {rid[:30]}... with a long name was not written "
                  "with its full name in full_key")
    if sum(c.quarantined for c in result.manifest.sources[slug].counts.values()) < len(
            expect.quarantined):
        _fail(slug, "adversarial", "the manifest counts fewer quarantined records than the "
              "quarantine holds")


def run_check(kit: KitBuild, slug: str, check: str) -> None:
    """Run one named check; raises ConformanceError naming the source and the check."""
    CHECKS[check](kit, slug)


def check_sources(slugs: list[str], workdir: Path) -> None:
    """Build the sources' fixtures and run every check on each, then the adversarial build
    of each (for third-party packages)."""
    kit = build_fixtures(slugs, workdir)
    for slug in slugs:
        for check in CHECKS:
            run_check(kit, slug, check)
        check_adversarial(slug, workdir / "adversarial" / slug)
