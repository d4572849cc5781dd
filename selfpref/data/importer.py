"""Mapping preference data selfpref did not make onto the record contract (`selfpref import`).

Understood layouts: TRL's standard (``prompt``/``chosen``/``rejected`` as strings), TRL's
conversational (message lists, with an explicit or implicit prompt) and UltraFeedback-binarized
(``chosen``/``rejected`` as full conversations that start with the user turn). Multi-turn prompts
keep their earlier turns in ``history``; rows that cannot be mapped are counted per reason.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import polars as pl

from selfpref import SelfprefError
from selfpref.data.refs import parse_ref
from selfpref.data.schema import make_row

_FILE_READERS = {".parquet": pl.read_parquet, ".jsonl": pl.read_ndjson, ".json": pl.read_json,
                 ".csv": pl.read_csv}


class Unmappable(Exception):
    """A row that cannot be mapped; the message is the reason counted in the report."""


def read_source(ref: str, split: str | None = None) -> pl.DataFrame:
    """Rows from a local file or folder (parquet/jsonl/json/csv) or a Hub dataset id."""
    parsed = parse_ref(ref)
    path = parsed.path or Path(ref)
    if path.is_file():
        reader = _FILE_READERS.get(path.suffix)
        if reader is None:
            raise SelfprefError(f"{path}: unknown file type {path.suffix!r}; use one of "
                                f"{', '.join(_FILE_READERS)}")
        return reader(path)
    if path.is_dir():
        files = [p for p in sorted(path.rglob("*")) if p.suffix in _FILE_READERS]
        if split:
            files = [p for p in files if split in p.name] or files
        if not files:
            raise SelfprefError(f"{path} has no parquet/jsonl/json/csv files to import")
        return pl.concat([_FILE_READERS[p.suffix](p) for p in files], how="diagonal_relaxed")
    import datasets

    try:
        ds = datasets.load_dataset(parsed.repo, revision=parsed.revision, split=split or "train")
    except Exception as exc:  # datasets raises many types; the user needs the first line
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SelfprefError(f"could not load {ref!r} ({msg}); pass a local file or folder, "
                            "or --split for datasets without a 'train' split") from None
    return pl.from_arrow(ds.data.table)


def read_texts(ref: str, column: str) -> list[str]:
    """The non-empty strings of ``column`` in a dataset (a prompt set, a persona set)."""
    source = read_source(ref)
    if column not in source.columns:
        raise SelfprefError(f"{ref} has no '{column}' column (columns: {', '.join(source.columns)})")
    values = [v for v in source[column].to_list() if isinstance(v, str) and v.strip()]
    if not values:
        raise SelfprefError(f"{ref}: column '{column}' has no non-empty text")
    return values


def _messages(value: Any, column: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise Unmappable(f"{column}_not_text_or_messages")
    out = []
    for m in value:
        if "role" not in m or "content" not in m or not isinstance(m["content"], str):
            raise Unmappable(f"{column}_message_without_role_or_content")
        out.append({"role": str(m["role"]), "content": m["content"]})
    return out


def _answer(value: Any, prompt_msgs: list[dict[str, str]] | None, column: str) -> str:
    if isinstance(value, str):
        return value
    msgs = _messages(value, column)
    if prompt_msgs and msgs[: len(prompt_msgs)] == prompt_msgs:
        msgs = msgs[len(prompt_msgs):]
    if not msgs or msgs[-1]["role"] != "assistant":
        raise Unmappable(f"{column}_does_not_end_with_assistant")
    if len(msgs) > 1:
        raise Unmappable(f"{column}_has_several_turns_after_the_prompt")
    return msgs[-1]["content"]


def _implicit_prompt(chosen: Any, rejected: Any) -> list[dict[str, str]]:
    c, r = _messages(chosen, "chosen"), _messages(rejected, "rejected")
    n = 0
    while n < min(len(c), len(r)) - 1 and c[n] == r[n]:
        n += 1
    if n == 0:
        raise Unmappable("no_prompt_column_and_no_shared_prompt_turns")
    return c[:n]


def map_row(row: dict[str, Any], *, generator: str, labeler: str) -> dict[str, Any]:
    """One source row as a contract record, or Unmappable with the reason."""
    chosen, rejected = row.get("chosen"), row.get("rejected")
    if chosen is None or rejected is None:
        raise Unmappable("missing_chosen_or_rejected")
    prompt_value = row.get("prompt")
    if prompt_value is None and not isinstance(chosen, str):
        prompt_value = _implicit_prompt(chosen, rejected)
    if isinstance(prompt_value, str):
        # UltraFeedback-binarized repeats the user turn at the start of chosen/rejected.
        prompt, history = prompt_value, None
        prompt_msgs = [{"role": "user", "content": prompt_value}]
    elif prompt_value is None:
        raise Unmappable("missing_prompt")
    else:
        prompt_msgs = _messages(prompt_value, "prompt")
        if not prompt_msgs or prompt_msgs[-1]["role"] != "user":
            raise Unmappable("prompt_does_not_end_with_user_turn")
        prompt, history = prompt_msgs[-1]["content"], prompt_msgs[:-1]
    chosen_text = _answer(chosen, prompt_msgs, "chosen")
    rejected_text = _answer(rejected, prompt_msgs, "rejected")
    if not prompt.strip():
        raise Unmappable("empty_prompt")
    if not chosen_text.strip() or not rejected_text.strip():
        raise Unmappable("empty_answer")
    if chosen_text == rejected_text:
        raise Unmappable("chosen_equals_rejected")
    extra = {"history": history} if history is not None else {}
    return make_row(prompt, chosen_text, rejected_text, method="import", generator=generator,
                    labeler=labeler, confidence=None, **extra)


def import_rows(source: pl.DataFrame, *, generator: str = "unknown",
                labeler: str = "human") -> tuple[pl.DataFrame, dict[str, int]]:
    """(mapped rows, dropped count per reason). Raises when nothing at all could be mapped."""
    missing = {"chosen", "rejected"} - set(source.columns)
    if missing:
        raise SelfprefError(f"cannot import: no column {sorted(missing)[0]!r}; selfpref imports "
                            "prompt/chosen/rejected data (TRL or UltraFeedback-binarized layout)")
    rows, dropped = [], collections.Counter()
    for row in source.iter_rows(named=True):
        try:
            rows.append(map_row(row, generator=generator, labeler=labeler))
        except Unmappable as why:
            dropped[str(why)] += 1
    if not rows:
        reasons = ", ".join(f"{k}: {v}" for k, v in dropped.most_common())
        raise SelfprefError(f"no row could be imported ({reasons})")
    has_history = any("history" in r for r in rows)
    if has_history:
        for r in rows:
            r.setdefault("history", [])
    schema = {"confidence": pl.Float64}
    if has_history:
        schema["history"] = pl.List(pl.Struct({"role": pl.String, "content": pl.String}))
    return pl.DataFrame(rows, schema_overrides=schema, infer_schema_length=None), dict(dropped)
