"""The training data as a deterministic, resumable, rank-sharded stream of batches.

Every random draw of the data is a function of (seed, step, position in the batch): the sample order comes from
per-epoch permutations of `seed`, each item's occlusion and flip from a seed made of (seed, step, position). A run
resumed at step k therefore sees exactly the batches an uninterrupted run would have seen.
"""
from __future__ import annotations

import random
from typing import Any, Iterator

import numpy as np
import torch

from realtime.errors import UnveilError
from trainer.config import TrainConfig


def item_seed(seed: int, step: int, position: int) -> int:
    return int(np.random.SeedSequence([seed, step, position]).generate_state(1)[0])


class StepBatches(torch.utils.data.Sampler):
    """Batches for steps start..stop-1: lists of (dataset index, item seed). The global batch of a step is
    positions step*B*W .. of an endless stream of per-epoch permutations of `seed`; rank r takes its B of them."""

    def __init__(self, size: int, batch_size: int, seed: int, start: int, stop: int, rank: int = 0, world: int = 1):
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.start, self.stop, self.rank, self.world = start, stop, rank, world
        self._epoch, self._perm = -1, np.arange(size)

    def _index(self, position: int) -> int:
        epoch = position // self.size
        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.size)
        return int(self._perm[position % self.size])

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        global_batch = self.batch_size * self.world
        for step in range(self.start, self.stop):
            first = step * global_batch + self.rank * self.batch_size
            yield [(self._index(first + i), item_seed(self.seed, step, self.rank * self.batch_size + i))
                   for i in range(self.batch_size)]

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


class SeededItems(torch.utils.data.Dataset):
    """Fetches item `index` with the global RNGs (random, numpy, torch) seeded from the item seed, then restores
    them, so an item's random occlusion and flip depend only on its seed -- not on the worker or what came before."""

    def __init__(self, dataset: torch.utils.data.Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, seed = key
        saved = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        try:
            return self.dataset[index]
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.random.set_rng_state(saved[2])


def tensors_only(items: list[dict]) -> dict:
    """Collate: stack tensors / arrays, keep strings (position, size, kind) as lists."""
    out: dict[str, Any] = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if isinstance(values[0], torch.Tensor):
            out[key] = torch.stack(values)
        elif isinstance(values[0], np.ndarray):
            out[key] = torch.from_numpy(np.stack(values))
        else:
            out[key] = values
    return out


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def device_batch(batch: dict, device: torch.device) -> dict:
    """to_device, and a batch of sequences flattened to per-frame entries (trainer.sequence_data.flatten_sequences)."""
    from trainer.sequence_data import flatten_sequences, is_sequence_batch

    batch = to_device(batch, device)
    return flatten_sequences(batch) if is_sequence_batch(batch) else batch


def open_datasets(config: TrainConfig):
    """(face store, training set, fixed validation subset)."""
    from trainer.data import FaceStore, OccludedFaces

    store = FaceStore(config.data.path)
    if config.data.sequence is not None:
        from trainer.sequence_data import SequenceFaces

        train_set = SequenceFaces(store, "train", config.data.sequence, config.data.protocol, seed=config.seed, fixed=False,
                                  synth_options=config.data.occlusion)
        val_full = SequenceFaces(store, "val", config.data.sequence, config.data.protocol, seed=config.seed, fixed=True, flip=False,
                                 synth_options=config.data.occlusion)
        val_set = torch.utils.data.Subset(val_full, range(min(config.data.val_size, len(val_full))))
        return store, train_set, val_set
    train_set = OccludedFaces(store, "train", config.data.protocol, seed=config.seed, fixed=False, flip=True,
                              synth_options=config.data.occlusion)
    val_full = OccludedFaces(store, "val", config.data.protocol, seed=config.seed, fixed=True, flip=False,
                             synth_options=config.data.occlusion)
    if len(train_set) == 0 or len(val_full) == 0:
        raise UnveilError(f"dataset {config.data.path} has an empty train or val split")
    val_set = torch.utils.data.Subset(val_full, range(min(config.data.val_size, len(val_full))))
    return store, train_set, val_set
