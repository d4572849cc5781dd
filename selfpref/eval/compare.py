"""`selfpref eval compare OURS ALIGNED`: AlignEZ's Relative Improvement% from two eval folders.

Both folders must judge against the same base as **A** (``--model-a BASE``: the same label,
decoding and answers, by fingerprint), on the same prompts (fingerprint) with the same judge; B is
"ours" in one and the aligned model in the other. In an
eval folder ``net_win`` is A's (score = P(A better)), so the Net Win% of B over the base is
``-net_win``; then

    Relative Improvement% = NetWin(ours vs base) / NetWin(aligned vs base) x 100

(AlignEZ §3), overall and per aspect. 0 means no gain over the base, 100 the aligned model's
gain; undefined (None) when the aligned model's net win is 0.

The headline (``headline_relative_improvement``): AlignEZ reports Relative Improvement% over
the five aspects (E, H, F, D, C) and their average, not over one overall verdict. With aspects
judged the headline is the mean of the per-aspect Relative Improvement% (undefined when one of
them is); without, the overall one. Beside it: the overall figure, the mean Net Win% of each
side over the aspects (Table 1's "Avg." column) and the Relative Improvement% of those means
(the seed text does not say whether the paper averages before or after the ratio).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from selfpref import SelfprefError
from selfpref.eval.stats import relative_improvement


def read_eval(folder: str | Path, flag: str) -> dict[str, Any]:
    path = Path(folder) / "eval.json"
    if not path.is_file():
        raise SelfprefError(f"{flag} {folder}: no eval.json; pass a folder written by `selfpref eval`")
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise SelfprefError(f"{flag} {folder}: eval.json does not parse ({exc})") from None


def _same(ours: dict, aligned: dict, what: str, get: Any, fix: str) -> None:
    a, b = get(ours), get(aligned)
    if a != b:
        raise SelfprefError(f"OURS and ALIGNED differ in {what} ({a!r} vs {b!r}); {fix}")


def compare(ours_folder: str | Path, aligned_folder: str | Path) -> dict[str, Any]:
    """Net Win% of each B over the shared base A, and Relative Improvement%, overall and per aspect."""
    ours, aligned = read_eval(ours_folder, "OURS"), read_eval(aligned_folder, "ALIGNED")
    _same(ours, aligned, "model A", lambda e: e["models"]["a"]["label"],
          "run both evals with the same base as --model-a")
    _same(ours, aligned, "A's decoding", lambda e: e["models"]["a"].get("decoding"),
          "run both evals with the same --max-new-tokens, --temperature and --seed")
    _same(ours, aligned, "prompts", lambda e: e["prompts"]["fingerprint"],
          "run both evals on the same --prompts")
    _same(ours, aligned, "judge", lambda e: e["judge"]["label"],
          "run both evals with the same --judge and --judge-model")
    _same(ours, aligned, "A's answers", lambda e: e["models"]["a"].get("answers_fingerprint"),
          "the base wrote different answers in the two runs (sampling, or another machine); "
          "pass the same base answers to both with --answers-a")
    nw_ours, nw_aligned = -float(ours["net_win"]), -float(aligned["net_win"])
    result: dict[str, Any] = {
        "base": ours["models"]["a"]["label"], "ours": ours["models"]["b"]["label"],
        "aligned": aligned["models"]["b"]["label"], "judge": ours["judge"]["label"],
        "prompts": ours["prompts"]["id"], "n": ours["n"],
        "net_win_ours": nw_ours, "net_win_aligned": nw_aligned,
        "relative_improvement": relative_improvement(nw_ours, nw_aligned),
        "orientation": "net wins are B's over the base A (= -net_win of each eval folder)",
    }
    common = sorted(set(ours.get("aspects") or {}) & set(aligned.get("aspects") or {}))
    if common:
        result["aspects"] = {}
        for aspect in common:
            o, a = -float(ours["aspects"][aspect]["net_win"]), -float(aligned["aspects"][aspect]["net_win"])
            result["aspects"][aspect] = {"net_win_ours": o, "net_win_aligned": a,
                                         "relative_improvement": relative_improvement(o, a)}
        result["aspect_mean"] = aspect_mean(result["aspects"])
    result.update(headline(result))
    return result


def aspect_mean(aspects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Means over the aspects: each side's Net Win%, the per-aspect Relative Improvement%
    (None when one is undefined), and the Relative Improvement% of the mean Net Wins."""
    n = len(aspects)
    ours = sum(a["net_win_ours"] for a in aspects.values()) / n
    aligned = sum(a["net_win_aligned"] for a in aspects.values()) / n
    ratios = [a["relative_improvement"] for a in aspects.values()]
    return {"aspects": n, "net_win_ours": ours, "net_win_aligned": aligned,
            "relative_improvement": None if None in ratios else sum(ratios) / n,
            "relative_improvement_of_mean_net_win": relative_improvement(ours, aligned)}


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """The Relative Improvement% to report first, and which one it is."""
    if "aspect_mean" in result:
        n = result["aspect_mean"]["aspects"]
        return {"headline_relative_improvement": result["aspect_mean"]["relative_improvement"],
                "headline": f"mean of the {n} aspects' Relative Improvement% (AlignEZ §3)"}
    return {"headline_relative_improvement": result["relative_improvement"],
            "headline": "overall judgment (no --aspects judged)"}
