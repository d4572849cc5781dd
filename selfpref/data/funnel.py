"""The funnel as text: one rendering for errors, command output and `inspect`.

A funnel is the build record's list of steps (``{"step", "input", "kept", "dropped"}``, the
filters' ``FilterReport.to_dict()``); every layer reads it, so its text lives here, in the lowest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def funnel_text(funnel: Iterable[Mapping[str, Any] | Any], sep: str = "; ") -> str:
    """``build:sao: 8 -> 6 (empty_answer 2); minhash_dedup: 6 -> 5 (near_duplicate 1)``.

    Each step's rows in, rows kept and the rows dropped per reason; entries are funnel dicts or
    objects with ``to_dict()`` (filter reports). An entry without ``input`` gives ``step: N kept``.
    """
    parts = []
    for entry in funnel:
        e = entry.to_dict() if hasattr(entry, "to_dict") else entry
        step, kept, rows_in = e.get("step"), e.get("kept"), e.get("input")
        text = f"{step}: {kept} kept" if rows_in is None else f"{step}: {rows_in} -> {kept}"
        dropped = e.get("dropped") or {}
        if dropped:
            text += " (" + ", ".join(f"{reason} {n}" for reason, n in dropped.items()) + ")"
        parts.append(text)
    return sep.join(parts) or "no funnel recorded"
