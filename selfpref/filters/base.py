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

from selfpref import SelfprefError

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
        reasons = f.reasons(lambda: rows.batches(list(f.columns) or None, snapshot), len(index))
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
