"""Pydantic models, the sample type and the unified label vocabulary."""

from medshard.schemas.models import (
    SCHEMA_VERSION,
    SPLITS,
    ImageDescriptor,
    License,
    Manifest,
    Provenance,
    RawRecord,
    ReleaseInfo,
    ReleaseSplit,
    SampleMeta,
    ShardInfo,
    SignalDescriptor,
    SourceInfo,
    SourceSummary,
    SplitCounts,
    VideoDescriptor,
    VolumeDescriptor,
)
from medshard.schemas.sample import Filtered, Payload, RecordError, Sample

__all__ = [
    "SCHEMA_VERSION", "SPLITS", "Filtered", "ImageDescriptor", "License", "Manifest",
    "Payload", "Provenance", "RawRecord", "RecordError", "ReleaseInfo", "ReleaseSplit", "Sample", "SampleMeta", "ShardInfo",
    "SignalDescriptor", "SourceInfo", "SourceSummary", "SplitCounts", "VideoDescriptor",
    "VolumeDescriptor",
]
