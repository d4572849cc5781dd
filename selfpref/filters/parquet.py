"""Filtering a dataset folder as a stream of Arrow record batches into a derived folder.

Each filter reads only its columns for the rows still alive; the kept rows are then streamed
into the new folder (and dropped rows, with ``filter_reason``, into an exclusions parquet).
Memory is a few bytes per row plus one batch, whatever the dataset's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import cast

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from selfpref.data.atomic import atomic_path

BATCH_ROWS = 65_536


class ParquetRows:
    """The rows of a dataset's parquet files, read in batches of chosen columns."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files
        self.n = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        self.schema = pq.ParquetFile(files[0]).schema_arrow
        self.columns = self.schema.names

    def batches(self, columns: list[str] | None, alive: np.ndarray | None = None) -> Iterator[pl.DataFrame]:
        offset = 0
        for f in self.files:
            for rb in pq.ParquetFile(f).iter_batches(batch_size=BATCH_ROWS, columns=columns):
                # A Table gives a DataFrame; polars types from_arrow as frame-or-series.
                df = cast(pl.DataFrame, pl.from_arrow(pa.Table.from_batches([rb])))
                if alive is not None:
                    df = df.filter(pl.Series(alive[offset : offset + rb.num_rows]))
                offset += rb.num_rows
                if df.height:
                    yield df


def kept_batches(rows: ParquetRows, alive: np.ndarray) -> Iterator[pl.DataFrame]:
    empty = True
    for df in rows.batches(None, alive):
        empty = False
        yield df
    if empty:
        yield cast(pl.DataFrame, pl.from_arrow(rows.schema.empty_table()))


def write_exclusions(rows: ParquetRows, alive: np.ndarray, reason: np.ndarray, path: Path) -> int:
    """Dropped rows with a ``filter_reason`` column; returns how many were written."""
    dropped = ~alive
    reasons = reason[dropped].tolist()
    writer, written = None, 0
    with atomic_path(path) as tmp:
        for df in rows.batches(None, dropped):
            df = df.with_columns(pl.Series("filter_reason", reasons[written : written + df.height], dtype=pl.String))
            table = df.to_arrow()
            writer = writer or pq.ParquetWriter(tmp, table.schema, compression="zstd")
            writer.write_table(table.cast(writer.schema))
            written += df.height
        if writer is None:
            df = cast(pl.DataFrame, pl.from_arrow(rows.schema.empty_table())).with_columns(pl.lit(None, pl.String).alias("filter_reason"))
            df.write_parquet(tmp)
        else:
            writer.close()
    return written
