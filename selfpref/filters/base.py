"""The filter contract: decide per row, count every drop with a reason, stream the rows.

A filter reads only the columns it names, batch by batch, over the rows earlier filters kept,
and returns one reason per row (``None`` keeps it). The runner turns those into the kept rows, a
``FilterReport`` per filter and, when asked, an exclusions parquet with a ``filter_reason``.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import polars as pl

Batches = Callable[[], Iterator[pl.DataFrame]]


@dataclasses.dataclass
class FilterReport:
    name: str
    parameters: dict[str, Any]
    input: int
    kept: int
    dropped: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.name, "parameters": self.parameters, "input": self.input,
                "kept": self.kept, "dropped": self.dropped}


class Filter:
    """Subclasses set ``name`` and ``columns`` and implement ``reasons``."""

    name: str = "filter"
    columns: tuple[str, ...] = ()

    def parameters(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and k != "columns"}

    def reasons(self, batches: Batches, n: int) -> list[str | None]:
        """One reason (or None to keep) per row, in the order the batches yield rows."""
        raise NotImplementedError


def gather(batches: Batches, columns: list[str] | None = None) -> pl.DataFrame:
    """All batches as one frame (for filters whose columns are small, e.g. lengths and ids)."""
    frames = [b.select(columns) if columns else b for b in batches()]
    return pl.concat(frames) if frames else pl.DataFrame()


def apply_filters(df: pl.DataFrame, filters: list[Filter], batch_size: int = 50_000
                  ) -> tuple[pl.DataFrame, list[FilterReport], pl.DataFrame]:
    """In memory: (kept rows, reports, dropped rows with ``filter_reason``)."""
    alive = np.ones(df.height, dtype=bool)
    why: list[str | None] = [None] * df.height
    reports = []
    for f in filters:
        index = np.flatnonzero(alive)
        view = df[index]

        def batches(view: pl.DataFrame = view) -> Iterator[pl.DataFrame]:
            for start in range(0, view.height, batch_size):
                yield view.slice(start, batch_size).select(list(f.columns) or view.columns)

        reasons = f.reasons(batches, len(index))
        reports.append(_report(f, reasons))
        for i, r in zip(index, reasons):
            if r is not None:
                alive[i], why[i] = False, r
    dropped = df.filter(pl.Series(~alive)).with_columns(
        pl.Series("filter_reason", [w for w in why if w is not None], dtype=pl.String))
    return df.filter(pl.Series(alive)), reports, dropped


def _report(f: Filter, reasons: list[str | None]) -> FilterReport:
    counts = collections.Counter(r for r in reasons if r is not None)
    if len(reasons) and any(r == "" for r in reasons):
        raise ValueError(f"filter {f.name} dropped a row without a reason")
    return FilterReport(f.name, f.parameters(), len(reasons), len(reasons) - sum(counts.values()),
                        dict(sorted(counts.items())))
