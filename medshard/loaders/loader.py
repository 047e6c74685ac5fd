"""`ShardLoader`: a DataLoader that knows how far an epoch has gone, for exact resume.

With worker processes the dataset object in the main process never sees what the
workers yielded. The loader counts batches it has delivered; since each worker's
sample count is known in advance and PyTorch takes batches from workers in
round-robin order (in_order=True, the default), that count says exactly how many
samples each worker has delivered, and which worker the next batch comes from. After a
deterministic resume DataLoader worker i plays the slot `(first + i) % num_workers`,
`first` being the slot the interrupted run's next batch came from, so that the resumed
loader yields the same batches in the same order as one that never stopped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from torch.utils.data import DataLoader

from medshard.errors import UserError
from medshard.loaders.assign import round_robin
from medshard.loaders.collate import collate
from medshard.loaders.dataset import ShardDataset


class ShardLoader(DataLoader):
    """DataLoader over a ShardDataset with `state_dict()` / `load_state_dict()`.

    Takes DataLoader's arguments; `collate_fn` defaults to medshard's `collate`.
    Needs a `batch_size`, `in_order=True` and `persistent_workers=False` (workers must
    see each epoch's dataset state).
    """

    def __init__(self, dataset: ShardDataset, batch_size: int = 1, **kwargs: Any) -> None:
        if not isinstance(dataset, ShardDataset):
            raise UserError("ShardLoader needs a medshard ShardDataset")
        if batch_size is None:
            raise UserError("ShardLoader needs a batch_size (resume counts batches)")
        if not kwargs.get("in_order", True) or kwargs.get("persistent_workers", False):
            raise UserError("ShardLoader needs in_order=True and persistent_workers=False")
        kwargs.setdefault("collate_fn", collate)
        super().__init__(dataset, batch_size=batch_size, **kwargs)
        self._batches = 0

    def __iter__(self) -> Iterator[Any]:
        self.dataset.resolve_world()  # type: ignore[attr-defined]
        self._batches = 0
        for batch in super().__iter__():
            self._batches += 1
            yield batch

    def __len__(self) -> int:
        """Batches per epoch on this rank, exactly (each worker batches its own samples)."""
        ds: ShardDataset = self.dataset  # type: ignore[assignment]
        ds.resolve_world()
        bs: int = self.batch_size  # type: ignore[assignment]
        sizes = ds.worker_sizes(max(1, self.num_workers))
        return sum(n // bs if self.drop_last else -(-n // bs) for n in sizes)

    def set_epoch(self, epoch: int) -> None:
        """Same as `dataset.set_epoch(epoch)`: the order of the next iteration."""
        self.dataset.set_epoch(epoch)  # type: ignore[attr-defined]

    def state_dict(self) -> dict[str, Any]:
        """The dataset's resume state after the batches delivered so far in this epoch."""
        ds: ShardDataset = self.dataset  # type: ignore[assignment]
        workers = max(1, self.num_workers)
        sizes = ds.worker_sizes(workers)
        if self.num_workers == 0:
            consumed, next_slot = [min(self._batches * self.batch_size, sizes[0])], 0  # type: ignore[operator]
        else:
            consumed, next_slot = round_robin(sizes, self.batch_size, self._batches,  # type: ignore[arg-type]
                                              self.drop_last, ds.first_slot(workers))
        state = ds.state_dict(worker_consumed=consumed, next_worker=next_slot)
        state["batches"] = self._batches
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume at the next iteration; see ShardDataset.state_dict for what holds."""
        self.dataset.load_state_dict(state)  # type: ignore[attr-defined]
        self._batches = 0
