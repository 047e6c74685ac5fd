"""The `medshard` command.

Every user error prints one line (`medshard: error: ...` saying what to do) and exits 2;
`validate` exits 1 when a shard does not match its manifest.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

from medshard import __version__
from medshard.acquire.download.commands import add_commands as add_acquire_commands
from medshard.errors import UserError
from medshard.schemas.standards import DEFAULT_PNG_LEVEL

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
          "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


def parse_size(text: str) -> int:
    """`512MB` -> 512_000_000, `1GiB` -> 2**30, `4096` -> 4096."""
    m = _SIZE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; write e.g. 512MB or 1GiB")
    unit = (m.group(2) or "").lower().rstrip("b")
    if unit not in _UNITS:
        raise argparse.ArgumentTypeError(f"{text!r} has an unknown unit; use KB, MB, GB or KiB..")
    return int(float(m.group(1)) * _UNITS[unit])


def _csv(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, no usage dump
        sys.stderr.write(f"medshard: error: {message} (see `{self.prog} --help`)\n")
        sys.exit(2)


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


# --- sources / info / vocab -------------------------------------------------------------


def cmd_sources(args: argparse.Namespace) -> int:
    from medshard.sources import available_sources, source_class

    infos = [source_class(s).info for s in available_sources()]
    if args.json:
        _print_json([i.model_dump(mode="json") for i in infos])
        return 0
    if args.markdown:
        from medshard.sources.catalog import demo_markdown, sources_markdown

        print(sources_markdown())
        print()
        print(demo_markdown())
        return 0
    print(f"{'SOURCE':<18} {'MODALITY':<12} {'ACCESS':<13} {'LICENSE':<20} TITLE")
    for i in infos:
        lic = i.license.spdx or "see `info`"
        print(f"{i.name:<18} {i.modality:<12} {i.access:<13} {lic:<20} {i.title}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from medshard.sources import UnknownSource, source_class

    try:
        cls = source_class(args.source)
    except UnknownSource as exc:
        raise UserError(str(exc)) from None
    info = cls.info
    if args.json:
        _print_json({**info.model_dump(mode="json"), "options": cls.default_options()})
        return 0
    lic = info.license
    flags = [f for f, on in (("non-commercial", lic.non_commercial),
                             ("share-alike", lic.share_alike),
                             ("credentialed", lic.credentialed)) if on]
    print(f"{info.title} ({info.name}, upstream {info.version})")
    print(f"  modality:   {info.modality}; tasks: {', '.join(info.tasks)}")
    print(f"  license:    {lic.name}{' [' + ', '.join(flags) + ']' if flags else ''}")
    print(f"  terms:      {lic.url or '-'} (version {lic.terms_version})")
    print(f"  access:     {info.access}")
    print(f"  homepage:   {info.homepage}")
    print(f"  classes:    {', '.join(info.label_space) or '-'}")
    print(f"  split:      {info.split_policy}")
    print(f"  split unit: {info.split_unit}")
    pub = info.published_counts
    if pub is not None:
        counts = ", ".join(f"{s} {getattr(pub, s):,}" for s in ("train", "val", "test")
                           if getattr(pub, s) is not None) or "none"
        print(f"  published:  {counts} {pub.unit} ({pub.reference})")
    from medshard.schemas.standards import SIGNAL_STANDARDS, describe_standard

    if info.modality in SIGNAL_STANDARDS:
        print(f"  standard:   {describe_standard(SIGNAL_STANDARDS[info.modality])} "
              f"(change with --standard {info.modality}.FIELD=VALUE)")
    print("  options:" + ("" if cls.option_docs() else "    none"))
    for name, kind, default, doc in cls.option_docs():
        print(f"    {name} ({kind}, default {default!r}): {doc}")
    print(f"  citation:   {info.citation}")
    layout = raw_layout(cls)
    if layout:
        print("  raw layout:")
        for line in layout:
            print(f"    {line}")
    print("  download:   " + ("not declared; place the files as the raw layout says"
                              if cls.download is None else ""))
    for line in cls.download.describe() if cls.download is not None else []:
        print(f"    {line}")
    return 0


def raw_layout(cls) -> list[str]:
    """The "Raw layout" paragraph of a source module's docstring, as its lines."""
    import sys as _sys

    doc = (_sys.modules[cls.__module__].__doc__ or "").splitlines()
    start = next((i for i, line in enumerate(doc) if line.startswith("Raw layout")), None)
    if start is None:
        return []
    out = [doc[start].rstrip()]
    for line in doc[start + 1:]:
        if line and not line.startswith(" "):  # the next paragraph
            break
        out.append(line.rstrip())
    while out and not out[-1]:
        out.pop()
    return out


def cmd_vocab(args: argparse.Namespace) -> int:
    from medshard.schemas.vocabulary import load_vocabulary

    vocab = load_vocabulary()
    if args.json:
        _print_json(vocab.data.model_dump(mode="json"))
        return 0
    print(f"unified vocabulary {vocab.version}: {len(vocab)} concepts, "
          f"{len(vocab.data.sources)} sources")
    for c in vocab.data.concepts:
        syn = f"  ({', '.join(c.synonyms)})" if c.synonyms else ""
        print(f"  {c.id:<40} {c.name}{syn}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from medshard.schemas.export import export_json_schemas

    written = export_json_schemas(Path(args.out))
    for p in written:
        print(p)
    return 0


# --- build ------------------------------------------------------------------------------


def _parse_pairs(values: list[str], flag: str) -> list[tuple[str, str]]:
    pairs = []
    for v in values:
        if "=" not in v:
            raise UserError(f"{flag} takes NAME=VALUE, got {v!r}")
        k, _, val = v.partition("=")
        pairs.append((k.strip(), val.strip()))
    return pairs


def _option_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _location(text: str) -> Path | str:
    """A folder as a Path, or an fsspec URL (s3://, gs://, az://, ...) kept as text."""
    from medshard.formats.remote import is_remote_url, local_path_of

    return text.rstrip("/") if is_remote_url(text) else local_path_of(text)


def build_config_from_args(args: argparse.Namespace, beam_args: list[str]):
    from medshard.pipeline.build import BuildConfig
    from medshard.schemas.standards import parse_standards

    raw = {k: _location(v) for k, v in _parse_pairs(args.raw, "--raw")}
    options: dict[str, dict[str, Any]] = {}
    for k, v in _parse_pairs(args.option, "--option"):
        slug, _, name = k.partition(".")
        if not name:
            raise UserError(f"--option takes SOURCE.NAME=VALUE, got {k!r}")
        options.setdefault(slug, {})[name] = _option_value(v)
    formats = ("webdataset", "parquet") if args.format == "both" else (args.format,)
    try:
        standards = parse_standards(args.standard)
    except ValueError as exc:
        raise UserError(f"{exc}; see `medshard info SOURCE` for the defaults") from None
    if args.data_root is None and set(args.sources) - set(raw):
        raise UserError("give --data-root DIR (raw files at DIR/<source>/) or --raw SOURCE=PATH")
    return BuildConfig(
        sources=list(dict.fromkeys(args.sources)),
        data_root=_location(args.data_root or "."),
        out=_location(args.out),
        raw=raw,
        formats=formats,
        workers=args.workers,
        shard_size=args.shard_size,
        parquet_payload_compression=args.parquet_compression,
        png_level=args.png_level,
        source_options=options,
        signal_specs=standards,
        beam_args=beam_args,
        progress=not args.no_progress,
        license_allow=args.license_allow,
        access_allow=args.access,
        follow_symlinks=getattr(args, "follow_symlinks", False),
        verify_raw=getattr(args, "verify_raw", False),
        overwrite=args.overwrite,
        dedupe=getattr(args, "dedupe", False),
        **({"split_fractions": _split_fractions(args.split_fractions)}
           if getattr(args, "split_fractions", None) else {}),
    )


def _split_fractions(text: str) -> dict[str, float]:
    """`--split-fractions TRAIN,VAL,TEST` (e.g. 0.8,0,0.2) as the build's split fractions."""
    parts = text.split(",")
    try:
        values = [float(v) for v in parts]
    except ValueError:
        values = []
    if len(values) != 3 or any(not 0.0 <= v <= 1.0 for v in values) or abs(sum(values) - 1) > 1e-9:
        raise UserError(f"--split-fractions takes three fractions TRAIN,VAL,TEST that sum to 1 "
                        f"(e.g. 0.8,0.1,0.1 or CLIMB's 0.8,0,0.2), got {text!r}")
    return dict(zip(("train", "val", "test"), values, strict=True))


def print_build_summary(result) -> None:
    m = result.manifest
    total_q = 0
    for slug, s in m.sources.items():
        for split, c in sorted(s.counts.items()):
            total_q += c.quarantined
            reasons = ", ".join(f"{r}: {n}" for r, n in c.filtered_reasons.items())
            print(f"{slug:<16} {split:<5} listed {c.listed:>7}  written {c.written:>7}  "
                  f"samples {c.samples:>8}  quarantined {c.quarantined:>5}  "
                  f"filtered {c.filtered:>5}{' (' + reasons + ')' if reasons else ''}")
    size = sum(sh.bytes for sh in m.shards)
    print(f"{len(m.shards)} shards, {size / 1e6:.1f} MB in {result.out} "
          f"({result.shards_written} written, {result.shards_skipped} already built)")
    changed = getattr(result, "raw_changed", {})
    if changed:
        files = sorted({f for fs in changed.values() for f in fs})
        print(f"{len(changed)} shards rebuilt because {len(files)} raw files changed since the "
              f"last build (e.g. {files[0]})")
    if total_q:
        print(f"{total_q} records quarantined: reasons in {result.out / 'quarantine.jsonl'}")
    for line in duplicate_lines(m.duplicates, limit=5):
        print(line)


def duplicate_lines(report, limit: int = 20) -> list[str]:
    """The duplicate report of a build, for people: totals, places linked, first groups."""
    if report is None or not report.groups:
        return [] if report is None else [
            f"no exact duplicates among {report.payloads_hashed} payloads"]
    out = [f"exact duplicates: {report.groups} payload contents held by more than one sample "
           f"({report.extra_copies} extra copies; {report.across_sources} across sources, "
           f"{report.across_splits} across splits, {report.within_one_split} within one split)"
           + (f"; --dedupe removed {report.dropped} samples" if report.dedupe else
              "; build with --dedupe to keep only the first copy")]
    for link in report.links:
        where = link.a if link.a == link.b else f"{link.a} <-> {link.b}"
        out.append(f"  {where}: {link.groups} groups")
    for g in report.duplicate_groups[:limit]:
        copies = ", ".join(f"{c.source}/{c.split}/{c.key}" for c in g.copies)
        out.append(f"  sha256 {g.sha256[:12]}: {copies}"
                   + (f" (dropped {', '.join(g.dropped)})" if g.dropped else ""))
    if len(report.duplicate_groups) > limit:
        out.append(f"  ... {len(report.duplicate_groups) - limit} more groups in manifest.json "
                   "(`medshard inspect --json`)")
    return out


def cmd_build(args: argparse.Namespace) -> int:
    from medshard.pipeline.build import run_build

    config = build_config_from_args(args, args.beam_args)
    result = run_build(config)
    print_build_summary(result)
    return 0


# --- inspect / validate -----------------------------------------------------------------


def _manifest(out: str):
    from pydantic import ValidationError

    from medshard.schemas import Manifest
    from medshard.sharding.storage import Store

    store = Store(_location(out))
    if not store.is_file("manifest.json"):
        raise UserError(f"no manifest.json in {out}: give the --out directory of a build")
    try:
        return Manifest.model_validate_json(store.read_bytes("manifest.json"))
    except ValidationError as exc:
        raise UserError(f"{store.url('manifest.json')} is not a valid medshard manifest "
                        f"({exc.error_count()} errors)") from None


def published_comparison(slug: str, written: dict[str, int]) -> list[str]:
    """Lines putting a build's per-split record counts beside the published ones."""
    from medshard.sources import UnknownSource, source_class

    try:
        pub = source_class(slug).info.published_counts
    except UnknownSource:
        return []
    if pub is None:
        return []
    out = [f"    published counts, in {pub.unit} ({pub.reference}):"]
    for split, published, n in pub.compare(written):
        what = f"{split}{'+val' if split == 'train' and pub.val is None else ''}"
        if published is None:
            out.append(f"      {what:<9} not published; this build {n:,}")
            continue
        flag = "same" if n == published else f"DIFFERS by {n - published:+,}"
        out.append(f"      {what:<9} {published:>9,}; this build {n:>9,}: {flag}")
    return out


def cmd_inspect(args: argparse.Namespace) -> int:
    m = _manifest(args.out)
    if args.json:
        _print_json(m.model_dump(mode="json"))
        return 0
    print(f"medshard build {args.out}: schema {m.schema_version}, medshard {m.medshard_version}, "
          f"vocabulary {m.vocabulary_version}, config {m.config_hash[:12]}")
    for slug, s in m.sources.items():
        print(f"  {slug} (upstream {s.version}, {s.modality}, {s.license}, {s.access})")
        if s.split_unit and s.split_unit != "patient":
            print(f"    splits keep each {s.split_unit} whole")
        for rel, digest in s.label_files.items():
            print(f"    labels from {rel} (sha256 {digest[:12]})")
        for split, c in sorted(s.counts.items()):
            print(f"    {split:<5} listed {c.listed}  written {c.written}  samples {c.samples}  "
                  f"quarantined {c.quarantined}  filtered {c.filtered}")
            if len(c.original_rates) > 1:
                rates = ", ".join(f"{n} from {hz} Hz" for hz, n in c.original_rates.items())
                print(f"          original sampling rates: {rates}")
        for line in published_comparison(slug, {sp: c.written for sp, c in s.counts.items()}):
            print(line)
    by: dict[tuple[str, str], list[int]] = {}
    for sh in m.shards:
        agg = by.setdefault((sh.source, sh.format), [0, 0, 0])
        agg[0] += 1
        agg[1] += sh.samples
        agg[2] += sh.bytes
    for (src, fmt), (n, samples, size) in sorted(by.items()):
        print(f"  {src} {fmt}: {n} shards, {samples} samples, {size / 1e6:.1f} MB")
    for line in duplicate_lines(m.duplicates):
        print(line)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from medshard.sharding.validate import validate_build

    m = _manifest(args.out)
    problems = validate_build(_location(args.out), m)
    for p in problems:
        print(f"MISMATCH {p}")
    if problems:
        print(f"{len(problems)} problems: shards that do not match the manifest, or files "
              "it does not list")
        return 1
    print(f"all {len(m.shards)} shards match the manifest (sample counts and sha256)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from medshard.testing.demo import next_steps, run_demo

    result = run_demo(Path(args.out), workers=args.workers, progress=not args.no_progress)
    print_build_summary(result)
    print("\n".join(next_steps(result.out)))
    return 0


# --- jobs: fewshot / train ---------------------------------------------------------------


def cmd_fewshot(args: argparse.Namespace) -> int:
    from medshard.jobs.fewshot import write_fewshot

    listing = write_fewshot(args.build, args.shots, args.seeds, Path(args.out), args.sources,
                            args.pool_split, args.test_split)
    for m in listing:
        short = ", ".join(f"{c}: {n} short" for c, n in m["shortfall"].items())
        print(f"{m['source']:<16} {m['shots']:>4}-shot seed {m['seed']:<3} {m['samples']:>6} samples"
              f"  {m['path']}{'  (' + short + ')' if short else ''}")
    print(f"{len(listing)} manifests in {args.out} (listed in fewshot.json)")
    return 0


def add_fewshot_command(sub: Any) -> None:
    p = sub.add_parser("fewshot", help="k-shot training subsets per class and seed (sample keys)")
    p.add_argument("build", help="build directory or URL")
    p.add_argument("--shots", type=int, nargs="+", required=True, metavar="K")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="SEED")
    p.add_argument("--out", required=True, help="directory for the manifests")
    p.add_argument("--sources", nargs="+", metavar="SOURCE", help="default: every source")
    p.add_argument("--pool-split", default="train", help="split the shots are drawn from")
    p.add_argument("--test-split", default="test",
                   help="split whose subjects are kept out of every subset")
    p.set_defaults(func=cmd_fewshot)


def cmd_sites(args: argparse.Namespace) -> int:
    from medshard.jobs.sites import write_leave_site_out

    listing = write_leave_site_out(args.build, Path(args.out), args.sources)
    for f in listing:
        print(f"{f['source']:<16} {f['site']:<16} held out {f['held_out']:>6}  train "
              f"{f['train']:>6}  {f['path']}")
    print(f"{len(listing)} leave-one-site-out folds in {args.out} (listed in sites.json)")
    return 0


def add_sites_command(sub: Any) -> None:
    p = sub.add_parser("sites", help="leave-one-site-out key lists per source and site "
                       "(held_out.json / train.json for the loader's keys=)")
    p.add_argument("build", help="build directory or URL")
    p.add_argument("--out", required=True, help="directory for the key lists")
    p.add_argument("--sources", nargs="+", metavar="SOURCE",
                   help="default: every source whose samples record a site")
    p.set_defaults(func=cmd_sites)


def cmd_train(args: argparse.Namespace) -> int:
    try:
        from medshard.jobs.train import run_training
    except ImportError as exc:
        raise UserError(f"training needs medshard[torch] ({exc}); pip install 'medshard[torch]'") from None

    result = run_training(Path(args.config), overrides=args.set, out=args.out,
                          max_steps=args.max_steps)
    if result["rank"] != 0:
        return 0
    if result["metrics_path"] is None:
        print(f"stopped after {result['steps']} steps with a checkpoint in {result['out']}; "
              "run the same command again to resume")
    else:
        print(f"run finished: {result['steps']} steps; metrics in {result['metrics_path']}")
    return 0


def add_train_command(sub: Any) -> None:
    p = sub.add_parser("train", help="reference multitask training + CLIMB evaluation on a build",
                       epilog="Several GPUs: torchrun --nproc-per-node N -m medshard.jobs.train CONFIG")
    p.add_argument("config", help="TOML file (see README, Training and evaluation)")
    p.add_argument("--out", help="run directory (overrides the config's out)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=2")
    p.add_argument("--max-steps", type=int, help="stop (with a checkpoint) after this many steps")
    p.set_defaults(func=cmd_train)


def cmd_qa(args: argparse.Namespace) -> int:
    from medshard.jobs.qa import write_qa

    summary = write_qa(args.build, Path(args.out), args.seed, args.sources)
    for source, splits in summary["per_source"].items():
        print(f"{source:<24} " + "  ".join(f"{k} {v}" for k, v in splits.items()))
    for source, reasons in summary["skipped"].items():
        for reason, n in reasons.items():
            print(f"{source:<24} skipped {n}: {reason}")
    print(f"{summary['questions']} questions in {args.out}/qa.jsonl")
    return 0


def add_qa_command(sub: Any) -> None:
    p = sub.add_parser("qa", help="CLIMB-QA-style multiple-choice questions from a build's "
                       "classification labels (JSONL referencing samples by key)")
    p.add_argument("build", help="build directory or URL")
    p.add_argument("--out", required=True, help="directory for qa.jsonl and qa_summary.json")
    p.add_argument("--seed", type=int, default=0, help="option-order seed (default: 0)")
    p.add_argument("--sources", nargs="+", metavar="SOURCE", help="default: every source")
    p.set_defaults(func=cmd_qa)


# --- parser -----------------------------------------------------------------------------


DESCRIPTION = """\
medshard turns public clinical datasets (ECG, EEG, chest X-ray, CT, echo video, ...) into
standardized, sharded, versioned builds (WebDataset tar and/or Parquet, with a manifest,
an index and a quarantine of rejected records) and streams them into PyTorch.

Start with `medshard demo demo-out` (a miniature build of every source), then
`medshard sources`, `medshard info SOURCE`, `medshard download SOURCE --data-root DIR`,
`medshard build SOURCE --data-root DIR --out BUILD`. `medshard COMMAND --help` for more."""


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="medshard", description=DESCRIPTION,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"medshard {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("sources", help="list the available sources")
    p.add_argument("--json", action="store_true", help="every source's info as JSON")
    p.add_argument("--markdown", action="store_true",
                   help="the README's source and demo tables, generated from the registry")
    p.set_defaults(func=cmd_sources)

    p = sub.add_parser("info", help="a source's datasheet: license, access, classes, layout")
    p.add_argument("source", help="a source name from `medshard sources`, e.g. ptb-xl")
    p.add_argument("--json", action="store_true", help="the info and options as JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("vocab", help="the unified label vocabulary")
    p.add_argument("--json", action="store_true", help="the whole vocabulary file as JSON")
    p.set_defaults(func=cmd_vocab)

    p = sub.add_parser("schema", help="export the JSON Schema of manifest and sample metadata")
    p.add_argument("--out", required=True, help="directory to write *.schema.json into")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("build", help="build shards of one or more sources",
                       epilog="Arguments after `--` go to Apache Beam, e.g. "
                              "`-- --runner=FlinkRunner --flink_master=host:8081`.")
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="one or more source names (see `medshard sources`)")
    p.add_argument("--data-root", metavar="DIR",
                   help="raw files of each source live at DIR/<source>/ (default: none; "
                        "required unless every source has --raw)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="build directory: new, or a build of the same config and sources "
                        "to resume (required)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace another build in --out, removing the files the new build "
                        "does not list (default: off: refuse)")
    p.add_argument("--raw", action="append", default=[], metavar="SOURCE=PATH",
                   help="raw files of one source elsewhere than DATA_ROOT/<source> "
                        "(repeatable; default: none)")
    p.add_argument("--format", choices=["webdataset", "parquet", "both"], default="webdataset",
                   help="shard format (default: webdataset, i.e. tar shards only; `both` "
                        "adds Parquet)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="local worker processes (default: 1)")
    p.add_argument("--shard-size", type=parse_size, default=parse_size("512MB"), metavar="SIZE",
                   help="target bytes per shard, e.g. 512MB or 1GiB (default: 512MB)")
    p.add_argument("--parquet-compression", choices=["none", "zstd"], default="none",
                   help="payload columns of Parquet shards; metadata columns are always zstd "
                        "(default: none)")
    p.add_argument("--png-level", type=int, default=DEFAULT_PNG_LEVEL, metavar="0-9",
                   help="zlib level of the PNGs written for images without a standard "
                        "encoding (DICOM pixels, masks); lossless at every level: 1 encodes "
                        "fastest, 9 smallest (default: %(default)s; benchmarks/png_level.py)")
    p.add_argument("--option", action="append", default=[], metavar="SOURCE.NAME=VALUE",
                   help="source option, e.g. chexpert.uncertain=positive (repeatable; "
                        "default: each option's default, see `medshard info SOURCE`)")
    p.add_argument("--standard", action="append", default=[], metavar="MODALITY.FIELD=VALUE",
                   help="change the signal standard of a modality, e.g. ecg.rate=250, "
                        "ecg.length=2500, ecg.normalization=lead-range, eeg.rate=256 "
                        "(fields: rate, length, normalization, zero_prefix_filter; the "
                        "defaults are in `medshard info SOURCE`; repeatable)")
    p.add_argument("--license-allow", type=_csv, metavar="TERMS",
                   help="build only sources whose terms you can honour: commercial, "
                        "non-commercial, share-alike, credentialed, no-redistribution "
                        "(comma-separated; commercial = free for any use; default: no "
                        "filter)")
    p.add_argument("--access", type=_csv, metavar="KINDS",
                   help="build only sources of these access kinds: open, registration, "
                        "credentialed, manual (comma-separated; default: no filter)")
    p.add_argument("--follow-symlinks", action="store_true",
                   help="read symlinks in a raw tree whose targets stay inside the source's "
                        "root (default: off; such records are quarantined, links out of the "
                        "root always are)")
    p.add_argument("--verify-raw", action="store_true",
                   help="re-hash the raw files of finished shards and rebuild those whose "
                        "content changed (default: off; size, mtime and inode are compared)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (default: off: the bar is shown)")
    p.add_argument("--split-fractions", metavar="TRAIN,VAL,TEST",
                   help="fractions of the keyed subject hash for sources without an official "
                        "split (default: 0.8,0.1,0.1; CLIMB used 0.8,0,0.2 for several); "
                        "official splits are kept")
    p.add_argument("--dedupe", action="store_true",
                   help="keep only the first copy (by source name, split, key) of a payload "
                        "found byte-identical in several samples; the others are filtered "
                        "and listed in the manifest (default: off: duplicates are reported "
                        "only; costs a second read of every record)")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("inspect", help="summarize a build: counts beside the published ones")
    p.add_argument("out", help="the --out directory of a build")
    p.add_argument("--json", action="store_true", help="the manifest as JSON")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("validate", help="re-check every shard's sample count and sha256, and "
                                        "find files no manifest lists")
    p.add_argument("out", help="the --out directory of a build")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("demo", help="write the bundled miniature raw sources and build them")
    p.add_argument("out", help="folder for raw/ (the miniatures) and build/ (the build)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="local worker processes (default: 1)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress output (default: off: progress is printed)")
    p.set_defaults(func=cmd_demo)

    add_acquire_commands(sub)
    add_fewshot_command(sub)
    add_sites_command(sub)
    add_train_command(sub)
    add_qa_command(sub)
    from medshard.sharding.release.commands import add_commands as add_release_commands

    add_release_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    beam_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, beam_args = argv[:cut], argv[cut + 1 :]
    parser = make_parser()
    args = parser.parse_args(argv)
    args.beam_args = beam_args
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        sys.stderr.write(f"medshard: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("medshard: interrupted; run the same command again to resume\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
