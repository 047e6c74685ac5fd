"""medshard: standardized, sharded, versioned releases of public clinical datasets."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`medshard.load` is `medshard.loaders.load` (`ShardDataset(...)`, with its signature
    and docstring), imported on first use: `import medshard` needs no torch."""
    if name == "load":
        from medshard.loaders import load

        return load
    raise AttributeError(f"module 'medshard' has no attribute {name!r}")
