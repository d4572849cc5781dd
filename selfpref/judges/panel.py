"""A panel of judges behind the one `PairwiseJudge` interface (SAO Table 9's three judges, the
"panel of LLM evaluators" idea): every member judges every pair in both orders, and a rule
combines their P(A better):

- ``mean``: the mean of the members' P, per order;
- ``majority``: P = the share of members whose verdict (their mean over both orders) is A, a tie
  counting half; so the panel picks A when more members pick A than B;
- ``unanimous``: the members' mean P when every member picks the same side, else 0.5 (a tie:
  a build drops the pair as ``judge_tie``), so a pair is kept only when all agree.

Each member's own judgment is kept in ``Judgment.members`` (by label), and the raw output of
each order is a JSON object ``{label: raw}``. The panel adds no work of its own: the members'
calls are the whole cost.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from selfpref import SelfprefError
from selfpref.judges.base import Judgment, PairItem, PairwiseJudge, as_item

RULES = ("mean", "majority", "unanimous")


def _side(score: float) -> float:
    return 1.0 if score > 0.5 else 0.0 if score < 0.5 else 0.5


class PanelJudge(PairwiseJudge):
    kind = "panel"

    def __init__(self, judges: Sequence[PairwiseJudge], rule: str = "mean") -> None:
        if rule not in RULES:
            raise SelfprefError(f"--panel {rule!r}: use mean, majority or unanimous")
        if len(judges) < 2:
            raise SelfprefError("--panel needs at least two judges: give --judge-model more than once")
        if any(j.orders != 2 for j in judges):
            raise SelfprefError("--panel: every member judges both orders; drop --judge-orders 1")
        super().__init__()
        labels = [j.label for j in judges]
        if len(set(labels)) != len(labels):  # two members with one label: number them
            labels = [f"{label}#{i}" for i, label in enumerate(labels)]
        self.judges, self.rule, self.labels = list(judges), rule, labels

    @property
    def label(self) -> str:
        return f"panel-{self.rule}:" + "+".join(self.labels)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "rule": self.rule,
                "members": [{**j.describe(), "label": label} for j, label in zip(self.judges, self.labels)]}

    def combine(self, members: Sequence[Judgment]) -> tuple[float, float]:
        k = len(members)
        if self.rule == "mean":
            return (sum(m.p_a_first for m in members) / k, sum(m.p_a_second for m in members) / k)
        if self.rule == "majority":
            share = sum(_side(m.score) for m in members) / k
            return share, share
        sides = {_side(m.score) for m in members}
        if len(sides) == 1 and 0.5 not in sides:
            return (sum(m.p_a_first for m in members) / k, sum(m.p_a_second for m in members) / k)
        return 0.5, 0.5

    def judge(self, items: Sequence[PairItem | Sequence[Any]]) -> list[Judgment]:
        pairs = [as_item(item) for item in items]
        per_judge = [j.judge(pairs) for j in self.judges]
        out = []
        for i in range(len(pairs)):
            members = [verdicts[i] for verdicts in per_judge]
            p1, p2 = self.combine(members)
            raw = tuple(json.dumps({label: m.raw[o] for label, m in zip(self.labels, members)},
                                   ensure_ascii=False) for o in (0, 1))
            out.append(Judgment(p1, p2, (raw[0], raw[1]), members=dict(zip(self.labels, members))))
        return out
