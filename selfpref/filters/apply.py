"""Filter a dataset folder into a derived one: the body of `selfpref filter`, callable by `iterate`.

Filters are built from (key, value) steps, as typed on the command line or listed in a recipe,
run over streamed parquet batches, and the kept rows are written atomically with a record that
names the parent and carries the funnel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selfpref import SelfprefError

FILTER_KEYS = ("dedup", "max_length_diff", "balance_length", "one_per_prompt",
               "require_consistent_judge", "min_confidence", "judge_models", "sso_onpolicy")
# Options shared by the filters of a recipe (as `selfpref filter` flags of the same names).
FILTER_OPTIONS = ("dedup_field", "threshold", "ngram", "seed", "onpolicy_model")


def load_filter_recipe(path: str | Path, flag: str = "--config") -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """(steps in order, options) of a recipe ``{filters: [{dedup: minhash}, ...], threshold: 0.8}``."""
    from selfpref.data.recipes import load_yaml_mapping

    data = load_yaml_mapping(path, what="filter recipe", allowed=("filters", *FILTER_OPTIONS),
                             flag=flag)
    entries = data.get("filters", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) and len(e) == 1 for e in entries):
        raise SelfprefError(f"{flag} {path}: 'filters:' lists one-key mappings in order, e.g. "
                            "filters: [{dedup: minhash}, {max_length_diff: 3000}]")
    unknown = [k for e in entries for k in e if k not in FILTER_KEYS]
    if unknown:
        raise SelfprefError(f"{flag} {path}: unknown filter '{unknown[0]}' (filters are: "
                            f"{', '.join(FILTER_KEYS)})")
    steps = [next(iter(entry.items())) for entry in entries]
    return steps, {k: v for k, v in data.items() if k != "filters"}


def make_filter(key: str, value: Any, opts: dict[str, Any]) -> Any:
    """One filter from a recipe entry (key, value) and the shared options."""
    from selfpref import filters as F

    if key == "dedup":
        if value == "exact":
            return F.ExactDedup(opts.get("dedup_field", "prompt"))
        if value == "minhash":
            return F.MinHashDedup(opts.get("dedup_field", "prompt"), threshold=opts.get("threshold", 0.8),
                                  ngram=opts.get("ngram", 5), seed=opts.get("minhash_seed", 1),
                                  against=opts.get("against_signatures"))
        raise SelfprefError(f"--dedup {value!r}: use exact or minhash")
    if key == "max_length_diff":
        return F.MaxLengthDiff(int(value))
    if key == "balance_length":
        return F.LengthBalance(seed=opts.get("seed", 0))
    if key == "one_per_prompt":
        return F.OnePerPrompt()
    if key == "require_consistent_judge":
        return F.RequireConsistentJudge()
    if key == "min_confidence":
        return F.MinConfidence(float(value))
    if key == "judge_models":
        return F.JudgeDispute(list(value) if isinstance(value, (list, tuple)) else [value])
    if key == "sso_onpolicy":
        return F.SSOOnPolicy(opts.get("onpolicy_model"))
    raise SelfprefError(f"unknown filter {key!r}: use one of {', '.join(FILTER_KEYS)}")


def against_signatures(refs: list[str], field: str, ngram: int, seed: int) -> list:
    """MinHash signatures of other datasets, so dedup also drops rows near-duplicating them."""
    from selfpref.filters.minhash import MinHashDedup
    from selfpref.filters.parquet import ParquetRows
    from selfpref.data.refs import resolve_folder

    sigs = []
    probe = MinHashDedup(field, ngram=ngram, seed=seed)
    for ref in refs:
        rows = ParquetRows(sorted((resolve_folder(ref) / "data").glob("*.parquet")))
        sigs.append(probe.signatures_of(rows.batches(list(probe.columns)), rows.n))
    return sigs


def filter_dataset(ref: str | Path, output: str | Path, steps: list[tuple[str, Any]],
                   opts: dict[str, Any] | None = None, *, against: list[str] | None = None,
                   name: str | None = None, version: str | None = None, card: Any = None,
                   exclusions: str | Path | None = None) -> tuple[Any, list[Any], int, int]:
    """Apply ``steps`` in order; returns (derived record, reports, rows kept, rows read)."""
    from selfpref.filters.runner import run_filters
    from selfpref.filters.parquet import ParquetRows, kept_batches, write_exclusions
    from selfpref.data.refs import resolve_folder
    from selfpref.data.store import derived_record, read_record, write_dataset

    opts = dict(opts or {})
    if not steps:
        raise SelfprefError("no filter given: pass e.g. --dedup minhash --max-length-diff 3000")
    if against:
        opts["against_signatures"] = against_signatures(against, opts.get("dedup_field", "prompt"),
                                                        opts.get("ngram", 5), opts.get("minhash_seed", 1))
    folder = resolve_folder(ref)
    parent = read_record(folder)
    files = sorted((folder / "data").glob("*.parquet"))
    if not files:
        raise SelfprefError(f"{folder}/data has no parquet file")
    rows = ParquetRows(files)
    alive, reason, reports = run_filters(rows, [make_filter(k, v, opts) for k, v in steps])
    output = Path(output)
    record = derived_record(parent, str(ref), name=name or output.name)
    if version:
        record.version = version
    record.funnel = list(parent.funnel) + [r.to_dict() for r in reports]
    written = write_dataset(kept_batches(rows, alive), output, record, card=card)
    if exclusions:
        write_exclusions(rows, alive, reason, Path(exclusions))
    return written, reports, int(alive.sum()), rows.n
