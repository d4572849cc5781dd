"""Agreement between judges: raw agreement, Cohen's kappa per pair of judges, Fleiss' kappa for
three or more.

Each judge's verdict on a pair is a category: "A" (score > 0.5), "B" (< 0.5) or "tie" (= 0.5).

- Cohen (1960): kappa = (p_o - p_e) / (1 - p_e), p_o the share of pairs both judges put in the
  same category, p_e = sum over categories of the product of the two judges' marginal shares.
- Fleiss (1971), n pairs, k judges, n_ij judges putting pair i in category j:
  P_i = (sum_j n_ij^2 - k) / (k (k - 1)), P_bar = mean P_i, p_j = sum_i n_ij / (n k),
  P_e = sum_j p_j^2, kappa = (P_bar - P_e) / (1 - P_e).

Both are None when undefined (p_e = 1: every verdict in one category).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

CATEGORIES = ("A", "B", "tie")


def verdict(score: float) -> str:
    return "A" if score > 0.5 else "B" if score < 0.5 else "tie"


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    n = len(a)
    if n == 0 or n != len(b):
        return None
    p_o = sum(x == y for x, y in zip(a, b)) / n
    p_e = sum((a.count(c) / n) * (b.count(c) / n) for c in CATEGORIES)
    return None if p_e == 1 else (p_o - p_e) / (1 - p_e)


def fleiss_kappa(ratings: Sequence[Sequence[str]]) -> float | None:
    """``ratings[i]``: the k judges' categories for pair i (k >= 2, the same k for every pair)."""
    if not ratings:
        return None
    k = len(ratings[0])
    n = len(ratings)
    if k < 2 or any(len(r) != k for r in ratings):
        return None
    counts = [[list(r).count(c) for c in CATEGORIES] for r in ratings]
    p_i = [(sum(x * x for x in row) - k) / (k * (k - 1)) for row in counts]
    p_bar = sum(p_i) / n
    p_j = [sum(row[j] for row in counts) / (n * k) for j in range(len(CATEGORIES))]
    p_e = sum(p * p for p in p_j)
    return None if p_e == 1 else (p_bar - p_e) / (1 - p_e)


def agreement_report(scores: Mapping[str, Sequence[float]], combined: Sequence[float] | None = None) -> dict[str, Any]:
    """Per judge (its verdict shares, agreement with the panel's combined verdict), per pair of
    judges (agreement %, Cohen's kappa), and Fleiss' kappa for three or more judges."""
    verdicts = {label: [verdict(s) for s in values] for label, values in scores.items()}
    panel = [verdict(s) for s in combined] if combined is not None else None
    per_judge = {}
    for label, v in verdicts.items():
        n = len(v) or 1
        per_judge[label] = {"a_share": 100 * v.count("A") / n, "tie_share": 100 * v.count("tie") / n,
                            "agrees_with_panel": (100 * sum(x == y for x, y in zip(v, panel)) / n
                                                  if panel is not None else None)}
    pairwise = []
    for (l1, v1), (l2, v2) in combinations(verdicts.items(), 2):
        n = len(v1) or 1
        pairwise.append({"judges": [l1, l2], "agreement": 100 * sum(x == y for x, y in zip(v1, v2)) / n,
                         "cohen_kappa": cohen_kappa(v1, v2)})
    fleiss = fleiss_kappa(list(zip(*verdicts.values()))) if len(verdicts) >= 3 else None
    return {"per_judge": per_judge, "pairwise": pairwise, "fleiss_kappa": fleiss}
