"""Pydantic models, the sample type and the unified label vocabulary."""

from medshard.schemas.models import (
    PAYLOAD_KINDS,
    SCHEMA_VERSION,
    SPLITS,
    ArrayDescriptor,
    EventsDescriptor,
    GraphDescriptor,
    ImageDescriptor,
    License,
    Manifest,
    MaskDescriptor,
    PayloadDescriptor,
    Provenance,
    PublishedCounts,
    RawRecord,
    ReleaseInfo,
    ReleaseSplit,
    SampleMeta,
    ShardInfo,
    SignalDescriptor,
    SourceInfo,
    SourceSummary,
    SplitCounts,
    TextDescriptor,
    VectorDescriptor,
    VideoDescriptor,
    VolumeDescriptor,
)
from medshard.schemas.sample import BadRow, Filtered, Payload, RecordError, Sample

__all__ = [
    "PAYLOAD_KINDS", "SCHEMA_VERSION", "SPLITS", "ArrayDescriptor", "BadRow", "EventsDescriptor",
    "Filtered", "GraphDescriptor", "ImageDescriptor", "License", "Manifest", "MaskDescriptor",
    "Payload", "PayloadDescriptor", "Provenance", "PublishedCounts", "RawRecord", "RecordError", "ReleaseInfo", "ReleaseSplit", "Sample",
    "SampleMeta", "ShardInfo", "SignalDescriptor", "SourceInfo", "SourceSummary", "SplitCounts",
    "TextDescriptor", "VectorDescriptor", "VideoDescriptor", "VolumeDescriptor",
]
