"""Filter a dataset folder into a derived one: the body of `selfpref filter`, callable by `iterate`.

Filters are built from (key, value) steps, as typed on the command line or listed in a recipe,
run over streamed parquet batches, and the kept rows are written atomically with a record that
names the parent and carries the funnel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selfpref import SelfprefError
from selfpref.data.funnel import funnel_text

FILTER_KEYS = ("dedup", "max_length_diff", "balance_length", "one_per_prompt",
               "require_consistent_judge", "min_confidence", "judge_models", "sso_onpolicy")
# Options shared by the filters of a recipe (as `selfpref filter` flags of the same names).
FILTER_OPTIONS = ("dedup_field", "threshold", "ngram", "seed", "onpolicy_model", "judge",
                  "dispute_rule", "judge_template")


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


def _number(key: str, value: Any, cast: type) -> Any:
    flag = f"--{key.replace('_', '-')}"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SelfprefError(f"{flag} {value!r}: give a number")
    try:
        number = cast(value)
    except ValueError:
        raise SelfprefError(f"{flag} {value!r}: give a {'whole ' if cast is int else ''}number") from None
    if cast is int and float(value) != number:
        raise SelfprefError(f"{flag} {value!r}: give a whole number")
    return number


def make_filter(key: str, value: Any, opts: dict[str, Any]) -> Any:
    """One filter from a recipe entry (key, value) and the shared options.

    Every value is checked here, before any data is read: a wrong one is a SelfprefError naming
    the flag (or recipe key) and the values it takes.
    """
    from selfpref import filters as F

    if key == "dedup":
        field = opts.get("dedup_field", "prompt")
        if value == "exact":
            return F.ExactDedup(field)
        if value == "minhash":
            return F.MinHashDedup(field, threshold=_number("threshold", opts.get("threshold", 0.8), float),
                                  ngram=_number("ngram", opts.get("ngram", 5), int),
                                  seed=opts.get("minhash_seed", 1),
                                  against=opts.get("against_signatures"))
        raise SelfprefError(f"--dedup {value!r}: use exact or minhash")
    if key == "max_length_diff":
        return F.MaxLengthDiff(_number(key, value, int))
    if key in ("balance_length", "one_per_prompt", "require_consistent_judge", "sso_onpolicy"):
        if value is not True:
            raise SelfprefError(f"filter {key}: {value!r}: write `{key}: true` (leave the filter out "
                                "to skip it)")
    if key == "balance_length":
        return F.LengthBalance(seed=_number("seed", opts.get("seed", 0), int))
    if key == "one_per_prompt":
        return F.OnePerPrompt()
    if key == "require_consistent_judge":
        return F.RequireConsistentJudge()
    if key == "min_confidence":
        return F.MinConfidence(_number(key, value, float))
    if key == "judge_models":
        models = list(value) if isinstance(value, (list, tuple)) else [value]
        if not models or not all(isinstance(m, str) and m.strip() for m in models):
            raise SelfprefError(f"--judge-models {value!r}: give one or more model folders or Hub ids")
        return F.JudgeDispute(models, kind=str(opts.get("judge") or "logits"),
                              rule=str(opts.get("dispute_rule") or "any"),
                              template=str(opts.get("judge_template") or "sso"))
    if key == "sso_onpolicy":
        return F.SSOOnPolicy(opts.get("onpolicy_model"))
    raise SelfprefError(f"unknown filter {key!r}: use one of {', '.join(FILTER_KEYS)}")


class EmptyResult(SelfprefError):
    """The filters kept no row; nothing was written (unless ``allow_empty``). ``reports`` holds
    the funnel entries (dicts, as in a build record) of this run's filters."""

    def __init__(self, message: str, reports: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.reports = reports


def against_signatures(refs: list[str], field: str, ngram: int, seed: int) -> list:
    """MinHash signatures of other datasets, so dedup also drops rows near-duplicating them."""
    from selfpref.data.refs import resolve_folder
    from selfpref.filters.minhash import MinHashDedup
    from selfpref.filters.parquet import ParquetRows

    sigs = []
    probe = MinHashDedup(field, ngram=ngram, seed=seed)
    for ref in refs:
        rows = ParquetRows(sorted((resolve_folder(ref) / "data").glob("*.parquet")))
        sigs.append(probe.signatures_of(rows.batches(list(probe.columns)), rows.n))
    return sigs


def filter_dataset(ref: str | Path, output: str | Path, steps: list[tuple[str, Any]],
                   opts: dict[str, Any] | None = None, *, against: list[str] | None = None,
                   name: str | None = None, version: str | None = None, card: Any = None,
                   exclusions: str | Path | None = None, allow_empty: bool = False,
                   overwrite: bool = False) -> tuple[Any, list[Any], int, int]:
    """Apply ``steps`` in order; returns (derived record, reports, rows kept, rows read).

    Every filter is built (its values checked) and ``output`` checked before any row is read. A
    run that keeps no row writes nothing and raises ``EmptyResult`` with the funnel, unless
    ``allow_empty`` (then the empty dataset gets the short card: there is nothing to plot).
    """
    from selfpref.data.refs import resolve_folder
    from selfpref.data.store import check_output, derived_record, read_record, write_dataset
    from selfpref.filters.parquet import ParquetRows, kept_batches, write_exclusions
    from selfpref.filters.runner import run_filters

    opts = dict(opts or {})
    if not steps:
        raise SelfprefError("no filter given: pass e.g. --dedup minhash --max-length-diff 3000")
    unknown = sorted(set(opts) - {*FILTER_OPTIONS, "minhash_seed", "against_signatures"})
    if unknown:
        raise SelfprefError(f"unknown filter option '{unknown[0]}' (options: {', '.join(FILTER_OPTIONS)})")
    for key, value in steps:  # check every value before reading anything
        make_filter(key, value, opts)
    output = Path(output)
    check_output(output, overwrite=overwrite)
    if against:
        opts["against_signatures"] = against_signatures(against, opts.get("dedup_field", "prompt"),
                                                        _number("ngram", opts.get("ngram", 5), int),
                                                        opts.get("minhash_seed", 1))
    folder = resolve_folder(ref)
    parent = read_record(folder)
    files = sorted((folder / "data").glob("*.parquet"))
    if not files:
        raise SelfprefError(f"{folder}/data has no parquet file")
    rows = ParquetRows(files)
    if rows.n == 0:
        raise SelfprefError(f"{ref}: the dataset has 0 rows, nothing to filter")
    alive, reason, reports = run_filters(rows, [make_filter(k, v, opts) for k, v in steps])
    kept = int(alive.sum())
    if exclusions:
        write_exclusions(rows, alive, reason, Path(exclusions))
    if kept == 0 and not allow_empty:
        raise EmptyResult(f"the filters kept no row of {rows.n}, so nothing was written to "
                          f"{output} ({funnel_text(reports)}); loosen the filters, or pass "
                          "--allow-empty to write the empty dataset", [r.to_dict() for r in reports])
    record = derived_record(parent, str(ref), name=name or output.name)
    if version:
        record.version = version
    record.funnel = list(parent.funnel) + [r.to_dict() for r in reports]
    written = write_dataset(kept_batches(rows, alive), output, record,
                            card=card if kept else None, overwrite=overwrite)
    return written, reports, kept, rows.n
