"""Encoders per modality, fusion of several roles, and one head over the unified vocabulary.

Encoders map a batch of one payload role to `dim` features:
  - `resnet1d`: a 1-D ResNet (basic blocks) for ECG and other signals (C x T);
  - `cnn_transformer`: a strided 1-D CNN then a transformer encoder, for EEG (C x T);
  - `resnet2d`: a small 2-D ResNet for images (C x H x W);
  - `cnn3d`: a small 3-D CNN for volumes (1 x D x H x W);
  - `timm:NAME` / `torchvision:NAME`: any model of those libraries, when installed
    (its classifier removed, its features projected to `dim`).
A sample with several roles (e.g. MIMIC-IV: signal + image + text) is encoded role by
role and fused: `late` (mean of role features; with the linear head this is the mean of
the per-role logits), `mlp` (concatenation + MLP) or `attention` (a learned query
attending over the role tokens). Missing roles are left out of the fusion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from medshard.errors import UserError
from medshard.loaders.collate import fit_trailing


class BasicBlock(nn.Module):
    """Two convolutions with a residual connection (1-D, 2-D or 3-D)."""

    def __init__(self, conv: Any, norm: Any, cin: int, cout: int, stride: int, k: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(cin, cout, k, stride=stride, padding=k // 2, bias=False), norm(cout),
            nn.ReLU(inplace=True),
            conv(cout, cout, k, padding=k // 2, bias=False), norm(cout),
        )
        self.skip = (
            nn.Identity() if stride == 1 and cin == cout
            else nn.Sequential(conv(cin, cout, 1, stride=stride, bias=False), norm(cout))
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


_OPS = {
    1: (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d, nn.AdaptiveAvgPool1d),
    2: (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d),
    3: (nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d, nn.AdaptiveAvgPool3d),
}


class ResNet(nn.Module):
    """A ResNet with basic blocks in `ndim` spatial dimensions, globally pooled to `dim`."""

    def __init__(self, ndim: int, in_channels: int, dim: int, width: int = 64,
                 depth: Sequence[int] = (2, 2, 2, 2), kernel: int = 3, stem_kernel: int = 7) -> None:
        super().__init__()
        conv, norm, pool, gap = _OPS[ndim]
        layers: list[nn.Module] = [
            conv(in_channels, width, stem_kernel, stride=2, padding=stem_kernel // 2, bias=False),
            norm(width), nn.ReLU(inplace=True), pool(3, stride=2, padding=1),
        ]
        cin = width
        for stage, blocks in enumerate(depth):
            cout = width * 2**stage
            for b in range(blocks):
                layers.append(BasicBlock(conv, norm, cin, cout, 2 if b == 0 and stage else 1, kernel))
                cin = cout
        layers += [gap(1), nn.Flatten(), nn.Linear(cin, dim)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNNTransformer(nn.Module):
    """Strided 1-D convolutions (x16 shorter), then a transformer encoder; mean over time."""

    def __init__(self, in_channels: int, dim: int, layers: int = 2, heads: int = 4,
                 dropout: float = 0.1) -> None:
        super().__init__()
        convs: list[nn.Module] = []
        cin = in_channels
        for _ in range(4):
            convs += [nn.Conv1d(cin, dim, 7, stride=2, padding=3), nn.BatchNorm1d(dim), nn.GELU()]
            cin = dim
        self.cnn = nn.Sequential(*convs)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout, batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.cnn(x).transpose(1, 2)  # B x T' x dim
        return self.transformer(tokens).mean(dim=1)


class ExternalEncoder(nn.Module):
    """A timm or torchvision model without its classifier, projected to `dim` features."""

    def __init__(self, spec: str, in_channels: int, dim: int, pretrained: bool,
                 probe_size: Sequence[int]) -> None:
        super().__init__()
        library, _, name = spec.partition(":")
        try:
            if library == "timm":
                import timm

                self.backbone = timm.create_model(name, pretrained=pretrained, num_classes=0,
                                                  in_chans=in_channels)
            else:
                import torchvision

                weights = "DEFAULT" if pretrained else None
                self.backbone = torchvision.models.get_model(name, weights=weights)
                _drop_last_linear(self.backbone)
        except ImportError as e:
            raise UserError(f"encoder {spec!r} needs the {library} package ({e}); install it "
                            "or use a built-in encoder (resnet1d, cnn_transformer, resnet2d, cnn3d)"
                            ) from None
        with torch.no_grad():
            was = self.backbone.training
            self.backbone.eval()
            features = self.backbone(torch.zeros(1, in_channels, *probe_size)).shape[-1]
            self.backbone.train(was)
        self.project = nn.Linear(features, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.backbone(x).flatten(1))


def _drop_last_linear(model: nn.Module) -> None:
    """Replace the last nn.Linear of a torchvision model (its classifier) with Identity."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = name
    if last is None:
        raise UserError("this torchvision model has no linear classifier to remove")
    parent = model.get_submodule(last.rpartition(".")[0]) if "." in last else model
    setattr(parent, last.rpartition(".")[2], nn.Identity())


def build_encoder(spec: str, in_channels: int, dim: int, options: Mapping[str, Any],
                  probe_size: Sequence[int]) -> nn.Module:
    """The encoder named by `spec` (see the module docstring)."""
    opts = dict(options)
    if spec == "resnet1d":
        return ResNet(1, in_channels, dim, opts.get("width", 32), opts.get("depth", (2, 2, 2, 2)),
                      kernel=opts.get("kernel", 7), stem_kernel=opts.get("stem_kernel", 15))
    if spec == "cnn_transformer":
        return CNNTransformer(in_channels, dim, opts.get("layers", 2), opts.get("heads", 4),
                              opts.get("dropout", 0.1))
    if spec == "resnet2d":
        return ResNet(2, in_channels, dim, opts.get("width", 32), opts.get("depth", (2, 2, 2, 2)))
    if spec == "cnn3d":
        return ResNet(3, in_channels, dim, opts.get("width", 16), opts.get("depth", (1, 1, 1)))
    if spec.startswith(("timm:", "torchvision:")):
        return ExternalEncoder(spec, in_channels, dim, bool(opts.get("pretrained", False)), probe_size)
    raise UserError(f"unknown encoder {spec!r}: use resnet1d, cnn_transformer, resnet2d, cnn3d, "
                    "timm:NAME or torchvision:NAME")


class Fusion(nn.Module):
    """Fuses R role features (B x R x dim, with a B x R presence mask) into B x dim."""

    def __init__(self, kind: str, roles: int, dim: int) -> None:
        super().__init__()
        if kind not in ("late", "mlp", "attention"):
            raise UserError(f"fusion {kind!r} is not late, mlp or attention")
        self.kind = kind
        if kind == "mlp":
            self.mlp = nn.Sequential(nn.Linear(roles * (dim + 1), dim), nn.GELU(), nn.Linear(dim, dim))
        elif kind == "attention":
            self.query = nn.Parameter(torch.zeros(1, 1, dim))
            self.role_embedding = nn.Parameter(torch.zeros(1, roles, dim))
            self.attention = nn.MultiheadAttention(dim, 4 if dim % 4 == 0 else 1, batch_first=True)

    def forward(self, features: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        weights = present.to(features.dtype).unsqueeze(-1)
        if self.kind == "late":
            return (features * weights).sum(1) / weights.sum(1).clamp_min(1)
        if self.kind == "mlp":
            return self.mlp(torch.cat([features * weights, weights], dim=-1).flatten(1))
        tokens = features + self.role_embedding
        query = self.query.expand(len(features), -1, -1)
        fused, _ = self.attention(query, tokens, tokens, key_padding_mask=~present)
        return fused.squeeze(1)


class MultitaskModel(nn.Module):
    """Encoders per (modality, role), fusion per multi-role modality, one vocabulary head.

    `forward(batch)` takes a collated batch (fields: `modality` and the payload roles,
    each a stacked tensor or a list with None for samples without that role) and
    returns B x V logits.
    """

    def __init__(self, encoders: Mapping[str, Mapping[str, nn.Module]], fusion: str,
                 dim: int, vocabulary_size: int) -> None:
        super().__init__()
        self.roles = {m: list(r) for m, r in encoders.items()}
        self.encoders = nn.ModuleDict(
            {_key(m): nn.ModuleDict(dict(r)) for m, r in encoders.items()}
        )
        self.fusions = nn.ModuleDict(
            {_key(m): Fusion(fusion, len(r), dim) for m, r in encoders.items() if len(r) > 1}
        )
        self.dim = dim
        self.head = nn.Linear(dim, vocabulary_size)

    def features(self, batch: Mapping[str, Any]) -> torch.Tensor:
        modalities = list(batch["modality"])
        device = self.head.weight.device
        out = torch.zeros(len(modalities), self.dim, device=device)
        for modality in dict.fromkeys(modalities):
            if modality not in self.roles:
                raise UserError(f"no encoder for modality {modality!r}; add "
                                f"[model.encoders.{modality}] to the config or leave its source out")
            rows = [i for i, m in enumerate(modalities) if m == modality]
            out[rows] = self._encode_group(modality, rows, batch, device).to(out.dtype)
        return out

    def _encode_group(self, modality: str, rows: list[int], batch: Mapping[str, Any],
                      device: torch.device) -> torch.Tensor:
        roles = self.roles[modality]
        feats = torch.zeros(len(rows), len(roles), self.dim, device=device)
        present = torch.zeros(len(rows), len(roles), dtype=torch.bool, device=device)
        for r, role in enumerate(roles):
            have = [j for j, i in enumerate(rows) if _item(batch.get(role), i) is not None]
            if not have:
                continue
            x = _gather(batch[role], [rows[j] for j in have], device)
            feats[have, r] = self.encoders[_key(modality)][role](x).to(feats.dtype)
            present[have, r] = True
        if not present.any(dim=1).all():
            lacking = rows[int((~present.any(dim=1)).nonzero()[0])]
            raise UserError(f"sample {batch['key'][lacking]} has none of the roles {roles} that "
                            f"model.encoders.{modality} encodes")
        if len(roles) == 1:
            return feats[:, 0]
        return self.fusions[_key(modality)](feats, present)

    def forward(self, batch: Mapping[str, Any]) -> torch.Tensor:
        return self.head(self.features(batch))

    def load_encoders(self, state: Mapping[str, torch.Tensor], mapping: Mapping[str, str],
                      origin: str) -> list[str]:
        """Copy pretrained encoder weights from another model's `state`; returns the
        encoders loaded ("modality.role").

        `mapping`: this model's "modality.role" -> the pretrained model's "modality.role"
        (e.g. "ehr.signal" -> "ecg.signal"); empty: every encoder both models have.
        """
        own = self.state_dict()
        pairs = dict(mapping) or {f"{m}.{r}": f"{m}.{r}" for m, roles in self.roles.items()
                                  for r in roles}
        loaded: dict[str, torch.Tensor] = {}
        names = []
        for target, source in pairs.items():
            t_prefix, s_prefix = _encoder_prefix(target), _encoder_prefix(source)
            part = {t_prefix + k[len(s_prefix):]: v for k, v in state.items()
                    if k.startswith(s_prefix)}
            if not part:
                if mapping:
                    raise UserError(f"{origin} has no encoder {source!r}")
                continue
            for k, v in part.items():
                if k not in own or own[k].shape != v.shape:
                    raise UserError(f"{origin}: encoder {source!r} does not fit {target!r} ({k}); "
                                    "use the same encoder and options")
            loaded.update(part)
            names.append(target)
        if not loaded:
            raise UserError(f"{origin} has none of this model's encoders; map them with "
                            "model.init_from")
        self.load_state_dict(loaded, strict=False)
        return names


def _encoder_prefix(modality_role: str) -> str:
    modality, _, role = modality_role.rpartition(".")
    if not modality:
        raise UserError(f"{modality_role!r} is not MODALITY.ROLE (e.g. ecg.signal)")
    return f"encoders.{_key(modality)}.{role}."


def _gather(field: torch.Tensor | list[Any], rows: list[int], device: torch.device) -> torch.Tensor:
    """The rows of one payload field as one tensor on `device` (a stacked field is indexed
    in one operation; a list is stacked, padded if sizes differ)."""
    if isinstance(field, torch.Tensor):
        if len(rows) == len(field) and rows == list(range(len(field))):
            return field.to(device, non_blocking=True)
        index = torch.tensor(rows, device=field.device)
        return field.index_select(0, index).to(device, non_blocking=True)
    return _stack_padded([field[i] for i in rows]).to(device, non_blocking=True)


def _stack_padded(values: list[torch.Tensor]) -> torch.Tensor:
    """Stack, zero-padding (centered) to the largest shape when sizes differ (the encoders
    pool globally)."""
    shape = [max(d) for d in zip(*(v.shape for v in values), strict=True)]
    if any(list(v.shape) != shape for v in values):
        values = [fit_trailing(v, shape) for v in values]
    return torch.stack(values)


def _key(modality: str) -> str:
    return modality.replace("-", "_").replace(".", "_")


def _item(field: Any, i: int) -> torch.Tensor | None:
    if field is None:
        return None
    return field[i]


def masked_bce(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy over the concepts each sample's source can express (CLIMB's
    masked multi-label loss), averaged over those entries."""
    loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), labels, reduction="none")
    return (loss * mask).sum() / mask.sum().clamp_min(1)
