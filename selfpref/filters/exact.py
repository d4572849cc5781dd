"""Exact duplicates after whitespace/case normalisation, on the prompt or on the whole pair."""

from __future__ import annotations

import numpy as np
import polars as pl

from selfpref import SelfprefError
from selfpref.filters.base import Batches, Filter


def normalized(col: str) -> pl.Expr:
    return pl.col(col).str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()


class ExactDedup(Filter):
    name = "exact_dedup"

    def __init__(self, field: str = "prompt") -> None:
        if field not in ("prompt", "pair"):
            raise SelfprefError(f"--dedup-field {field!r}: use prompt or pair")
        self.field = field
        self.columns = ("prompt",) if field == "prompt" else ("prompt", "chosen", "rejected")

    def reasons(self, batches: Batches, n: int) -> list[str | None]:
        seen: set[int] = set()
        out: list[str | None] = []
        for batch in batches():
            key = (normalized("prompt") if self.field == "prompt" else
                   pl.concat_str([normalized(c) for c in self.columns], separator="\x1f"))
            # 64-bit hashes of the normalised text: 1M rows cost 8 MB, not the texts themselves.
            hashes = batch.select(key.hash(seed=17)).to_series().to_numpy().astype(np.uint64)
            for h in hashes.tolist():
                out.append("exact_duplicate" if h in seen else None)
                seen.add(h)
        return out
