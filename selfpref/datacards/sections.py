"""Card lines about where prompts and steering features came from (SAO §4.4 / App. E, SSO §3.1)."""

from __future__ import annotations

from typing import Any

from selfpref.data.stats import feature_source_share

SHOWN_CHARS = 160  # a table cell, not the whole prompt: the full texts are in selfpref.json


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _cell(text: str) -> str:
    one_line = " ".join(text.split())  # a newline would end the table row
    if len(one_line) > SHOWN_CHARS:
        one_line = one_line[: SHOWN_CHARS - 1] + "…"
    return one_line.replace("|", "\\|")


def statistic_rows(stats: dict[str, Any], summary: dict[str, Any]) -> list[list[Any]]:
    """Rows for the card's statistics table: prompt source and repetition, feature sources."""
    rows: list[list[Any]] = []
    if "prompt_source" in stats:
        rows.append(["prompt source", stats["prompt_source"]])
    if "prompt_repetition_rate" in stats:
        of = (f" of {stats['prompts_generated']:,} prompts" if "prompts_generated" in stats else "")
        rows.append(["prompt repetition rate at generation, refusals left out (share of prompts "
                     "that repeat an earlier one)", _pct(stats["prompt_repetition_rate"]) + of])
    if "prompt_repetition_rate_with_refusals" in stats:
        rows.append(["prompt repetition rate with refusals counted (share of the prompt stage's "
                     "texts, prompts and refusals, that repeat an earlier one; SAO §4.4 counts "
                     "refusals)", _pct(stats["prompt_repetition_rate_with_refusals"])
                     + f" of {stats['prompt_outputs_generated']:,} texts "
                       f"({stats['prompt_refusals']:,} refusals)"])
    if "prompt_repeated_share" in stats:
        rows.append(["prompts whose text was written more than once",
                     _pct(stats["prompt_repeated_share"])])
    if summary.get("by_feature_source"):
        rows.append(["SSO feature allocation (sec. 3.1; column `feature_source`)",
                     feature_source_share(summary["by_feature_source"])])
    return rows


def top_repeats(stats: dict[str, Any]) -> str:
    """The most repeated prompts with their counts (SAO App. E, Table 12), or '' when the build
    did not record them."""
    if "prompt_top_repeats" not in stats:
        return ""
    head = ("### Most repeated prompts\n\nThe prompts written most often at generation, with how "
            "many times each was written (SAO App. E, Table 12), before any filter.\n")
    repeats = stats["prompt_top_repeats"]
    if not repeats:
        return head + "\nNo prompt was written twice.\n"
    lines = ["", "| prompt | count |", "|---|---|"]
    lines += [f"| {_cell(r['prompt'])} | {r['count']} |" for r in repeats]
    return head + "\n".join(lines) + "\n"
