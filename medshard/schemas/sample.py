"""The in-memory sample a source yields, before the pipeline standardizes it.

A source fills what it knows from the raw files: the payload at its native
rate / resolution, the classes of its own label space, allow-listed metadata.
The pipeline then standardizes the payload (resampling, normalization), maps
classes to unified concepts, assigns split and pseudonymized subject, and
validates the result against `SampleMeta`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Payload:
    """One payload member of a sample.

    `kind` picks the encoder (`medshard.pipeline.encoders`); a sample may carry several
    payloads of one kind under different roles (a mammogram's `cc` and `mlo` views):
      - "signal": `data` is a float array C x T at `descriptor["sampling_rate_hz"]`
        with `descriptor["channels"]` and `descriptor["units"]`.
      - "image": `data` is the source's own encoded bytes (jpeg/png) or a numpy
        array (H x W or H x W x C) to be stored losslessly.
      - "mask": `data` is a 2-D integer label map (stored as PNG, values unchanged);
        `descriptor` may give `label_names` and `annotates` (the image role it lies on).
      - "volume": `data` is a numpy array with `descriptor` giving spacing/affine.
      - "array": any other numpy array stored as .npy as is (e.g. a 3-D segmentation;
        `descriptor` may give `label_names` and `annotates`).
      - "video": `data` is the source's encoded bytes (e.g. AVI).
      - "graph": `data` is {"edge_index": 2 x E ints, optional "edge_weight": E,
        "node_features": N x F, "node_ids": N strings}; `descriptor["directed"]` is required.
      - "vector": `data` is a 1-D numeric array; `descriptor["feature_ids"]` names each entry.
      - "events": `data` is {column: values} of equal length, `time` and `code` required;
        `descriptor` gives `time_unit` and `time_origin`.
      - "text": `data` is a str (report, question, answer); `descriptor` may give
        `text_kind` and `language`.
    """

    kind: str
    data: Any
    descriptor: dict[str, Any] = field(default_factory=dict)


@dataclass
class Sample:
    """What `Source.load` yields: one training example in the source's own terms.

    The pipeline names it `<source>_<record_id>`, or `<source>_<record_id>_<key_suffix>`
    when one record gives several samples (EEG windows: `w0003`); subject, split and
    provenance come from the record, so a source never repeats them.
    """

    classes: list[str]
    source_labels: dict[str, Any]
    payloads: dict[str, Payload]
    meta: dict[str, Any] = field(default_factory=dict)
    task: str = "classification"
    key_suffix: str | None = None

    def nbytes(self) -> int:
        """Bytes the payloads hold in memory (arrays, bytes, text, and the columns of a
        graph or events dict)."""
        return sum(_nbytes(p.data) for p in self.payloads.values())


def _nbytes(data: Any) -> int:
    if isinstance(data, np.ndarray):
        return data.nbytes
    if isinstance(data, (bytes, bytearray, memoryview)):
        return len(data)
    if isinstance(data, str):
        return len(data.encode("utf-8"))
    if isinstance(data, dict):
        return sum(_nbytes(v) for v in data.values())
    return 0


class Filtered(Exception):
    """Raised by a source or transform when a record is excluded by a rule, not broken.

    The message is the reason, counted in the manifest (e.g. "first 15 samples zero").
    """


class RecordError(Exception):
    """A record that cannot be read or is invalid; it goes to quarantine with this message."""


@dataclass(frozen=True)
class BadRow:
    """What `list_records` yields for a row of an index file it cannot make a record of.

    The build quarantines it at stage `list` with the file (relative to the source root)
    and line, counts it, and goes on (`Source.csv_records` yields these).
    """

    file: str
    line: int
    reason: str
    error_type: str = "ValueError"
