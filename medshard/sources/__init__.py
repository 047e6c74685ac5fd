"""Dataset sources: one module per dataset, behind the `Source` contract."""

from medshard.sources.base import MissingRawData, Source
from medshard.sources.registry import (
    UnknownSource,
    available_sources,
    get_source,
    source_class,
)

__all__ = [
    "MissingRawData", "Source", "UnknownSource", "available_sources", "get_source",
    "source_class",
]
