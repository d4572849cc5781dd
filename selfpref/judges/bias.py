"""A judge's biases from its own verdicts: position (which slot wins) and length (which size wins).

Input per pair: P(A better) with A shown first and with A shown second, and the two answers'
lengths in characters. Every figure is a percentage, None when nothing could be counted:

- ``consistency``: pairs whose two orders pick the same side (a tie in either picks none);
- ``first_shown``: of the decided single-order verdicts (P != 0.5), the share that picked the
  answer shown first. 50 is no position bias; FastChat #3911 measured GPT-4 flipping 12.9% of
  verdicts when the order swaps;
- ``longer``: of the decided pairs (mean P != 0.5) whose answers differ in length, the share
  whose verdict went to the longer answer. 50 is no length preference; FastChat #3911 measured
  68% for GPT-4 on its shipped judgments. On data where the better answer tends to be longer
  this share is high for a good judge too: read it beside accuracy by length (`judge check`).

`LINES` says each in one line, for cards and reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: callers pass lists or numpy arrays
    import numpy as np

LINES = {
    "consistency": "share of pairs whose two presentation orders pick the same answer (100: no "
                   "position effect on the verdict).",
    "first_shown": "share of decided single-order verdicts that picked the answer shown first "
                   "(50: no position bias; above 50 favours the first slot).",
    "longer": "share of decided verdicts, on pairs of unequal length, that picked the longer "
              "answer (50: no length preference).",
    "length_coef": "length coefficient of the length-controlled (LC) fit, P ~ sigmoid(a + b * "
                   "tanh(dlen / sd)): b > 0 means longer answers win more, 0 none.",
    "self_preference": "the judge's win rate for answers it wrote itself, beside another judge's "
                       "on the same pairs when there is one (a gap is self-preference).",
}


def _pct(num: float, den: int) -> float | None:
    return 100.0 * num / den if den else None


def bias_report(p_a_first: Sequence[float] | np.ndarray, p_a_second: Sequence[float] | np.ndarray | None,
                len_a: Sequence[int] | np.ndarray, len_b: Sequence[int] | np.ndarray, *,
                length_coef: float | None = None) -> dict[str, Any]:
    """Position and length figures (see the module doc); ``p_a_second`` None: one order asked."""
    n = len(p_a_first)
    out: dict[str, Any] = {"n": n}
    firsts, decided_orders = 0, 0
    consistent = 0
    for i in range(n):
        p1 = float(p_a_first[i])
        if p1 != 0.5:
            decided_orders += 1
            firsts += p1 > 0.5  # A was first here
        if p_a_second is not None:
            p2 = float(p_a_second[i])
            if p2 != 0.5:
                decided_orders += 1
                firsts += p2 < 0.5  # B was first here
            consistent += (p1 > 0.5 and p2 > 0.5) or (p1 < 0.5 and p2 < 0.5)
    out["consistency"] = _pct(consistent, n) if p_a_second is not None else None
    out["first_shown"] = _pct(firsts, decided_orders)
    longer, decided = 0, 0
    for i in range(n):
        score = float(p_a_first[i]) if p_a_second is None else (float(p_a_first[i]) + float(p_a_second[i])) / 2
        if score == 0.5 or len_a[i] == len_b[i]:
            continue
        decided += 1
        longer += (score > 0.5) == (len_a[i] > len_b[i])
    out["longer"] = _pct(longer, decided)
    out["longer_n"] = decided
    out["length_coef"] = length_coef
    return out


def self_preference(own_scores: Sequence[float], other_scores: Sequence[float] | None = None) -> dict[str, Any]:
    """Win rate (%) of the judge for its own answers (P(own better) > 0.5, ties half), and a
    second judge's on the same pairs when given."""
    def rate(scores: Sequence[float]) -> float | None:
        if not scores:
            return None
        return 100.0 * sum(1.0 if s > 0.5 else 0.5 if s == 0.5 else 0.0 for s in scores) / len(scores)

    return {"own_judge": rate(own_scores),
            "other_judge": rate(other_scores) if other_scores is not None else None}


def judge_report(judgments: Sequence[Any], len_a: Sequence[int], len_b: Sequence[int], *,
                 length_coef: float | None = None, own_side: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The bias figures of a run's judgments (`Judgment` objects, A vs B), a panel's agreement
    when the judge is a panel, and self-preference where a judge wrote one side.

    ``own_side``: judge label -> "a" or "b", the side that judge (or panel member) generated.
    Its win rate for its own side is reported beside the other members' (mean) on the same
    pairs, when a panel has another member."""
    from selfpref.judges.agreement import agreement_report

    one_order = bool(judgments) and judgments[0].orders == 1
    out: dict[str, Any] = bias_report([j.p_a_first for j in judgments],
                                      None if one_order else [j.p_a_second for j in judgments],
                                      len_a, len_b, length_coef=length_coef)
    members = list(judgments[0].members) if judgments and judgments[0].members else []
    if members:
        scores = {m: [j.members[m].score for j in judgments] for m in members}
        out["panel"] = agreement_report(scores, [j.score for j in judgments])
        out["members"] = {m: bias_report([j.members[m].p_a_first for j in judgments],
                                         [j.members[m].p_a_second for j in judgments], len_a, len_b)
                          for m in members}
    if own_side:
        prefs = {}
        for label, side in own_side.items():
            if members and label not in members:
                continue
            own = [(j.members[label].score if members else j.score) for j in judgments]
            others = [m for m in members if m != label and m not in own_side]
            other = ([sum(j.members[m].score for m in others) / len(others) for j in judgments]
                     if others else None)
            flip = (lambda xs: [1.0 - x for x in xs]) if side == "b" else (lambda xs: list(xs))
            prefs[label] = {"side": side, **self_preference(flip(own), flip(other) if other else None)}
        if prefs:
            out["self_preference"] = prefs
    return out


def bias_markdown(bias: Mapping[str, Any]) -> str:
    """The card's / report's "Judge bias" section: one row per figure, each explained in a line."""
    def pct(v: Any) -> str:
        return "—" if v is None else f"{v:.1f}%"

    rows = [("position: consistency", pct(bias.get("consistency")), LINES["consistency"]),
            ("position: first-shown answer", pct(bias.get("first_shown")), LINES["first_shown"]),
            ("length: longer answer", pct(bias.get("longer")) + f" of {bias.get('longer_n', 0)}",
             LINES["longer"])]
    if bias.get("length_coef") is not None:
        rows.append(("length: LC coefficient", f"{bias['length_coef']:+.2f}", LINES["length_coef"]))
    for label, pref in (bias.get("self_preference") or {}).items():
        other = pref.get("other_judge")
        rows.append((f"self-preference: {label} (wrote {pref['side'].upper()})",
                     f"{pct(pref['own_judge'])}" + (f" vs {pct(other)}" if other is not None else ""),
                     LINES["self_preference"]))
    lines = ["| bias | value | what it means |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    panel = bias.get("panel")
    if panel:
        lines += ["", "Panel agreement (verdicts A / B / tie per judge; Cohen's kappa per pair of "
                  "judges, Fleiss' kappa for three or more; 1 is full agreement, 0 chance):", "",
                  "| judges | agreement | Cohen's kappa |", "|---|---|---|"]
        for p in panel["pairwise"]:
            kappa = "—" if p["cohen_kappa"] is None else f"{p['cohen_kappa']:.2f}"
            lines.append(f"| {' vs '.join(p['judges'])} | {p['agreement']:.1f}% | {kappa} |")
        if panel.get("fleiss_kappa") is not None:
            lines += ["", f"Fleiss' kappa: {panel['fleiss_kappa']:.2f}"]
    return "\n".join(lines) + "\n"


def generator_sides(judge_info: Mapping[str, Any], sides: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """judge (or panel member) label -> the side ("a"/"b") whose answers the same model wrote,
    from `PairwiseJudge.describe()` and eval's side descriptions ({source, model, ...})."""
    own: dict[str, str] = {}
    for member in judge_info.get("members") or [judge_info]:
        for side, desc in sides.items():
            if member.get("model") and desc.get("source") == "model" and member["model"] == desc.get("model"):
                own.setdefault(member["label"], side)
    return own
