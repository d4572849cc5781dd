"""Data cards: README.md with a Hub-valid YAML header, funnel, statistics, plots, separability."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import polars as pl

from selfpref.datacards.plots import write_plots
from selfpref.datacards.render import render
from selfpref.datacards.separability import separability
from selfpref.data.stats import summarize
from selfpref.data.store import RECORD_FILE, BuildRecord


def write_card(rows: pl.LazyFrame | pl.DataFrame, record: BuildRecord, folder: Path,
               license: str | None = None) -> dict[str, Any]:
    """Write README.md and plots into ``folder``; returns the separability result."""
    summary = summarize(rows)
    sample = rows.lazy().select("chosen", "rejected", "confidence").head(20_000).collect()
    sep = separability(sample["chosen"].to_list(), sample["rejected"].to_list(), seed=record.seed or 0)
    plots = write_plots(sample, record.funnel, folder)
    (folder / "README.md").write_text(render(record, summary, sep, plots, license))
    return sep


def card_writer(license: str | None = None) -> Callable[[pl.LazyFrame, BuildRecord, Path], None]:
    """The ``card`` hook for store.write_dataset."""

    def write(rows: pl.LazyFrame, record: BuildRecord, folder: Path) -> None:
        sep = write_card(rows, record, folder, license)
        # the separability result belongs in the build record too, for `iterate` summaries
        data = json.loads((folder / RECORD_FILE).read_text())
        data.setdefault("stats", {})["separability"] = sep
        (folder / RECORD_FILE).write_text(json.dumps(data, indent=2, default=str) + "\n")

    return write
