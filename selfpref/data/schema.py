"""The preference-record contract (docs/design.md) as code.

Every dataset selfpref writes has the required columns below; methods add their own columns and
never rename these. ``validate`` checks a table column by column, vectorised with polars, and
raises a ``SchemaError`` naming the column, the first offending row and the fix.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any, cast

import polars as pl
import pyarrow as pa

from selfpref import SelfprefError

METHODS = ("sao", "sso", "alignez", "selfee", "import")
STRING_COLUMNS = ("prompt_id", "prompt", "chosen", "rejected", "method", "generator", "labeler")
REQUIRED_COLUMNS = (*STRING_COLUMNS, "confidence")

# Method columns (added, never renamed), with their polars type families, checked when present.
OPTIONAL_COLUMNS: dict[str, str] = {
    "persona": "string",
    "feature": "string",
    "feature_source": "string",  # SSO: 'allocated' (the model named the feature) or 'random'
    "principle_chosen": "string",
    "principle_rejected": "string",
    "original": "string",
    "characteristics_chosen": "string",
    "characteristics_rejected": "string",
    "judge_consistent": "bool",
    "logp_policy_chosen": "float",
    "logp_policy_rejected": "float",
    "logp_ref_chosen": "float",
    "logp_ref_rejected": "float",
    "reward_margin": "float",
}


class SchemaError(SelfprefError):
    """A table breaks the contract; the message names the column, the row and the fix."""

    def __init__(self, column: str, row: int | None, problem: str, fix: str) -> None:
        where = f"column '{column}'" + (f", row {row}" if row is not None else "")
        super().__init__(f"{where}: {problem}; fix: {fix}")
        self.column, self.row, self.problem, self.fix = column, row, problem, fix


def prompt_id(prompt: str) -> str:
    """Stable id of a prompt: the first 16 hex characters of sha256 of its UTF-8 text."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]


def to_polars(data: Any) -> pl.DataFrame:
    """A polars frame from a datasets.Dataset, pyarrow Table, polars frame or list of dicts."""
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pa.Table):
        return cast(pl.DataFrame, pl.from_arrow(data))  # a Table gives a frame, never a Series
    if hasattr(data, "data") and hasattr(data.data, "table"):  # datasets.Dataset
        return cast(pl.DataFrame, pl.from_arrow(data.data.table))
    if isinstance(data, list):
        return pl.DataFrame(data, infer_schema_length=None)
    raise TypeError(f"cannot read a table from {type(data).__name__}")


def _first(df: pl.DataFrame, mask: pl.Series, offset: int = 0) -> int | None:
    hits = mask.fill_null(True).arg_true()
    return int(hits[0]) + offset if len(hits) else None


def _family(dtype: pl.DataType) -> str:
    if dtype in (pl.String, pl.Categorical) or dtype == pl.Null:
        return "string"
    if dtype.is_float() or dtype.is_integer():
        return "float"
    if dtype == pl.Boolean:
        return "bool"
    return str(dtype)


def validate(data: Any, row_offset: int = 0) -> pl.DataFrame:
    """Check the contract; return the table as polars. Raises SchemaError on the first violation.

    ``row_offset`` is added to row numbers in messages when ``data`` is one batch of a larger table.
    """
    df = to_polars(data)
    first = functools.partial(_first, df, offset=row_offset)
    for col in REQUIRED_COLUMNS:
        if col not in df.columns:
            raise SchemaError(col, None, "missing", f"add a '{col}' column "
                              "(`selfpref import` maps other layouts onto the contract)")
    for col in STRING_COLUMNS:
        if _family(df[col].dtype) != "string":
            raise SchemaError(col, None, f"has type {df[col].dtype}, expected string",
                              "store plain text in this column")
        row = first(df[col].is_null())
        if row is not None:
            raise SchemaError(col, row, "is null", "fill it or drop the row")
    for col in ("prompt", "chosen", "rejected"):
        row = first(df[col].str.strip_chars().str.len_chars() == 0)
        if row is not None:
            raise SchemaError(col, row, "is empty", "drop rows without text")
    row = first(df["chosen"] == df["rejected"])
    if row is not None:
        raise SchemaError("chosen", row, "equals 'rejected'", "a pair needs two different answers")
    row = first(~df["method"].is_in(METHODS))
    if row is not None:
        raise SchemaError("method", row, f"is {df['method'][row - row_offset]!r}",
                          f"use one of {', '.join(METHODS)}")
    conf = df["confidence"]
    if _family(conf.dtype) != "float" and conf.dtype != pl.Null:
        raise SchemaError("confidence", None, f"has type {conf.dtype}, expected float",
                          "store a float in [0, 1] or null")
    if conf.dtype != pl.Null:
        conf = conf.cast(pl.Float64)
        row = first((conf.is_nan() | (conf < 0) | (conf > 1)).fill_null(False))
        if row is not None:
            raise SchemaError("confidence", row, f"is {conf[row - row_offset]}, outside [0, 1]",
                              "store a probability in [0, 1] or null")
    expected = df["prompt"].map_elements(prompt_id, return_dtype=pl.String)
    row = first(df["prompt_id"] != expected)
    if row is not None:
        raise SchemaError("prompt_id", row, f"is {df['prompt_id'][row - row_offset]!r}, expected "
                          f"{expected[row - row_offset]!r}", "set it to selfpref.data.schema.prompt_id(prompt)")
    for col, family in OPTIONAL_COLUMNS.items():
        if col in df.columns and df[col].dtype != pl.Null and _family(df[col].dtype) != family:
            raise SchemaError(col, None, f"has type {df[col].dtype}, expected {family}",
                              f"store a {family} in this method column")
    if "history" in df.columns and not isinstance(df["history"].dtype, (pl.List, pl.Null)):
        raise SchemaError("history", None, f"has type {df['history'].dtype}",
                          "store earlier turns as a list of {role, content}")
    return df


def make_row(prompt: str, chosen: str, rejected: str, *, method: str, generator: str,
             labeler: str, confidence: float | None = None, **extra: Any) -> dict[str, Any]:
    """One record with its prompt_id filled in."""
    return {"prompt_id": prompt_id(prompt), "prompt": prompt, "chosen": chosen,
            "rejected": rejected, "method": method, "generator": generator, "labeler": labeler,
            "confidence": None if confidence is None else float(confidence), **extra}
