"""Length filters (SSO A.1.4 steps 1 and 3) and one pair per prompt."""

from __future__ import annotations

import numpy as np
import polars as pl

from selfpref import SelfprefError
from selfpref.filters.base import Batches, Filter, gather

_LENGTHS = [pl.col("prompt_id"), pl.col("chosen").str.len_chars().alias("lc"),
            pl.col("rejected").str.len_chars().alias("lr")]


def _lengths(batches: Batches) -> pl.DataFrame:
    frames = [b.select(_LENGTHS) for b in batches()]
    return pl.concat(frames) if frames else pl.DataFrame(schema={"prompt_id": pl.String, "lc": pl.UInt32, "lr": pl.UInt32})


class MaxLengthDiff(Filter):
    """Drop pairs whose chosen and rejected lengths differ by more than ``max_diff`` characters."""

    name = "length_difference"
    columns = ("prompt_id", "chosen", "rejected")

    def __init__(self, max_diff: int = 3000) -> None:
        if isinstance(max_diff, bool) or not isinstance(max_diff, int) or max_diff < 0:
            raise SelfprefError(f"--max-length-diff {max_diff}: must be a whole number of "
                                "characters >= 0, e.g. 3000")
        self.max_diff = max_diff

    def reasons(self, batches: Batches, n: int) -> list[str | None]:
        df = _lengths(batches)
        diff = (df["lc"].cast(pl.Int64) - df["lr"].cast(pl.Int64)).abs().to_numpy()
        return ["length_difference" if d > self.max_diff else None for d in diff.tolist()]


class OnePerPrompt(Filter):
    """Keep the first pair of each prompt."""

    name = "one_per_prompt"
    columns = ("prompt_id",)

    def reasons(self, batches: Batches, n: int) -> list[str | None]:
        first = gather(batches)["prompt_id"].is_first_distinct().to_numpy()
        return [None if f else "extra_pair_for_prompt" for f in first.tolist()]


class LengthBalance(Filter):
    """As many chosen-longer as chosen-shorter pairs, then one pair per prompt (SSO A.1.4 step 3).

    Pairs of equal length count on neither side and are kept. The larger side is subsampled
    uniformly with ``seed``, so the same seed gives the same rows.
    """

    name = "length_balance"
    columns = ("prompt_id", "chosen", "rejected")

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def reasons(self, batches: Batches, n: int) -> list[str | None]:
        df = _lengths(batches)
        lc, lr = df["lc"].to_numpy(), df["lr"].to_numpy()
        longer, shorter = np.flatnonzero(lc > lr), np.flatnonzero(lc < lr)
        big, small = (longer, shorter) if len(longer) > len(shorter) else (shorter, longer)
        rng = np.random.default_rng(self.seed)
        drop = np.zeros(len(df), dtype=bool)
        drop[rng.choice(big, size=len(big) - len(small), replace=False)] = True
        reasons: list[str | None] = ["length_imbalance" if d else None for d in drop.tolist()]
        keep_ids = df["prompt_id"].filter(pl.Series(~drop))
        first = np.zeros(len(df), dtype=bool)
        first[np.flatnonzero(~drop)[keep_ids.is_first_distinct().to_numpy()]] = True
        return [r if r else (None if first[i] else "extra_pair_for_prompt")
                for i, r in enumerate(reasons)]
