"""How often a build's prompts repeat: SAO Table 5's repetition rate and App. E's Table 12.

SAO reports a "repetition" percentage per prompt source (Table 5: UltraFeedback 0.0, Random
45.7, Persona 0.7) and, for the random source, the five prompts written most often with their
counts (App. E, Table 12), without defining the rate. selfpref's choice: the share of prompts
that repeat an earlier one, 1 - distinct / total, which is exactly what an exact dedup would
remove. The other reading, the share of prompts whose text occurs more than once, is recorded
beside it (``prompt_repeated_share``). Texts are compared whitespace- and case-folded, as the
``exact`` filter compares them; Table 12 lists "Pride and Prejudice" with quotes and with
asterisks as two prompts, and so does this.

The prompts counted are every prompt the prompt stage produced (or the prompt set read),
before any later step dropped its row and before any filter: a build keeps repeated prompts,
and ``filter --dedup`` is where they go. Refusals are not prompts: the stage drops them and
counts them as ``refusal``, so ``prompt_repetition_rate`` leaves them out. SAO §4.4 counts them:
its persona rate of 0.7% "only occurred when the model rejected generating prompts for certain
personas", i.e. the repeats were repeated refusals. ``prompt_repetition_rate_with_refusals`` is
that reading: the same 1 - distinct / total over every text the prompt stage wrote, prompts
and refusals together (``prompt_outputs_generated`` of them).
"""

from __future__ import annotations

import collections
from typing import Any

from selfpref.pipelines.parsing import normalize_text

TOP_REPEATS = 5  # Table 12 lists five


def repetition_rate(prompts: list[str]) -> float:
    """The share of ``prompts`` that repeat an earlier one (normalised text); 0.0 for none."""
    if not prompts:
        return 0.0
    return 1.0 - len({normalize_text(p) for p in prompts}) / len(prompts)


def prompt_repetition(prompts: list[str], top: int = TOP_REPEATS, *,
                      refusals: list[str] | None = None) -> dict[str, Any]:
    """Build stats: ``prompts_generated``, ``prompt_repetition_rate``, ``prompt_repeated_share``
    and ``prompt_top_repeats`` (up to ``top`` texts written at least twice, most frequent first,
    ties in order of first appearance; each shown as first written, with its count). With
    ``refusals`` (the texts of the refusals the stage dropped; None: not known) also
    ``prompt_refusals``, ``prompt_outputs_generated`` and ``prompt_repetition_rate_with_refusals``."""
    counts: collections.Counter = collections.Counter()
    first: dict[str, str] = {}
    for prompt in prompts:
        key = normalize_text(prompt)
        counts[key] += 1
        first.setdefault(key, prompt)
    repeated = [(key, n) for key, n in counts.items() if n > 1]  # insertion order = first seen
    repeated.sort(key=lambda kv: -kv[1])  # stable: ties stay in order of first appearance
    total = len(prompts)
    with_refusals = {} if refusals is None else {
        "prompt_refusals": len(refusals), "prompt_outputs_generated": total + len(refusals),
        "prompt_repetition_rate_with_refusals": repetition_rate(list(prompts) + list(refusals))}
    return {
        "prompts_generated": total,
        "prompt_repetition_rate": repetition_rate(prompts),
        "prompt_repeated_share": (sum(n for _, n in repeated) / total) if total else 0.0,
        "prompt_top_repeats": [{"prompt": first[key], "count": n} for key, n in repeated[:top]],
        **with_refusals,
    }
