"""Padding token sequences into one batch: the one helper generation, scoring and trainers share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def pad(sequences: Sequence[Sequence[int]], value: int, *, side: str = "right") -> tuple[Any, Any]:
    """(ids, mask) as long tensors: ``side="left"`` ends every row where generation starts,
    ``side="right"`` starts every row at position 0 (for scoring whole sequences)."""
    import torch

    if side not in ("left", "right"):
        raise ValueError(f"side={side!r}: use 'left' or 'right'")
    longest = max(len(ids) for ids in sequences)
    ids = torch.full((len(sequences), longest), value, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(sequences):
        if not len(seq):
            continue
        span = slice(longest - len(seq), longest) if side == "left" else slice(0, len(seq))
        ids[row, span] = torch.as_tensor(list(seq), dtype=torch.long)
        mask[row, span] = 1
    return ids, mask
