"""Data cards: README.md with a Hub-valid YAML header, funnel, statistics, plots, separability."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from selfpref.data.stats import summarize
from selfpref.data.store import RECORD_FILE, BuildRecord
from selfpref.datacards.plots import write_plots
from selfpref.datacards.render import render
from selfpref.datacards.separability import CACHE_FILE
from selfpref.datacards.separability import separability as probe_separability


def write_card(rows: pl.LazyFrame | pl.DataFrame, record: BuildRecord, folder: Path,
               license: str | None = None, *, separability: bool = True) -> dict[str, Any]:
    """Write README.md and plots into ``folder``; returns the separability result.

    The probe reuses embeddings cached in ``folder`` (a card rewritten in place) and in the
    parent's folder (a filtered dataset), and caches its own in ``folder``.
    """
    summary = summarize(rows)
    sample = rows.lazy().select("chosen", "rejected", "confidence").head(20_000).collect()
    if separability:
        sep = probe_separability(rows, folder, seed=record.seed or 0,
                                 reuse=[folder, parent_folder(record)])
    else:
        sep = {"skipped": "--no-separability"}
    plots = write_plots(sample, record.funnel, folder)
    (folder / "README.md").write_text(render(record, summary, sep, plots, license))
    return sep


def parent_folder(record: BuildRecord) -> Path | None:
    """The parent dataset's folder when it is on this machine: a local path, or a Hub snapshot
    already in the local cache (never a download: a card does not go to the network)."""
    ref = (record.parent or {}).get("id")
    if not ref:
        return None
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    try:
        from huggingface_hub import try_to_load_from_cache

        from selfpref.data.refs import split_ref

        repo, revision = split_ref(ref)
        version = (record.parent or {}).get("version")
        for rev in (revision, f"v{version}" if version else None, None):
            hit = try_to_load_from_cache(repo, CACHE_FILE, revision=rev, repo_type="dataset")
            if isinstance(hit, str):
                return Path(hit).parent
    except Exception:  # noqa: BLE001  a parent we cannot find costs embeddings, never the card
        return None
    return None


def card_writer(license: str | None = None, *, separability: bool = True
                ) -> Callable[[pl.LazyFrame, BuildRecord, Path], None]:
    """The ``card`` hook for store.write_dataset; ``separability=False`` skips the probe."""

    def write(rows: pl.LazyFrame, record: BuildRecord, folder: Path) -> None:
        sep = write_card(rows, record, folder, license, separability=separability)
        # the separability result belongs in the build record too, for `iterate` summaries
        data = json.loads((folder / RECORD_FILE).read_text())
        data.setdefault("stats", {})["separability"] = sep
        (folder / RECORD_FILE).write_text(json.dumps(data, indent=2, default=str) + "\n")

    return write
