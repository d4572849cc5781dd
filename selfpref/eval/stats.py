"""Summary figures of a pairwise evaluation: model A's answers judged against baseline B's.

Input is one judgment per prompt: ``score`` = P(A better) averaged over the two presentation
orders, ``consistent`` (both orders picked the same side), and the answers' lengths in characters.

Figures, all in percent (0-100):

- win / lose / tie rate: the share of prompts with score > 0.5 / < 0.5 / = 0.5 (within
  ``TIE_TOLERANCE``, so that an indifferent judge whose two orders sum to 1 up to rounding ties);
- net win = win - lose (AlignEZ's Net Win%) and `relative_improvement` (AlignEZ's Relative
  Improvement% = NetWin(ours vs base) / NetWin(aligned vs base) x 100);
- mean score x 100: AlpacaEval's raw win rate, which counts a judge's uncertainty as part wins;
- LC win rate: AlpacaEval 2's length control fitted on this run's own judgments (`length_fit`);
- 95% percentile-bootstrap intervals over prompts (seeded) for win rate, net win and LC.

References: AlignEZ (Net Win%, Relative Improvement%); Dubois et al. 2024, "Length-controlled
AlpacaEval" (the GLM score ~ intercept + tanh(dlen / sd(dlen)); LC = sigmoid(intercept)).
AlpacaEval's GLM also has an instruction-difficulty term learned from its own leaderboard runs;
with no such runs here, the intercept alone carries A's quality.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from selfpref import SelfprefError
from selfpref.judges.lengthfit import (  # noqa: F401 (the fit lives below eval; re-exported)
    LC_CLIP,
    TIE_TOLERANCE,
    LengthFit,
    _lengths,
    _logit,
    _scores,
    _sigmoid,
    fit_soft_logistic,
    lc_win_rate,
    length_fit,
)


def outcome_rates(scores: ArrayLike, *, tie_tol: float = TIE_TOLERANCE) -> dict[str, Any]:
    """``n``, ``win_rate``, ``lose_rate``, ``tie_rate``, ``net_win``, ``mean_score`` (percent)."""
    s = _scores(scores)
    win = float(np.mean(s > 0.5 + tie_tol) * 100)
    lose = float(np.mean(s < 0.5 - tie_tol) * 100)
    tie = float(np.mean(np.abs(s - 0.5) <= tie_tol) * 100)
    return {"n": int(s.size), "win_rate": win, "lose_rate": lose, "tie_rate": tie,
            "net_win": win - lose, "mean_score": float(s.mean() * 100)}


def _interval(values: np.ndarray) -> list[float]:
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [float(lo), float(hi)]


def summarize_scores(scores: ArrayLike, len_a: ArrayLike, len_b: ArrayLike, consistent: ArrayLike,
                     *, bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Every figure of an evaluation run, JSON-ready; percentages are 0-100 floats.

    Keys: n, win_rate, lose_rate, tie_rate, net_win, mean_score (AlpacaEval's raw win rate),
    lc_win_rate, lc_length_coef, lc_sd_delta_len, ci95 ({win_rate, net_win, lc_win_rate: [lo, hi]}
    from ``bootstrap`` resamples of prompts with ``np.random.default_rng(seed)``; None when
    bootstrap is 0), bootstrap, seed, judge_consistency, mean_len_a, mean_len_b.
    """
    s = _scores(scores)
    la, lb = _lengths(s, len_a, len_b)
    c = np.asarray(consistent).reshape(-1)
    if c.shape != s.shape or not np.isin(c, (0, 1)).all():
        raise SelfprefError(f"consistent: give one True/False per judged prompt ({s.size}), "
                            f"got {c.size} values")
    if bootstrap < 0:
        raise SelfprefError(f"bootstrap={bootstrap}: give a number of resamples >= 0")
    fit = length_fit(s, la, lb)
    summary: dict[str, Any] = outcome_rates(s)
    summary.update(lc_win_rate=fit.lc_win_rate, lc_length_coef=fit.length_coef,
                   lc_sd_delta_len=fit.sd_delta_len, ci95=None, bootstrap=int(bootstrap),
                   seed=int(seed), judge_consistency=float(c.astype(float).mean() * 100),
                   mean_len_a=float(la.mean()), mean_len_b=float(lb.mean()))
    if bootstrap:
        idx = np.random.default_rng(seed).integers(0, s.size, size=(bootstrap, s.size))
        wins = (s > 0.5 + TIE_TOLERANCE)[idx].mean(axis=1) * 100
        loses = (s < 0.5 - TIE_TOLERANCE)[idx].mean(axis=1) * 100
        lcs = np.array([length_fit(s[i], la[i], lb[i]).lc_win_rate for i in idx])
        summary["ci95"] = {"win_rate": _interval(wins), "net_win": _interval(wins - loses),
                           "lc_win_rate": _interval(lcs)}
    return summary


def b_side(summary: Mapping[str, Any], scores: ArrayLike) -> dict[str, Any]:
    """B's figures over the base A, from A's `summarize_scores` summary and the same scores.

    B's win rate is A's lose rate (ties stay ties), B's net win is -net_win, B's LC win rate is
    100 - lc_win_rate (the length fit of 1 - score on -dlen mirrors A's), B's mean score is
    100 - mean_score. The intervals use the summary's own bootstrap resamples (same ``seed`` and
    count), so B's win-rate interval is the interval of A's lose rate, not a mirror of A's win
    rate's. Keys: n, win_rate, lose_rate, tie_rate, net_win, mean_score, lc_win_rate, ci95
    ({win_rate, net_win, lc_win_rate} or None), judge_consistency, mean_len (B's), mean_len_base (A's).
    """
    s = _scores(scores)
    if s.size != summary["n"]:
        raise SelfprefError(f"b_side: {s.size} scores for a summary of {summary['n']} prompts")
    out: dict[str, Any] = {
        "n": summary["n"], "win_rate": summary["lose_rate"], "lose_rate": summary["win_rate"],
        "tie_rate": summary["tie_rate"], "net_win": -summary["net_win"],
        "mean_score": 100.0 - summary["mean_score"], "lc_win_rate": 100.0 - summary["lc_win_rate"],
        "ci95": None, "judge_consistency": summary["judge_consistency"],
        "mean_len": summary["mean_len_b"], "mean_len_base": summary["mean_len_a"]}
    ci = summary.get("ci95")
    if ci:
        idx = np.random.default_rng(summary["seed"]).integers(0, s.size, size=(summary["bootstrap"], s.size))
        loses = (s < 0.5 - TIE_TOLERANCE)[idx].mean(axis=1) * 100
        lo_nw, hi_nw = ci["net_win"]
        lo_lc, hi_lc = ci["lc_win_rate"]
        out["ci95"] = {"win_rate": _interval(loses), "net_win": [-hi_nw, -lo_nw],
                       "lc_win_rate": [100.0 - hi_lc, 100.0 - lo_lc]}
    return out


def summarize_aspects(scores_by_aspect: Mapping[str, ArrayLike]) -> dict[str, dict[str, Any]]:
    """`outcome_rates` per aspect (AlignEZ judges Engagement, Helpfulness, ... separately)."""
    if not scores_by_aspect:
        raise SelfprefError("no aspects to summarize")
    return {aspect: outcome_rates(scores) for aspect, scores in scores_by_aspect.items()}


def relative_improvement(net_win_ours: float, net_win_aligned: float) -> float | None:
    """AlignEZ's Relative Improvement% = NetWin(ours vs base) / NetWin(aligned vs base) x 100.

    0 means no gain over the base model, 100 means the gain of the aligned model. None when the
    aligned model's net win is 0 (undefined). A negative denominator (the aligned model loses to
    the base) is returned as computed, but then the sign no longer reads as better or worse.
    """
    if net_win_aligned == 0:
        return None
    return float(net_win_ours) / float(net_win_aligned) * 100.0
