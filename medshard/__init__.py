"""medshard: standardized, sharded, versioned releases of public clinical datasets."""

__version__ = "0.1.0"


def load(*args, **kwargs):
    """Short form of `medshard.loaders.ShardDataset(...)`."""
    from medshard.loaders import ShardDataset

    return ShardDataset(*args, **kwargs)
