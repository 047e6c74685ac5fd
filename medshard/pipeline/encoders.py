"""Payload encoders: one small function per payload kind, from a source's payload to its
shard member and descriptor.

An encoder takes `(payload, context)` and returns `(members, descriptor)`: one member
`<role>.<ext>` -> bytes (or an `NpyMember` streamed without a copy), and the descriptor
dict that `SampleMeta.payloads[role]` validates (its `kind` and `member` set). Every
stored format opens without medshard:

| kind     | member              | what it holds                                              |
|----------|---------------------|------------------------------------------------------------|
| signal   | `<role>.npy`        | float32 C x T at a signal standard (ecg, eeg, ...)         |
| image    | `.jpg`/`.png`/`.npy`| the source's JPEG/PNG bytes, or an array as lossless PNG   |
| mask     | `<role>.png`        | 2-D label map, 8- or 16-bit grayscale PNG, values as given |
| volume   | `<role>.npy`        | n-d array on a physical grid, dtype kept                   |
| array    | `<role>.npy`        | any other array, dtype kept (e.g. a 3-D segmentation)      |
| video    | `<role>.<encoding>` | the source's encoded bytes                                 |
| graph    | `<role>.npz`        | `edge_index` int64 2 x E, `edge_weight` float32 E,         |
|          |                     | `node_features` float32 N x F, `node_ids` unicode N        |
| vector   | `<role>.npy`        | 1-D numeric vector (NaN: not measured); feature ids or a   |
|          | or `<role>.npz`     | declared feature index in the descriptor; sparse: indices, |
|          |                     | values, missing                                            |
| events   | `<role>.jsonl`      | UTF-8 JSON Lines, one event per line, ordered by time      |
| text     | `<role>.txt`        | UTF-8 text                                                 |

`encode_payloads` runs the encoder of each payload (roles in sorted order) and checks
that a mask or array that `annotates` another role lies on the same grid.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medshard.pipeline.transforms.image import check_encoded_image, encode_png, strip_metadata
from medshard.pipeline.transforms.signal import standardize_signal
from medshard.schemas.models import PAYLOAD_KINDS
from medshard.schemas.sample import Payload, RecordError, Sample
from medshard.schemas.standards import DEFAULT_PNG_LEVEL, SignalSpec
from medshard.sharding.members import NpyMember, npz_bytes

Member = bytes | NpyMember
Encoded = tuple[dict[str, Member], dict[str, Any]]


@dataclass(frozen=True)
class EncodeContext:
    """What an encoder may know beyond its payload: the sample key, the payload's role,
    the sample's modality and the build's signal standards (by name: ecg, eeg, ...)."""

    key: str
    role: str
    modality: str = ""
    signal_specs: Mapping[str, SignalSpec] = field(default_factory=dict)
    png_level: int = DEFAULT_PNG_LEVEL


Encoder = Callable[[Payload, EncodeContext], Encoded]


class UnknownPayloadKind(ValueError):
    """A payload whose kind no encoder handles (quarantined at stage `transform`)."""


ENCODERS: dict[str, Encoder] = {}


def register_encoder(kind: str) -> Callable[[Encoder], Encoder]:
    """Register the encoder of a payload kind; the kind must have a descriptor model."""
    if kind not in PAYLOAD_KINDS:
        raise ValueError(f"payload kind {kind!r} has no descriptor in medshard.schemas")

    def add(fn: Encoder) -> Encoder:
        ENCODERS[kind] = fn
        return fn

    return add


def _out(ctx: EncodeContext, kind: str, ext: str, data: Member, desc: dict[str, Any]) -> Encoded:
    member = f"{ctx.role}.{ext}"
    return {member: data}, {**desc, "kind": kind, "member": member}


def _label_names(desc: dict[str, Any]) -> dict[str, str] | None:
    names = desc.get("label_names")
    return None if names is None else {str(k): str(v) for k, v in names.items()}


@register_encoder("signal")
def encode_signal(p: Payload, ctx: EncodeContext) -> Encoded:
    """Resample, crop/pad and scale to a signal standard; float32 `.npy`. The standard is
    the sample's modality, or `descriptor["standard"]` for a signal in a sample of another
    modality (an ECG beside a chest X-ray)."""
    standard = p.descriptor.get("standard") or ctx.modality
    spec = ctx.signal_specs.get(standard)
    if spec is None:
        raise RecordError(
            f"signal {ctx.role!r} of {ctx.key}: no signal standard {standard!r} in this build "
            f"(it has {', '.join(sorted(ctx.signal_specs)) or 'none'}); a signal in a sample "
            "of another modality names its standard in descriptor['standard']"
        )
    data, desc = standardize_signal(p.data, p.descriptor, spec)
    return _out(ctx, "signal", "npy", NpyMember(data), {**desc, "standard": standard})


@register_encoder("image")
def encode_image(p: Payload, ctx: EncodeContext) -> Encoded:
    """The source's JPEG/PNG bytes kept (text metadata segments dropped, then a full decode);
    arrays as lossless PNG, or `.npy` when PNG cannot hold the values (signed, wider than
    16 bits)."""
    desc = dict(p.descriptor)
    if isinstance(p.data, (bytes, bytearray)):
        data, removed = strip_metadata(bytes(p.data))
        info = check_encoded_image(data)
        ext = info.pop("ext")
        for k, v in info.items():
            desc.setdefault(k, v)
        desc["encoding"] = info["encoding"]
        desc["metadata_removed"] = removed
        return _out(ctx, "image", ext, data, desc)
    arr = np.asarray(p.data)
    if arr.ndim not in (2, 3):
        raise RecordError(f"image {ctx.role!r} must be H x W or H x W x C, got shape {arr.shape}")
    if arr.dtype in (np.uint8, np.uint16):
        encoding, data = "png", encode_png(arr, ctx.png_level)
    else:  # signed or wider values (CT in HU) do not fit PNG: stored exactly
        encoding, data = "npy", NpyMember(arr)
    desc.setdefault("height", int(arr.shape[0]))
    desc.setdefault("width", int(arr.shape[1]))
    desc.setdefault("channels", 1 if arr.ndim == 2 else int(arr.shape[2]))
    desc["encoding"] = encoding
    return _out(ctx, "image", encoding, data, desc)


@register_encoder("mask")
def encode_mask(p: Payload, ctx: EncodeContext) -> Encoded:
    """A 2-D integer label map as 8-bit PNG (values <= 255) or 16-bit PNG; values unchanged."""
    arr = np.asarray(p.data)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise RecordError(f"mask {ctx.role!r} must be a 2-D integer array, got {arr.dtype} "
                          f"{arr.shape}")
    values = np.unique(arr)
    if values.size and (values[0] < 0 or values[-1] > 65535):
        raise RecordError(f"mask {ctx.role!r} holds values outside 0..65535 "
                          f"({values[0]}..{values[-1]}); PNG cannot keep them")
    depth = 8 if not values.size or values[-1] <= 255 else 16
    data = encode_png(arr.astype(np.uint8 if depth == 8 else np.uint16), ctx.png_level)
    desc = {
        "height": int(arr.shape[0]), "width": int(arr.shape[1]), "bit_depth": depth,
        "encoding": "png", "values": [int(v) for v in values],
        "label_names": _label_names(p.descriptor), "annotates": p.descriptor.get("annotates"),
    }
    return _out(ctx, "mask", "png", data, desc)


@register_encoder("volume")
def encode_volume(p: Payload, ctx: EncodeContext) -> Encoded:
    """The array as `.npy` in its own dtype; the descriptor gives its grid (spacing, affine).

    A volume with NaN or infinite voxels is a RecordError (quarantined): CT and MR values
    are physical quantities (HU, intensities) where a non-finite voxel means a broken
    file or conversion, never a measurement.
    """
    arr = np.asarray(p.data)
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise RecordError(f"volume {ctx.role!r} has {bad} NaN or infinite voxels of {arr.size}; "
                          "the file or its conversion is broken")
    desc = {**p.descriptor, "shape": list(arr.shape), "dtype": str(arr.dtype)}
    return _out(ctx, "volume", "npy", NpyMember(arr), desc)


@register_encoder("array")
def encode_array(p: Payload, ctx: EncodeContext) -> Encoded:
    """Any other array as `.npy`, dtype kept; optional label names and the role it annotates."""
    arr = np.asarray(p.data)
    if arr.dtype == object:
        raise RecordError(f"array {ctx.role!r} holds Python objects; store numbers")
    desc = {
        "shape": list(arr.shape), "dtype": str(arr.dtype),
        "label_names": _label_names(p.descriptor), "annotates": p.descriptor.get("annotates"),
    }
    return _out(ctx, "array", "npy", NpyMember(arr), desc)


@register_encoder("video")
def encode_video(p: Payload, ctx: EncodeContext) -> Encoded:
    """The source's encoded video bytes, named by `descriptor["encoding"]` (e.g. avi)."""
    if not isinstance(p.data, (bytes, bytearray)):
        raise RecordError(f"video {ctx.role!r} must be the source's encoded bytes, "
                          f"got {type(p.data).__name__}")
    desc = dict(p.descriptor)
    return _out(ctx, "video", str(desc.get("encoding", "bin")), bytes(p.data), desc)


def _graph_arrays(data: dict[str, Any], n_nodes: int | None) -> tuple[dict[str, np.ndarray], int]:
    """The graph's arrays in their stored dtypes, checked against each other."""
    edges = np.asarray(data["edge_index"])
    if edges.ndim != 2 or edges.shape[0] != 2 or not np.issubdtype(edges.dtype, np.integer):
        raise RecordError(f"edge_index must be integers of shape 2 x E, got {edges.dtype} "
                          f"{edges.shape}")
    arrays = {"edge_index": edges.astype(np.int64)}
    if data.get("edge_weight") is not None:
        arrays["edge_weight"] = np.asarray(data["edge_weight"], dtype=np.float32)
        if arrays["edge_weight"].shape != (edges.shape[1],):
            raise RecordError(f"{arrays['edge_weight'].shape[0]} edge weights for "
                              f"{edges.shape[1]} edges")
    sizes = [] if n_nodes is None else [int(n_nodes)]
    if data.get("node_features") is not None:
        arrays["node_features"] = np.asarray(data["node_features"], dtype=np.float32)
        if arrays["node_features"].ndim != 2:
            raise RecordError("node_features must be N x F")
        sizes.append(arrays["node_features"].shape[0])
    if data.get("node_ids") is not None:
        ids = [str(i) for i in data["node_ids"]]
        if len(set(ids)) != len(ids):
            raise RecordError("node_ids are not unique")
        arrays["node_ids"] = np.array(ids, dtype=f"<U{max((len(i) for i in ids), default=1)}")
        sizes.append(len(ids))
    if not sizes:
        raise RecordError("a graph needs n_nodes, node_features or node_ids (isolated nodes "
                          "are invisible in edge_index)")
    if len(set(sizes)) != 1:
        raise RecordError(f"node counts disagree: n_nodes / node_features / node_ids {sizes}")
    n = sizes[0]
    if edges.size and (edges.min() < 0 or edges.max() >= n):
        raise RecordError(f"edge_index holds node {int(edges.max())} outside 0..{n - 1}")
    return arrays, n


@register_encoder("graph")
def encode_graph(p: Payload, ctx: EncodeContext) -> Encoded:
    """`data`: {"edge_index", optional "edge_weight", "node_features", "node_ids"}; one `.npz`."""
    if not isinstance(p.data, dict) or "edge_index" not in p.data:
        raise RecordError(f"graph {ctx.role!r} must be a dict with an edge_index")
    desc = dict(p.descriptor)
    arrays, n = _graph_arrays(p.data, desc.pop("n_nodes", None))
    desc.update(n_nodes=n, n_edges=int(arrays["edge_index"].shape[1]), arrays=list(arrays))
    names = desc.get("node_feature_names")
    if names is not None and len(names) != arrays.get("node_features", np.empty((0, 0))).shape[1]:
        raise RecordError(f"{len(names)} node feature names for the node features' columns")
    return _out(ctx, "graph", "npz", npz_bytes(arrays), desc)


def _vector_ids(p: Payload, ctx: EncodeContext, length: int) -> dict[str, Any]:
    """The descriptor's `feature_ids` (checked unique, one per entry) or `feature_index`
    (its length must be the vector's)."""
    index = p.descriptor.get("feature_index")
    if p.descriptor.get("feature_ids") is None and index is not None:
        if int(index.get("length", -1)) != length:
            raise RecordError(f"vector {ctx.role!r} has {length} entries but its feature index "
                              f"{index.get('name')!r} has {index.get('length')}")
        return {"feature_ids": None, "feature_index": dict(index)}
    ids = [str(i) for i in p.descriptor.get("feature_ids") or []]
    if len(ids) != length or len(set(ids)) != len(ids):
        raise RecordError(f"vector {ctx.role!r} needs {length} unique feature_ids, "
                          f"got {len(ids)} ({len(set(ids))} unique)")
    return {"feature_ids": ids, "feature_index": index}


def _sparse_vector(data: dict[str, Any], ctx: EncodeContext) -> tuple[dict[str, np.ndarray], int]:
    """(arrays, length) of a sparse vector {"length", "indices", "values", optional
    "missing"}, checked: indices ascending, unique and inside 0..length-1, one value each,
    missing entries disjoint from stored ones."""
    length = int(data["length"])
    idx = np.asarray(data["indices"])
    values = np.asarray(data["values"])
    missing = np.asarray(data.get("missing", np.empty(0, np.int64)))
    for name, a in (("indices", idx), ("missing", missing)):
        if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
            raise RecordError(f"sparse vector {ctx.role!r}: {name} must be 1-D integers")
        if a.size and (a.min() < 0 or a.max() >= length or np.any(np.diff(a) <= 0)):
            raise RecordError(f"sparse vector {ctx.role!r}: {name} must be ascending, unique "
                              f"and inside 0..{length - 1}")
    if values.shape != idx.shape or not np.issubdtype(values.dtype, np.number):
        raise RecordError(f"sparse vector {ctx.role!r}: {values.shape[0] if values.ndim else 0} "
                          f"values for {idx.shape[0]} indices")
    if np.intersect1d(idx, missing).size:
        raise RecordError(f"sparse vector {ctx.role!r}: an entry is both stored and missing")
    # int32 positions (a vector of 2**31 entries is no gene index): 8 bytes per stored entry
    itype = np.int32 if length < 2**31 else np.int64
    return {"indices": idx.astype(itype), "values": values,
            "missing": missing.astype(itype)}, length


@register_encoder("vector")
def encode_vector(p: Payload, ctx: EncodeContext) -> Encoded:
    """A 1-D numeric vector as `.npy` (dtype kept; NaN marks an entry not measured), or a
    sparse one (`data` a dict: length, indices, values, missing) as `.npz`; feature ids in
    `descriptor["feature_ids"]`, or a declared `descriptor["feature_index"]`."""
    if isinstance(p.data, dict):
        arrays, length = _sparse_vector(p.data, ctx)
        desc = {**p.descriptor, **_vector_ids(p, ctx, length), "length": length,
                "dtype": str(arrays["values"].dtype), "storage": "sparse",
                "n_missing": int(arrays["missing"].size)}
        return _out(ctx, "vector", "npz", npz_bytes(arrays), desc)
    arr = np.asarray(p.data)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise RecordError(f"vector {ctx.role!r} must be 1-D numbers, got {arr.dtype} {arr.shape}")
    n_missing = int(np.isnan(arr).sum()) if arr.dtype.kind == "f" else 0
    desc = {**p.descriptor, **_vector_ids(p, ctx, int(arr.shape[0])),
            "length": int(arr.shape[0]), "dtype": str(arr.dtype), "storage": "dense",
            "n_missing": n_missing}
    return _out(ctx, "vector", "npy", NpyMember(arr), desc)


def _events_column(name: str, values: Any, n: int) -> tuple[str, list]:
    """(type, JSON values) of one events column: numbers (None for NaN) or strings."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        out: list = [None if math.isnan(v) else v for v in values.astype(np.float64).tolist()]
        kind = "float64"
    else:
        out = list(values)
        if all(isinstance(v, str) or v is None for v in out):
            kind = "string"
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) or v is None
                 for v in out):
            out = [None if v is None or math.isnan(v) else float(v) for v in out]
            kind = "float64"
        else:
            raise RecordError(f"events column {name!r} mixes strings and numbers")
    if len(out) != n:
        raise RecordError(f"events column {name!r} has {len(out)} values for {n} events")
    return kind, out


@register_encoder("events")
def encode_events(p: Payload, ctx: EncodeContext) -> Encoded:
    """`data`: columns of equal length, `time` (finite numbers) and `code` (strings) required,
    others numbers or strings; stored as JSON Lines ordered by time (stable)."""
    if not isinstance(p.data, dict) or "time" not in p.data or "code" not in p.data:
        raise RecordError(f"events {ctx.role!r} must be a dict of columns with time and code")
    n = len(p.data["time"])
    columns = {name: _events_column(name, p.data[name], n) for name in sorted(p.data)}
    times = columns["time"][1]
    if columns["time"][0] != "float64" or any(t is None or math.isinf(t) for t in times):
        raise RecordError("event times must be finite numbers")
    if columns["code"][0] != "string" or any(c is None for c in columns["code"][1]):
        raise RecordError("event codes must be strings")
    order = np.argsort(np.asarray(times, dtype=np.float64), kind="stable").tolist()
    lines = [
        json.dumps({name: col[i] for name, (_, col) in columns.items()}, sort_keys=True,
                   separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        for i in order
    ]
    data = "".join(line + "\n" for line in lines).encode()
    desc = {**p.descriptor, "n_events": n, "columns": {k: t for k, (t, _) in columns.items()}}
    return _out(ctx, "events", "jsonl", data, desc)


@register_encoder("text")
def encode_text(p: Payload, ctx: EncodeContext) -> Encoded:
    """A str (or UTF-8 bytes) as UTF-8 `.txt`, characters unchanged."""
    text = p.data
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RecordError(f"text {ctx.role!r} is not UTF-8: {exc}") from exc
    if not isinstance(text, str):
        raise RecordError(f"text {ctx.role!r} must be str, got {type(text).__name__}")
    data = text.encode("utf-8")
    desc = {**p.descriptor, "n_chars": len(text), "n_bytes": len(data)}
    return _out(ctx, "text", "txt", data, desc)


def encode_payload(p: Payload, ctx: EncodeContext) -> Encoded:
    """Run the registered encoder of `p.kind`; an unknown kind raises UnknownPayloadKind."""
    encoder = ENCODERS.get(p.kind)
    if encoder is None:
        raise UnknownPayloadKind(
            f"payload {ctx.role!r} of {ctx.key} has kind {p.kind!r}, which no encoder handles; "
            f"known kinds: {', '.join(sorted(ENCODERS))}"
        )
    return encoder(p, ctx)


def _check_annotations(descriptors: dict[str, dict[str, Any]]) -> None:
    """A mask/array that annotates a role must find it, on the same grid."""
    for role, desc in descriptors.items():
        target = desc.get("annotates")
        if target is None:
            continue
        other = descriptors.get(target)
        if other is None:
            raise RecordError(f"{role!r} annotates {target!r}, which the sample lacks")
        if desc["kind"] == "mask":
            mine, theirs = (desc["height"], desc["width"]), (other.get("height"), other.get("width"))
        else:
            mine, theirs = tuple(desc["shape"]), tuple(other.get("shape") or ())
        if mine != theirs:
            raise RecordError(f"{role!r} is {mine}, the {target!r} it annotates is {theirs}")


def encode_payloads(
    sample: Sample, signal_specs: Mapping[str, SignalSpec], modality: str, key: str,
    png_level: int = DEFAULT_PNG_LEVEL,
) -> tuple[dict[str, Member], dict[str, dict[str, Any]]]:
    """Encode every payload (roles in sorted order): members in shard order, and the
    descriptor of each role, ready for `SampleMeta.payloads`."""
    members: dict[str, Member] = {}
    descriptors: dict[str, dict[str, Any]] = {}
    for role in sorted(sample.payloads):
        ctx = EncodeContext(key=key, role=role, modality=modality,
                            signal_specs=signal_specs, png_level=png_level)
        encoded, desc = encode_payload(sample.payloads[role], ctx)
        members.update(encoded)
        descriptors[role] = {k: v for k, v in desc.items() if v is not None}
    _check_annotations(descriptors)
    return members, descriptors
