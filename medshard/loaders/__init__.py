"""Streaming PyTorch loading of medshard builds: `ShardDataset`, `ShardLoader`, `collate`.

Needs only `medshard[torch]`: nothing here imports the ETL stack (Beam, pydicom,
mne, SimpleITK, nibabel, wfdb); Pillow is imported only when an image is decoded.
"""

from medshard.loaders.collate import Collate, CollateByModality, collate, collate_by_modality
from medshard.loaders.dataset import SampleError, ShardDataset, load
from medshard.loaders.loader import ShardLoader
from medshard.loaders.options import DecodeOptions, ReadOptions, SamplingOptions
from medshard.loaders.remote import ShardError

__all__ = ["Collate", "CollateByModality", "DecodeOptions", "ReadOptions", "SampleError",
           "SamplingOptions", "ShardDataset", "ShardError", "ShardLoader", "collate",
           "collate_by_modality", "load"]
