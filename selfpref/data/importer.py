"""Mapping preference data selfpref did not make onto the record contract (`selfpref import`).

The layout of a source is detected from its columns and mapped row by row by
``selfpref.data.layouts`` (TRL's standard and conversational layouts, UltraFeedback-binarized,
Anthropic HH transcripts, ShareGPT conversations, OpenAI messages and preference files, raw
UltraFeedback, distilabel's generations + ratings). Multi-turn prompts keep their earlier turns
in ``history``; rows that cannot be mapped are counted per reason. Prompt sets
(``read_texts``) take one text per row from a named column or the first prompt-like column.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Callable
from pathlib import Path
from typing import cast

import polars as pl

from selfpref import SelfprefError
from selfpref.data.layouts import Unmappable, detect_layout, map_layout_rows, prompt_texts
from selfpref.data.refs import parse_ref
from selfpref.data.schema import make_row

__all__ = ["BINARIZED_LAYOUTS", "Unmappable", "detect_layout", "import_rows", "read_source",
           "read_texts"]

_FILE_READERS: dict[str, Callable[..., pl.DataFrame]] = {".parquet": pl.read_parquet, ".jsonl": pl.read_ndjson, ".json": pl.read_json,
                 ".csv": pl.read_csv}
# Layouts whose pairs are drawn from rated answers with a seeded random choice.
BINARIZED_LAYOUTS = ("ultrafeedback_raw", "distilabel")


def _read_file(path: Path, flag: str | None) -> pl.DataFrame:
    where = f"{flag} {path}" if flag else str(path)
    reader = _FILE_READERS.get(path.suffix)
    if reader is None:
        raise SelfprefError(f"{where}: unknown file type {path.suffix!r}; use one of "
                            f"{', '.join(_FILE_READERS)}")
    try:
        return reader(path)
    except Exception as exc:  # noqa: BLE001  (polars raises several types for a bad file)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SelfprefError(f"{where}: cannot read it as {path.suffix[1:]} ({first})") from None


def read_source(ref: str, split: str | None = None, *, flag: str | None = None) -> pl.DataFrame:
    """Rows from a local file or folder (parquet/jsonl/json/csv) or a Hub dataset id.

    ``split`` picks the files of a folder whose names contain it, or a Hub dataset's split; one
    that matches nothing is an error, never "all files".
    """
    parsed = parse_ref(ref, flag=flag)
    path = parsed.path or Path(ref)
    where = f"{flag} {ref}" if flag else ref
    if path.is_file():
        if split and split not in path.name:
            raise SelfprefError(f"--split {split!r}: {path.name} is a single file whose name does not "
                                "contain it; leave --split out for a file, or pass its folder")
        return _read_file(path, flag)
    if path.is_dir():
        files = [p for p in sorted(path.rglob("*")) if p.suffix in _FILE_READERS
                 and not any(part.startswith(".") for part in p.relative_to(path).parts)]
        if not files:
            raise SelfprefError(f"{where}: the folder has no parquet/jsonl/json/csv files")
        if split:
            matching = [p for p in files if split in p.name]
            if not matching:
                names = ", ".join(p.name for p in files[:5]) + (", ..." if len(files) > 5 else "")
                raise SelfprefError(f"--split {split!r}: no file in {path} has it in its name "
                                    f"(files: {names})")
            files = matching
        return pl.concat([_read_file(p, flag) for p in files], how="diagonal_relaxed")
    return _load_hub_dataset(parsed.repo or ref, parsed.revision, split, where)


def _load_hub_dataset(repo: str, revision: str | None, split: str | None, where: str) -> pl.DataFrame:
    import datasets

    from selfpref.data.hub import hub_errors, hub_offline

    try:
        with hub_errors("dataset", repo, revision):
            ds = datasets.load_dataset(repo, revision=revision, split=split or "train")
    except SelfprefError:
        raise
    except Exception as exc:  # noqa: BLE001  (datasets raises many types; the user needs one line)
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if hub_offline():
            raise SelfprefError(f"{where}: not a local file or folder, and the Hub dataset could not be "
                                f"loaded from the cache with HF_HUB_OFFLINE set ({msg}); pass a local "
                                "file or folder, or unset HF_HUB_OFFLINE") from None
        if split and "split" in msg.lower():
            raise SelfprefError(f"--split {split!r}: {repo} has no such split ({msg})") from None
        raise SelfprefError(f"{where}: could not load it from the Hub ({msg}); pass a local file "
                            "or folder, or --split for datasets without a 'train' split") from None
    return cast(pl.DataFrame, pl.from_arrow(ds.data.table))  # a Table gives a frame


def read_texts(ref: str, column: str | None = None, *, flag: str = "--prompts",
               column_flag: str | None = None) -> list[str]:
    """One text per row of a prompt set (or persona set): ``column``, or the first prompt column.

    A list column gives its first turn (MT-Bench's ``turns``) and a message list its last user
    turn (OpenAI ``messages``, ShareGPT ``conversations``); see ``layouts.prompt_texts``.
    """
    if column_flag is None:
        column_flag = "--prompt-column" if flag.endswith("prompts") else ""
    source = read_source(ref, flag=flag)
    if column is not None and column not in source.columns:
        where = f"{column_flag} {column}" if column_flag else f"{flag} {ref}"
        raise SelfprefError(f"{where}: {ref} has no '{column}' column (columns: "
                            f"{', '.join(source.columns)})")
    try:
        texts, _skipped = prompt_texts(source, column)
    except SelfprefError as exc:
        raise SelfprefError(f"{flag} {ref}: {exc}") from None
    return texts


def import_rows(source: pl.DataFrame, *, generator: str = "unknown", labeler: str = "human",
                layout: str | None = None, seed: int = 0) -> tuple[pl.DataFrame, dict[str, int]]:
    """(mapped rows, dropped count per reason). Raises when nothing at all could be mapped.

    ``layout`` defaults to ``detect_layout(source)``; ``seed`` drives the random pick of the
    rejected answer in the binarized layouts (``BINARIZED_LAYOUTS``), so it belongs in the record.
    """
    layout = layout or detect_layout(source)
    mapped, counts = map_layout_rows(source, layout, random.Random(seed))
    dropped = collections.Counter(counts)
    rows = []
    for prompt, history, chosen, rejected in mapped:
        extra = {"history": history} if history else {}
        rows.append(make_row(prompt, chosen, rejected, method="import", generator=generator,
                             labeler=labeler, confidence=None, **extra))
    if not rows:
        reasons = ", ".join(f"{k}: {v}" for k, v in dropped.most_common())
        raise SelfprefError(f"no row could be imported from the {layout} layout ({reasons or 'no rows'})")
    has_history = any("history" in r for r in rows)
    if has_history:
        for r in rows:
            r.setdefault("history", [])
    schema: dict[str, pl.DataType | type[pl.DataType]] = {"confidence": pl.Float64}
    if has_history:
        schema["history"] = pl.List(pl.Struct({"role": pl.String, "content": pl.String}))
    return pl.DataFrame(rows, schema_overrides=schema, infer_schema_length=None), dict(dropped)
