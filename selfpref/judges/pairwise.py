"""The pairwise judge of SAO §3.3 (a ranking prompt in selfpref's wording), asked in both orders.

Both orders are selfpref's default, not SAO's: Alg. 1 / Eq. 3 make one call R(y1, y2 | x);
`decide_one` reads that single call (``--judge-orders 1``).

One home for the judge prompt and for turning the two verdicts into a label: SAO's build, the SSO
dispute filter and evaluation all use it, so none of them imports another's internals. The judge
objects live in `base` (the interface), `kinds` (text, logits, length, random) and `factory`
(`make_judge`); this module keeps the helpers the SAO pipeline calls on its own rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from selfpref.judges.kinds import LogitsJudge, OptionScorer
from selfpref.judges.prompts import CRITERIA, JUDGE_TEMPLATE, Chat, judge_chat
from selfpref.judges.verdict import OPTIONS, parse_verdict

__all__ = ["JUDGE_TEMPLATE", "OPTIONS", "OptionScorer", "both_orders", "decide", "decide_one",
           "decide_scores", "forced_choice", "judge_chat"]


def both_orders(prompt: str, a: str, b: str, criteria: Sequence[str] = CRITERIA) -> list[Chat]:
    """The judge asked with (a, b) and then with (b, a)."""
    return [judge_chat(prompt, a, b, criteria=criteria), judge_chat(prompt, b, a, criteria=criteria)]


def forced_choice(judge: OptionScorer, triples: Sequence[tuple[str, str, str]]) -> list[float]:
    """P(a better than b) per (prompt, a, b), the option probabilities averaged over both orders."""
    return [j.score for j in LogitsJudge(judge, model_label="judge").judge(triples)]


def decide(raw: list[str] | None, mode: str) -> tuple[int | None, bool, float, str | None]:
    """(index of the chosen answer, consistent, confidence, drop reason) from both orders."""
    if not raw or len(raw) != 2:
        return None, False, 0.0, "judge_unparseable"
    if mode == "logits":
        p_first_a, p_second_a = float(raw[0]), float(raw[1])
        p1 = (p_first_a + (1.0 - p_second_a)) / 2.0  # P(answers[0] better), both orders averaged
        if p1 == 0.5:
            return None, False, 0.5, "judge_tie"
        consistent = (p_first_a > 0.5) == (p_second_a < 0.5)
        return (0 if p1 > 0.5 else 1), consistent, max(p1, 1.0 - p1), None
    # text: map each verdict back to the answer index it names.
    v1, v2 = parse_verdict(raw[0]), parse_verdict(raw[1])
    first = {"A": 0, "B": 1}.get(v1 or "", v1)
    second = {"A": 1, "B": 0}.get(v2 or "", v2)
    decisive = [v for v in (first, second) if isinstance(v, int)]
    if not decisive:
        return None, False, 0.0, "judge_tie" if "tie" in (first, second) else "judge_unparseable"
    consistent = first == second
    return decisive[0], consistent, 1.0 if consistent else 0.5, None


def decide_scores(p: Sequence[float] | None) -> tuple[int | None, bool, float, str | None]:
    """(index of the chosen answer, consistent, confidence, drop reason) from a Judgment's
    ``[p_a_first, p_a_second]`` (P(answers[0] better) with it shown first, then second): the mean
    decides, exactly 0.5 is a tie, and both orders on one side is consistent."""
    if not p or len(p) != 2:
        return None, False, 0.0, "judge_unparseable"
    first, second = float(p[0]), float(p[1])
    score = (first + second) / 2.0
    if score == 0.5:
        return None, False, 0.5, "judge_tie"
    consistent = (first > 0.5 and second > 0.5) or (first < 0.5 and second < 0.5)
    return (0 if score > 0.5 else 1), consistent, max(score, 1.0 - score), None


def decide_one(raw: Sequence[str] | None, p: Sequence[float] | None,
               mode: str) -> tuple[int | None, None, float, str | None]:
    """(index of the chosen answer, None, confidence, drop reason) from one call, answers[0] shown
    first (SAO Alg. 1): consistency is not measured. A text verdict that names no answer is
    unparseable (a tie when it says so); a graded P of exactly 0.5 is a tie."""
    if not p:
        return None, None, 0.0, "judge_unparseable"
    if mode == "text":
        verdict = parse_verdict(raw[0] if raw else "")
        if verdict not in ("A", "B"):
            return None, None, 0.0, "judge_tie" if verdict == "tie" else "judge_unparseable"
        return (0 if verdict == "A" else 1), None, 1.0, None
    first = float(p[0])
    if first == 0.5:
        return None, None, 0.5, "judge_tie"
    return (0 if first > 0.5 else 1), None, max(first, 1.0 - first), None
