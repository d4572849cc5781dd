"""Running filters in order over rows served in batches: the alive mask, reasons and reports.

The same runner serves parquet files (``filters.parquet.ParquetRows``) and in-memory frames
(``FrameRows``); each filter sees only the rows earlier filters kept.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl

from selfpref import SelfprefError
from selfpref.filters.base import Filter, FilterReport


class FrameRows:
    """An in-memory table served the way ``ParquetRows`` serves files: batches of chosen columns."""

    def __init__(self, df: pl.DataFrame, batch_size: int = 50_000) -> None:
        self.df, self.batch_size = df, batch_size
        self.n, self.columns = df.height, df.columns

    def batches(self, columns: list[str] | None, alive: np.ndarray | None = None) -> Iterator[pl.DataFrame]:
        view = self.df if alive is None else self.df.filter(pl.Series(alive))
        for start in range(0, view.height, self.batch_size):
            yield view.slice(start, self.batch_size).select(columns or view.columns)


def run_filters(rows: Any, filters: list[Filter]) -> tuple[np.ndarray, np.ndarray, list[FilterReport]]:
    """(alive mask, reason per row ('' when kept), reports) for rows served by ``rows.batches``."""
    alive = np.ones(rows.n, dtype=bool)
    reason = np.full(rows.n, "", dtype=object)
    reports = []
    for f in filters:
        missing = [c for c in f.columns if c not in rows.columns]
        if missing:
            raise SelfprefError(f"filter {f.name} needs column '{missing[0]}', which this dataset "
                                "does not have (see `selfpref inspect`)")
        index = np.flatnonzero(alive)
        snapshot = alive.copy()
        reasons = f.reasons(lambda: rows.batches(list(f.columns) or None, snapshot), len(index))  # noqa: B023  (called within this iteration)
        if len(reasons) != len(index):
            raise RuntimeError(f"filter {f.name} gave {len(reasons)} decisions for {len(index)} rows")
        reports.append(_report(f, reasons))
        for i, r in zip(index.tolist(), reasons):
            if r is not None:
                alive[i], reason[i] = False, r
    return alive, reason, reports


def apply_filters(df: pl.DataFrame, filters: list[Filter], batch_size: int = 50_000
                  ) -> tuple[pl.DataFrame, list[FilterReport], pl.DataFrame]:
    """In memory: (kept rows, reports, dropped rows with ``filter_reason``)."""
    alive, reason, reports = run_filters(FrameRows(df, batch_size), filters)
    dropped = df.filter(pl.Series(~alive)).with_columns(
        pl.Series("filter_reason", reason[~alive].tolist(), dtype=pl.String))
    return df.filter(pl.Series(alive)), reports, dropped


def _report(f: Filter, reasons: list[str | None]) -> FilterReport:
    counts = collections.Counter(r for r in reasons if r is not None)
    if len(reasons) and any(r == "" for r in reasons):
        raise ValueError(f"filter {f.name} dropped a row without a reason")
    return FilterReport(f.name, f.parameters(), len(reasons), len(reasons) - sum(counts.values()),
                        dict(sorted(counts.items())))
