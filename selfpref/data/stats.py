"""The summary a person wants first about a preference dataset, computed with polars.

Works on a LazyFrame so the same code reads a local folder or parquet files on the Hub without
holding the rows as Python objects.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

LENGTH_COLUMNS = ("prompt", "chosen", "rejected")
QUANTILES = {"min": 0.0, "p50": 0.5, "p90": 0.9, "max": 1.0}


def summarize(frame: pl.DataFrame | pl.LazyFrame) -> dict[str, Any]:
    """Rows, nulls, length quantiles, chosen-longer share, confidence, method/labeler counts
    (and SSO's feature_source counts, ``by_feature_source``, when the column is there)."""
    lf = frame.lazy()
    schema = lf.collect_schema()
    exprs: list[pl.Expr] = [pl.len().alias("rows")]
    exprs += [pl.col(c).null_count().alias(f"null:{c}") for c in schema.names()]
    for col in LENGTH_COLUMNS:
        length = pl.col(col).str.len_chars()
        exprs += [length.quantile(q, "nearest").cast(pl.Int64).alias(f"len:{col}:{name}")
                  for name, q in QUANTILES.items()]
    exprs.append((pl.col("chosen").str.len_chars() > pl.col("rejected").str.len_chars())
                 .mean().alias("chosen_longer_share"))
    has_conf = "confidence" in schema and schema["confidence"] != pl.Null
    if has_conf:
        exprs += [pl.col("confidence").cast(pl.Float64).quantile(q, "nearest").alias(f"conf:{n}")
                  for n, q in QUANTILES.items()]
        exprs.append(pl.col("confidence").cast(pl.Float64).mean().alias("conf:mean"))
    if "judge_consistent" in schema:
        exprs.append(pl.col("judge_consistent").cast(pl.Float64).mean().alias("judge_consistency"))
    exprs.append((1 - pl.col("prompt").n_unique() / pl.len()).alias("prompt_duplicate_rate"))
    flat = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)  # 0 rows: no NaN
            for k, v in lf.select(exprs).collect().row(0, named=True).items()}
    summary: dict[str, Any] = {
        "rows": flat["rows"],
        "null_counts": {c: flat[f"null:{c}"] for c in schema.names()},
        "lengths": {col: {n: flat[f"len:{col}:{n}"] for n in QUANTILES} for col in LENGTH_COLUMNS},
        "chosen_longer_share": flat["chosen_longer_share"],
        "confidence": ({n: flat[f"conf:{n}"] for n in (*QUANTILES, "mean")}
                       if has_conf and flat["conf:min"] is not None else None),
        "judge_consistency": flat.get("judge_consistency"),
        "prompt_duplicate_rate": flat["prompt_duplicate_rate"],
    }
    for col in ("method", "labeler", "feature_source"):
        if col == "feature_source" and col not in schema:  # SSO datasets only
            continue
        counts = lf.group_by(col).len().sort(["len", col], descending=[True, False]).collect()
        summary[f"by_{col}"] = dict(zip(counts[col].to_list(), counts["len"].to_list()))
    return summary


def feature_source_share(counts: dict[str, int]) -> str:
    """SSO's ``feature_source`` counts as the card says them: ``feature allocated by the model
    for 83.3% of pairs (random fallback 16.7%)``."""
    total = sum(counts.values())
    if not total:
        return "no pairs"
    share = counts.get("allocated", 0) / total
    return (f"feature allocated by the model for {share:.1%} of pairs "
            f"(random fallback {1 - share:.1%})")
