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
    """SSO A.1.4 step 3: one pair per prompt, as many chosen-longer as chosen-shorter pairs.

    Both conditions hold on the output (balancing first and then keeping one pair per prompt
    undoes the balance). A prompt offers the kinds of pair it has: longer (chosen longer than
    rejected), shorter, or equal length. A prompt with an equal-length pair keeps one of those
    (it counts on neither side). Of the rest, prompts that offer both sides are assigned to the
    side that is short, then the larger side is cut at random, so the kept count is the largest
    that balances. Ties in the choice (which pair of a prompt, which prompts to cut) are drawn
    with ``seed``: the same seed gives the same rows. Reasons: ``extra_pair_for_prompt`` for the
    pairs a prompt does not keep, ``length_imbalance`` for prompts cut to balance.
    """

    name = "length_balance"
    columns = ("prompt_id", "chosen", "rejected")

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def reasons(self, batches: Batches, n: int) -> list[str | None]:
        df = _lengths(batches)
        rng = np.random.default_rng(self.seed)
        lc, lr = df["lc"].to_numpy().astype(np.int64), df["lr"].to_numpy().astype(np.int64)
        side = np.sign(lc - lr)  # 1 chosen longer, -1 chosen shorter, 0 equal
        prompt = df["prompt_id"].to_numpy()
        rows_by_prompt: dict[str, dict[int, list[int]]] = {}
        for i in rng.permutation(len(df)).tolist():  # random order: the kept pair is a seeded draw
            rows_by_prompt.setdefault(prompt[i], {}).setdefault(int(side[i]), []).append(i)
        keep: dict[str, int] = {}  # prompt -> the row it keeps
        longer: list[str] = []
        shorter: list[str] = []
        both: list[str] = []
        for pid, sides in rows_by_prompt.items():
            if 0 in sides:
                keep[pid] = sides[0][0]
            elif 1 in sides and -1 in sides:
                both.append(pid)
            else:
                (longer if 1 in sides else shorter).append(pid)
        # Prompts offering both sides fill the short side first, then split evenly.
        for pid in both:
            (longer if len(longer) <= len(shorter) else shorter).append(pid)
        k = min(len(longer), len(shorter))
        cut: set[str] = set()
        for group, sign in ((longer, 1), (shorter, -1)):
            order = rng.permutation(len(group)).tolist()
            for rank, j in enumerate(order):
                pid = group[j]
                if rank < k:
                    keep[pid] = rows_by_prompt[pid][sign][0]
                else:
                    cut.add(pid)
        kept_rows = set(keep.values())
        return [None if i in kept_rows else "length_imbalance" if prompt[i] in cut
                else "extra_pair_for_prompt" for i in range(len(df))]
