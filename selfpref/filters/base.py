"""The filter contract: decide per row, count every drop with a reason.

A filter reads only the columns it names, batch by batch, over the rows earlier filters kept,
and returns one reason per row (``None`` keeps it); ``filters.runner`` applies filters in order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

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
