"""Batching decoded samples: stack what has one shape, keep the rest as lists, or pad/crop.

`collate(batch)` returns a dict with one entry per field: tensors of equal shape
are stacked (`signal` B x C x T, `labels` B x V), tensors of differing shape
(native-size images) stay a list, everything else (text, the dicts of a graph or
an events payload, bytes) is a list; a field some samples lack (a mixed-modality
batch, a role only some samples carry) is a list with None for those. `Collate(pad=True)` zero-pads differing tensors to the largest shape in the
batch (bottom/right) and adds `<field>_shape` (B x ndim, the original shapes);
`Collate(size={"image": (512, 512)})` center-crops or zero-pads the trailing
dimensions of that field to a fixed size first. `collate_by_modality` groups a mixed
batch into one such batch per modality.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import get_worker_info


def fit_trailing(t: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Center-crop or zero-pad the last len(size) dimensions of `t` to `size`."""
    k = len(size)
    lead = t.shape[: t.ndim - k]
    out = t.new_zeros((*lead, *size))
    src: list[slice] = [slice(None)] * (t.ndim - k)
    dst: list[slice] = [slice(None)] * (t.ndim - k)
    for have, want in zip(t.shape[t.ndim - k :], size, strict=True):
        if have >= want:
            a = (have - want) // 2
            src.append(slice(a, a + want))
            dst.append(slice(0, want))
        else:
            a = (want - have) // 2
            src.append(slice(0, have))
            dst.append(slice(a, a + have))
    out[tuple(dst)] = t[tuple(src)]
    return out


def stack(values: Sequence[torch.Tensor]) -> torch.Tensor:
    """torch.stack; in a DataLoader worker the result is born in shared memory, so
    handing it to the main process copies nothing more (as default_collate does)."""
    if get_worker_info() is None:
        return torch.stack(list(values))
    first = values[0]
    numel = sum(v.numel() for v in values)
    storage = first.untyped_storage()._new_shared(numel * first.element_size(), device=first.device)
    out = first.new(storage).resize_(len(values), *first.shape)
    return torch.stack(list(values), out=out)


def _pad_to(t: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    pads: list[int] = []
    for have, want in zip(reversed(t.shape), reversed(shape), strict=True):
        pads += [0, want - have]
    return F.pad(t, pads) if any(pads) else t


class Collate:
    """A collate_fn for DataLoader; see the module docstring for what it promises."""

    def __init__(self, pad: bool = False, size: Mapping[str, Sequence[int]] | None = None) -> None:
        self.pad = pad
        self.size = dict(size or {})

    def __call__(self, batch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        fields = dict.fromkeys(f for s in batch for f in s)  # union, first-seen order
        for field in fields:
            values = [s.get(field) for s in batch]
            if not all(isinstance(v, torch.Tensor) for v in values):
                out[field] = values
                continue
            if field in self.size:
                values = [fit_trailing(v, self.size[field]) for v in values]
            shape0 = values[0].shape
            if all(v.shape == shape0 for v in values):
                out[field] = stack(values)
            elif self.pad and all(v.ndim == values[0].ndim for v in values):
                target = [max(dims) for dims in zip(*(v.shape for v in values), strict=True)]
                out[field] = stack([_pad_to(v, target) for v in values])
                out[f"{field}_shape"] = torch.tensor([list(v.shape) for v in values])
            else:
                out[field] = values
        return out


collate = Collate()


class CollateByModality:
    """A collate_fn that groups a mixed-modality batch: {modality: collated sub-batch}.

    Each sub-batch holds only its modality's samples, so its fields are stacked tensors
    (or lists of native-size images), never lists padded with None for the samples of
    another modality; feed each to that modality's encoder. `collate_fn` batches each
    group (default `collate`; e.g. `Collate(size={"image": (512, 512)})`).
    """

    def __init__(self, collate_fn: Any = None) -> None:
        self.collate_fn = collate_fn or collate

    def __call__(self, batch: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        groups: dict[str, list[Mapping[str, Any]]] = {}
        for sample in batch:
            groups.setdefault(sample["modality"], []).append(sample)
        return {m: self.collate_fn(g) for m, g in groups.items()}


collate_by_modality = CollateByModality()
