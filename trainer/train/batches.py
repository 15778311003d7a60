"""Batches grouped by length and padded only to their longest sample.

The order of an epoch is a pure function of (seed, epoch): a resumed run
rebuilds it and skips the batches already seen, so it sees the same data in
the same order as an uninterrupted one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from trainer.train.samples import IGNORE, Sample

# Samples are sorted by length inside windows of this many batches: similar lengths
# share a batch (little padding) while the epoch order stays random.
GROUP_WINDOW = 32


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, T) right-padded
    attention_mask: torch.Tensor  # (B, T) 1 on real tokens
    labels: torch.Tensor  # (B, T) IGNORE on context and padding

    @property
    def real_tokens(self) -> int:
        return int(self.attention_mask.sum())

    @property
    def label_tokens(self) -> int:
        return int((self.labels != IGNORE).sum())

    def to(self, device: torch.device) -> Batch:
        return Batch(self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device))


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Index batches for one epoch: shuffled, sorted by length within windows, batch order shuffled again."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * GROUP_WINDOW
    batches: list[list[int]] = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w : w + window], key=lambda i: lengths[i], reverse=True)
        batches.extend(chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def sequential_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Evaluation batches: sorted by length, no randomness."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    return [order[b : b + batch_size] for b in range(0, len(order), batch_size)]


def collate(samples: list[Sample], pad_id: int) -> Batch:
    longest = max(len(s) for s in samples)
    ids = torch.full((len(samples), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(samples), longest), dtype=torch.long)
    labels = torch.full((len(samples), longest), IGNORE, dtype=torch.long)
    for row, s in enumerate(samples):
        n = len(s)
        ids[row, :n] = torch.tensor(s.input_ids)
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(s.labels)
    return Batch(ids, mask, labels)
