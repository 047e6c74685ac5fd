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

    `kind` says which standardization applies:
      - "signal": `data` is a float array C x T at `descriptor["sampling_rate_hz"]`
        with `descriptor["channels"]` and `descriptor["units"]`.
      - "image": `data` is the source's own encoded bytes (jpeg/png) or a numpy
        array (H x W or H x W x C) to be stored losslessly.
      - "volume": `data` is a numpy array with `descriptor` giving spacing/affine.
      - "video": `data` is the source's encoded bytes (e.g. AVI) or a T x H x W x C array.
      - "array": any other numpy array stored as .npy as is (segmentations, masks).
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
        total = 0
        for p in self.payloads.values():
            if isinstance(p.data, np.ndarray):
                total += p.data.nbytes
            elif isinstance(p.data, (bytes, bytearray, memoryview)):
                total += len(p.data)
        return total


class Filtered(Exception):
    """Raised by a source or transform when a record is excluded by a rule, not broken.

    The message is the reason, counted in the manifest (e.g. "first 15 samples zero").
    """


class RecordError(Exception):
    """A record that cannot be read or is invalid; it goes to quarantine with this message."""
