"""From shard bytes to raw samples, and from raw samples to tensors.

Raw sample: `{"__key__": str, "json": bytes, "<member>": bytes}` as in the
sharding readers; payload members may be bytearrays or writable memoryviews of a
memory-mapped local shard (tensors then share that memory, no copy). Decoded sample (what the dataset yields):

- `key`, `source`, `modality`, `split`: strings;
- one entry per payload, named by its role (`signal`, `image`, `cc`, `mlo`, `mask`,
  `volume`, `segmentation`, ...), decoded by the kind in its descriptor
  (`meta["payloads"][role]["kind"]`):
  - `.npy` kinds (signal, volume, array, vector, image stored as npy): a tensor of its own
    dtype (signals float32 C x T, amplitudes in the descriptor's `scale` units), except
    unsigned 16/32-bit arrays, which become int32/int64 because torch has no arithmetic
    on them; a vector's feature ids stay in its descriptor, and a sparse vector (`.npz`)
    comes back dense (zeros between its entries, NaN where not measured);
  - image (`.png`, `.jpg`): native size, C x H x W, uint8 for 8-bit, int32 for 16-bit;
  - mask: the label map H x W, uint8 (8-bit) or int32 (16-bit), values as stored;
  - graph: a dict, `edge_index` int64 2 x E, `edge_weight` float32 E, `node_features`
    float32 N x F (those stored), and `node_ids` a list of str;
  - events: a dict per column, numbers as float64 tensors (NaN where null), strings as
    lists of str (`time` float64, `code` list);
  - text: a str;
  - video: the stored bytes (`bytes`, a copy: a memoryview of a mapped shard cannot
    cross into the DataLoader's main process);
- `labels`: float32 multi-hot over the unified vocabulary;
- `label_mask`: float32, 1 where the sample's source can express the concept;
- `meta`: the sample's SampleMeta as a dict (`payloads`: the descriptors by role,
  subject, task, source_labels, meta, provenance), without the fields above.
"""

from __future__ import annotations

import ast
import functools
import io
import json
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from medshard.errors import UserError
from medshard.loaders.remote import Buffer
from medshard.loaders.views import ECG_VIEWS, LABEL_VIEWS, ecg_view, union_view
from medshard.schemas.vocabulary import Vocabulary
from medshard.sharding.members import column_name

RawSample = dict[str, Any]

_BLOCK = 512


class TarFormatError(ValueError):
    pass


def _octal(field: bytes) -> int:
    field = field.rstrip(b"\0 ").lstrip(b" ")
    return int(field, 8) if field else 0


def iter_tar_buffer(buf: Buffer) -> Iterator[tuple[str, memoryview]]:
    """(member name, data view) for each regular file of an in-memory tar, without copies.

    Reads ustar, GNU long names and pax `path` records; stops at the end-of-archive block.
    """
    mv = memoryview(buf)
    n = len(buf)
    off = 0
    long_name: str | None = None
    while off + _BLOCK <= n:
        header = buf[off : off + _BLOCK]
        if header[0] == 0:
            return
        size = _octal(header[124:136])
        kind = header[156:157]
        data_start = off + _BLOCK
        if data_start + size > n:
            raise TarFormatError(f"member at byte {off} runs past the end of the archive")
        off = data_start + (size + _BLOCK - 1) // _BLOCK * _BLOCK
        if kind == b"L":
            long_name = bytes(buf[data_start : data_start + size]).rstrip(b"\0").decode()
            continue
        if kind in (b"x", b"g"):
            long_name = _pax_path(buf[data_start : data_start + size]) or long_name
            continue
        if kind not in (b"0", b"\0", b"7"):
            long_name = None
            continue
        if long_name is not None:
            name, long_name = long_name, None
        else:
            name = header[0:100].split(b"\0", 1)[0].decode()
            if header[257:262] == b"ustar":
                prefix = header[345:500].split(b"\0", 1)[0]
                if prefix:
                    name = prefix.decode() + "/" + name
        yield name, mv[data_start : data_start + size]
    if off < n and any(buf[off:]):
        raise TarFormatError("archive ends inside a header")


def _pax_path(records: bytes) -> str | None:
    pos = 0
    while pos < len(records):
        space = records.index(b" ", pos)
        length = int(records[pos:space])
        key, _, value = records[space + 1 : pos + length - 1].partition(b"=")
        if key == b"path":
            return value.decode()
        pos += length
    return None


def iter_tar_groups(buf: Buffer) -> Iterator[tuple[str, list[tuple[str, memoryview]]]]:
    """(key, [(member extension, data view)]) per sample of an in-memory WebDataset tar.

    Consecutive members sharing a key (the name up to the first dot after the last
    slash) form one sample, as in the webdataset library.
    """
    key: str | None = None
    members: list[tuple[str, memoryview]] = []
    for name, view in iter_tar_buffer(buf):
        slash = name.rfind("/")
        dot = name.find(".", slash + 1)
        k, ext = (name, "") if dot < 0 else (name[:dot], name[dot + 1 :])
        if k != key:
            if key is not None:
                yield key, members
            key, members = k, []
        members.append((ext, view))
    if key is not None:
        yield key, members


def parquet_rows(buf: Buffer) -> int:
    """Rows of a Parquet shard held in memory, from its footer (nothing else is read)."""
    return pq.ParquetFile(pa.BufferReader(pa.py_buffer(buf))).metadata.num_rows


def iter_parquet_raw(buf: Buffer, skip: int = 0) -> Iterator[RawSample]:
    """Raw samples of a Parquet shard held in memory, from row `skip` on.

    Row groups wholly before `skip` are not decoded; payloads are copied once, straight
    out of the Arrow buffers, into writable bytearrays.
    """
    pf = pq.ParquetFile(pa.BufferReader(pa.py_buffer(buf)))
    names = pf.schema_arrow.names
    payload_cols = [c for c in names if c not in _BASE_COLUMNS]
    members = [_member_of_column(c) for c in payload_cols]
    row = 0
    for rg in range(pf.num_row_groups):
        n = pf.metadata.row_group(rg).num_rows
        if row + n <= skip:
            row += n
            continue
        table = pf.read_row_group(rg, columns=["key", "json", *payload_cols])
        keys = table.column("key").to_pylist()
        jsons = table.column("json").to_pylist()
        payloads = [_binary_views(table.column(c)) for c in payload_cols]
        for i in range(max(0, skip - row), n):
            sample: RawSample = {"__key__": keys[i], "json": jsons[i].encode()}
            for member, views in zip(members, payloads, strict=True):
                v = views[i]
                if v is not None:
                    sample[member] = bytearray(v)
            yield sample
        row += n


def _binary_views(column: pa.ChunkedArray) -> list[memoryview | None]:
    """One memoryview per value of a binary column, over Arrow's own buffer (no copy)."""
    out: list[memoryview | None] = []
    for chunk in column.chunks:
        _, offsets_buf, data_buf = chunk.buffers()
        width = np.int64 if pa.types.is_large_binary(chunk.type) else np.int32
        offsets = np.frombuffer(offsets_buf, dtype=width)[chunk.offset : chunk.offset + len(chunk) + 1]
        data = memoryview(data_buf) if data_buf is not None else memoryview(b"")
        nulls = chunk.is_null().to_pylist() if chunk.null_count else None
        bounds = offsets.tolist()
        for i in range(len(chunk)):
            out.append(None if nulls and nulls[i] else data[bounds[i] : bounds[i + 1]])
    return out


_BASE_COLUMNS = {"key", "source", "modality", "split", "subject", "labels", "json"}
_MEMBER_COLUMNS: dict[str, str] = {}


def _member_of_column(col: str) -> str:
    """`signal_npy` -> `signal.npy` (the last underscore separates role and extension)."""
    member = _MEMBER_COLUMNS.get(col)
    if member is None:
        role, _, ext = col.rpartition("_")
        member = f"{role}.{ext}" if role else col
        assert column_name(member) == col
        _MEMBER_COLUMNS[col] = member
    return member


@functools.lru_cache(maxsize=256)
def _npy_header(header: bytes) -> tuple[np.dtype, tuple[int, ...], str, int]:
    """(dtype, shape, order, element count) of an .npy header; samples of a source share one."""
    h = ast.literal_eval(header.decode("latin1"))
    shape = tuple(h["shape"])
    return np.dtype(h["descr"]), shape, "F" if h["fortran_order"] else "C", int(np.prod(shape))


def npy_tensor(data: bytes | bytearray | memoryview) -> torch.Tensor:
    """A tensor over an .npy member; shares writable memory (bytearray, writable view),
    else copies once."""
    if bytes(data[:6]) != b"\x93NUMPY":
        raise ValueError("member is not an .npy array")
    start = 10 if data[6] == 1 else 12
    hlen = int.from_bytes(data[8:start], "little")
    dtype, shape, order, count = _npy_header(bytes(data[start : start + hlen]))
    if isinstance(data, bytes) or (isinstance(data, memoryview) and data.readonly):
        data = bytearray(data)  # writable: torch wants that
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=start + hlen)
    return _as_tensor(arr.reshape(shape, order=order))


def _as_tensor(arr: np.ndarray) -> torch.Tensor:
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype == np.uint16:
        arr = arr.astype(np.int32)
    elif arr.dtype == np.uint32:
        arr = arr.astype(np.int64)
    return torch.from_numpy(np.ascontiguousarray(arr))


IMAGE_DECODERS = ("auto", "pillow", "simplejpeg", "torchvision", "cuda")
_JPEG_MAGIC = b"\xff\xd8\xff"
_warned: set[str] = set()


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except Exception:  # noqa: BLE001 - a broken install counts as absent
        return False
    return True


def _cuda_available() -> bool:
    return torch.cuda.is_available() and _importable("torchvision")


@functools.cache
def image_decoder(name: str) -> str:
    """The JPEG decoder `name` resolves to here: "auto" is simplejpeg (libjpeg-turbo without
    Pillow's per-image overhead) when installed, else Pillow. "cuda" (nvJPEG through
    torchvision) falls back to the best CPU decoder, with a warning, where there is no GPU.
    PNG and other formats always decode with Pillow."""
    if name not in IMAGE_DECODERS:
        raise UserError(f"image_decoder={name!r} is not one of {', '.join(IMAGE_DECODERS)}")
    if name == "cuda":
        if _cuda_available():
            return "cuda"
        if "cuda" not in _warned:
            _warned.add("cuda")
            warnings.warn("image_decoder='cuda' needs torchvision and a CUDA device; decoding "
                          "JPEGs on the CPU instead", stacklevel=2)
        name = "auto"
    if name == "auto":
        return "simplejpeg" if _importable("simplejpeg") else "pillow"
    module, package = {"pillow": ("PIL", "Pillow"), "simplejpeg": ("simplejpeg", "simplejpeg"),
                       "torchvision": ("torchvision", "torchvision")}[name]
    if not _importable(module):
        raise UserError(f"image_decoder={name!r} needs {package}: pip install {package}")
    return name


def auto_decode_threads(raw: RawSample, num_workers: int) -> int:
    """Decode threads for a process whose first sample is `raw`, among `num_workers`
    DataLoader workers: for PNG/JPEG members, the cores this process may use divided
    among the workers (at most 8); none for arrays, whose decoding costs less than a
    thread hand-off, and none where a process would get a single core."""
    if not any(isinstance(m, str) and m.rsplit(".", 1)[-1] in ("jpg", "jpeg", "png")
               for m in raw):
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    share = (cores or 1) // max(num_workers, 1)
    return min(share, 8) if share >= 2 else 0


def image_tensor(data: bytes | bytearray | memoryview, decoder: str = "pillow",
                 size: tuple[int, int] | None = None) -> torch.Tensor:
    """A PNG/JPEG member as C x H x W (uint8, or int32 for 16-bit).

    `decoder` (see `image_decoder`) applies to JPEGs; `size` (height, width): a JPEG is
    decoded with libjpeg's DCT scaling at the smallest power-of-two reduction that keeps
    it at least this size (Pillow's `draft`, simplejpeg's `min_height`/`min_width`;
    torchvision and nvJPEG decode at native size); None or any other format: native size.
    """
    if bytes(data[:3]) == _JPEG_MAGIC and decoder != "pillow":
        out = _jpeg_tensor(data, decoder, size)
        if out is not None:
            return out
    try:
        from PIL import Image  # lazy: only image datasets pay for Pillow's import
    except ImportError:
        raise ImportError("decoding PNG/JPEG members needs Pillow, part of the torch extra: "
                          "pip install 'medshard[torch]'") from None

    with Image.open(io.BytesIO(data)) as im:
        if size is not None and im.format == "JPEG":
            im.draft(im.mode, (size[1], size[0]))
        arr = np.asarray(im)
    if arr.dtype == np.uint16 or arr.dtype == np.int32:
        arr = arr.astype(np.int32, copy=False)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    t = torch.from_numpy(np.array(arr, copy=not arr.flags.writeable))
    return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


def _jpeg_tensor(data: bytes | bytearray | memoryview, decoder: str,
                 size: tuple[int, int] | None) -> torch.Tensor | None:
    """A JPEG through simplejpeg / torchvision / nvJPEG; None: let Pillow decode it (CMYK)."""
    if decoder == "simplejpeg":
        import simplejpeg

        h, w = size if size is not None else (0, 0)
        _, _, space, _ = simplejpeg.decode_jpeg_header(data)
        if space not in ("Gray", "YCbCr", "RGB"):
            return None  # CMYK/YCCK: Pillow's conversion
        gray = space == "Gray"
        arr = simplejpeg.decode_jpeg(data, colorspace="GRAY" if gray else "RGB",
                                     min_height=h, min_width=w)
        t = torch.from_numpy(arr)  # H x W x C, C = 1 for gray
        return t.permute(2, 0, 1).contiguous()
    from torchvision.io import ImageReadMode, decode_jpeg

    encoded = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    device = "cuda" if decoder == "cuda" else "cpu"
    return decode_jpeg(encoded, mode=ImageReadMode.UNCHANGED, device=device)


def _rescaled(image: torch.Tensor, descriptor: dict[str, Any]) -> torch.Tensor:
    """Physical values of an image stored without its fractional rescale, as float32."""
    slope = descriptor.get("rescale_slope")
    if slope is None or descriptor.get("rescale_applied"):
        return image
    intercept = float(descriptor.get("rescale_intercept") or 0.0)
    # float64 arithmetic, as pydicom's apply_modality_lut, then float32
    return (image.to(torch.float64) * float(slope) + intercept).to(torch.float32)


def mask_tensor(data: bytes | bytearray | memoryview) -> torch.Tensor:
    """A mask PNG as its H x W label map (uint8, or int32 for 16-bit)."""
    return image_tensor(bytes(data))[0]


def graph_tensors(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """A graph `.npz` as a dict of tensors (`node_ids` as a list of str)."""
    out: dict[str, Any] = {}
    with np.load(io.BytesIO(bytes(data)), allow_pickle=False) as npz:
        for name in npz.files:
            arr = npz[name]
            out[name] = arr.tolist() if arr.dtype.kind == "U" else _as_tensor(arr)
    return out


def vector_tensor(data: bytes | bytearray | memoryview, descriptor: dict[str, Any]) -> torch.Tensor:
    """A vector as a dense 1-D tensor: `.npy` as stored; sparse `.npz` expanded (zeros
    between the stored entries, NaN at the missing ones, float32 unless the values are
    float64)."""
    if descriptor.get("storage", "dense") != "sparse":
        return npy_tensor(data)
    with np.load(io.BytesIO(bytes(data)), allow_pickle=False) as npz:
        idx, values, missing = npz["indices"], npz["values"], npz["missing"]
    dtype = np.float64 if values.dtype == np.float64 else np.float32
    out = np.zeros(int(descriptor["length"]), dtype=dtype)
    out[idx] = values
    out[missing] = np.nan
    return torch.from_numpy(out)


def events_columns(data: bytes | bytearray | memoryview, descriptor: dict[str, Any]) -> dict:
    """Events JSON Lines as one entry per column: float64 tensors (NaN for null) or str lists."""
    rows = [json.loads(line) for line in bytes(data).decode("utf-8").splitlines() if line]
    out: dict[str, Any] = {}
    for name, kind in descriptor["columns"].items():
        values = [row.get(name) for row in rows]
        if kind == "float64":
            out[name] = torch.tensor(
                [float("nan") if v is None else v for v in values], dtype=torch.float64
            )
        else:
            out[name] = values
    return out


def _npy_or_image(data: Any, descriptor: dict[str, Any]) -> torch.Tensor:
    return npy_tensor(data) if descriptor.get("encoding") == "npy" else image_tensor(data)


# payload kind -> (member bytes, descriptor) -> decoded value
PAYLOAD_DECODERS: dict[str, Callable[[Any, dict[str, Any]], Any]] = {
    "signal": lambda data, desc: npy_tensor(data),
    "volume": lambda data, desc: npy_tensor(data),
    "array": lambda data, desc: npy_tensor(data),
    "vector": vector_tensor,
    "image": _npy_or_image,
    "mask": lambda data, desc: mask_tensor(data),
    "graph": lambda data, desc: graph_tensors(data),
    "events": events_columns,
    "text": lambda data, desc: bytes(data).decode("utf-8"),
    # bytes, not a view of the shard: it must pickle to leave a DataLoader worker
    "video": lambda data, desc: bytes(data),
}


class SampleDecoder:
    """Turns raw samples into tensor dicts; label masks are cached per source.

    `concepts`: per source, the concepts its build expresses (manifest), for the mask.
    `ecg_view`, `label_view`: see `medshard.loaders.views`; `ecg_view` applies to every
    signal payload built to the ECG standard (an ECG sample's, or an ECG beside an X-ray).
    `apply_rescale`: image payloads (any role) stored without their fractional modality
    rescale (descriptor `rescale_slope`, `rescale_intercept`) come back as float32
    physical values `x * slope + intercept`. `image_decoder`, `decode_size`: how image
    payloads stored as JPEG are decoded (see `image_tensor`); an image decoded below its
    stored size gets `decode_scale` (stored width / decoded width) in its descriptor.
    """

    def __init__(
        self,
        vocabulary: Vocabulary,
        concepts: dict[str, list[str]] | None = None,
        ecg_view: str = "full",
        label_view: str = "source",
        apply_rescale: bool = False,
        image_decoder: str = "pillow",
        decode_size: tuple[int, int] | None = None,
    ) -> None:
        if ecg_view not in ECG_VIEWS:
            raise ValueError(f"ecg_view={ecg_view!r} is not one of {', '.join(ECG_VIEWS)}")
        if label_view not in LABEL_VIEWS:
            raise ValueError(f"label_view={label_view!r} is not one of {', '.join(LABEL_VIEWS)}")
        self.vocabulary = vocabulary
        self.concepts = concepts or {}
        self.ecg_view = ecg_view
        self.label_view = label_view
        self.apply_rescale = apply_rescale
        self.jpeg = globals()["image_decoder"](image_decoder)
        self.decode_size = tuple(decode_size) if decode_size is not None else None
        self._masks: dict[str, torch.Tensor] = {}

    def label_mask(self, source: str) -> torch.Tensor:
        mask = self._masks.get(source)
        if mask is None:
            mask = self._masks[source] = torch.from_numpy(
                self.vocabulary.mask(source, self.concepts.get(source))
            )
        return mask

    def _labels(self, ids: list[str], source: str) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.zeros(len(self.vocabulary), dtype=torch.float32)
        index = self.vocabulary.index
        for cid in ids:
            labels[index[cid]] = 1.0
        mask = self.label_mask(source).clone()
        if self.label_view == "climb" and self.vocabulary.unions:
            lab, msk = union_view(labels.numpy(), mask.numpy(), index, self.vocabulary.unions)
            return torch.from_numpy(lab), torch.from_numpy(msk)
        return labels, mask

    def __call__(self, raw: RawSample) -> dict[str, Any]:
        meta = json.loads(raw["json"])
        out: dict[str, Any] = {
            "key": meta.pop("key"),
            "source": meta["source"],
            "modality": meta["modality"],
            "split": meta["split"],
        }
        payloads = meta.get("payloads")
        if payloads is None:
            raise ValueError(f"sample {out['key']} has no `payloads` descriptors: it was built "
                             "with schema < 2.0; rebuild it with this medshard")
        del meta["members"]
        for role, desc in payloads.items():
            out[role], payloads[role] = self._payload(out["key"], raw, desc, meta["modality"])
        out["labels"], out["label_mask"] = self._labels(meta["labels"], meta.pop("source"))
        del meta["modality"], meta["labels"]
        # the source's metadata flat in `meta`, beside the sample's other fields
        source_meta = meta.pop("meta", None) or {}
        out["meta"] = {**source_meta, **meta}
        return out

    def _payload(
        self, key: str, raw: RawSample, desc: dict[str, Any], modality: str
    ) -> tuple[Any, dict[str, Any]]:
        """One payload decoded by its kind, with the loader's views applied, and its
        (possibly updated) descriptor."""
        data = raw.get(desc["member"])
        if data is None:
            raise ValueError(f"sample {key} lacks its {desc['member']} member")
        decode = PAYLOAD_DECODERS.get(desc["kind"])
        if decode is None:
            raise ValueError(f"sample {key} has a payload of kind {desc['kind']!r}, which this "
                             "medshard cannot decode; upgrade medshard")
        if desc["kind"] == "image" and desc.get("encoding") != "npy":
            value = image_tensor(data, self.jpeg, self.decode_size)
            width = desc.get("width")
            if self.decode_size is not None and width and value.shape[-1] != width:
                desc = {**desc, "decode_scale": width / value.shape[-1]}
        else:
            value = decode(data, desc)
        is_ecg = desc.get("standard", modality) == "ecg"
        if desc["kind"] == "signal" and self.ecg_view != "full" and is_ecg:
            arr, desc = ecg_view(value.numpy(), desc, self.ecg_view)
            value = torch.from_numpy(arr)
        elif desc["kind"] == "image" and self.apply_rescale:
            value = _rescaled(value, desc)
        return value, desc
