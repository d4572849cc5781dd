"""The pairwise judge interface: (prompt, history, A, B) in, both orders asked, one Judgment out.

By default every judge shows each pair twice, A first and then B first, and reports P(A better)
for each order, their mean, the raw outputs and whether the orders agree. Asking both orders is
selfpref's choice, not the papers': SAO Alg. 1 / Eq. 3 make one call R(y1, y2 | x) per pair.
``orders=1`` (``--judge-orders 1``) makes that single call, A shown first; its judgment then has
no consistency to report (``consistent`` is None) and its score is the one order's P. A kind only answers "how likely
is the first-shown answer the better one?" for each presentation (`PairwiseJudge.prefer_first`);
the base class builds the presentations and maps them back onto A and B, so position handling is
written once. With aspects, each aspect is one more pair of presentations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from selfpref import SelfprefError
from selfpref.judges.prompts import ASPECTS, CRITERIA, TEMPLATES, Chat, judge_chat

Message = Mapping[str, str]


@dataclass(frozen=True)
class PairItem:
    """One comparison: the user turn, earlier turns (``{role, content}``) and the two answers."""

    prompt: str
    a: str
    b: str
    history: tuple[Message, ...] = ()


@dataclass(frozen=True)
class Shown:
    """One presentation to the judge: ``first`` is labelled A, ``second`` B."""

    prompt: str
    first: str
    second: str
    aspect: str | None = None
    history: tuple[Message, ...] = ()
    template: str = "selfpref"
    criteria: tuple[str, ...] = CRITERIA

    def chat(self) -> Chat:
        return judge_chat(self.prompt, self.first, self.second, aspect=self.aspect,
                          history=self.history, template=self.template, criteria=self.criteria)


@dataclass(frozen=True)
class Judgment:
    """Both orders of one comparison (overall, and per aspect in ``aspects``).

    ``p_a_first``: P(A better) when A is shown first; ``p_a_second``: when A is shown second.
    ``raw``: the judge's raw outputs in that order (text, option probability, a rule's note).
    """

    p_a_first: float
    p_a_second: float
    raw: tuple[str, str]
    aspects: Mapping[str, Judgment] = field(default_factory=dict)
    orders: int = 2  # 1: one call, A shown first (p_a_second repeats p_a_first, raw[1] is "")
    members: Mapping[str, Judgment] = field(default_factory=dict)  # a panel's judges, by label

    @property
    def score(self) -> float:
        """P(A better), the mean of both orders: position bias cancels."""
        return (self.p_a_first + self.p_a_second) / 2.0

    @property
    def consistent(self) -> bool | None:
        """Both orders pick the same side; a tie or an unreadable verdict in either picks none.
        None when only one order was asked (nothing to compare)."""
        if self.orders == 1:
            return None
        return (self.p_a_first > 0.5 and self.p_a_second > 0.5) or (
            self.p_a_first < 0.5 and self.p_a_second < 0.5)

    def swapped(self) -> Judgment:
        """The same judgment read with A and B exchanged."""
        if self.orders == 1:  # one call, A first: swapping A and B does not swap positions
            return Judgment(1.0 - self.p_a_first, 1.0 - self.p_a_first, self.raw,
                            {k: v.swapped() for k, v in self.aspects.items()}, 1,
                            {k: v.swapped() for k, v in self.members.items()})
        return Judgment(1.0 - self.p_a_second, 1.0 - self.p_a_first, (self.raw[1], self.raw[0]),
                        {k: v.swapped() for k, v in self.aspects.items()}, 2,
                        {k: v.swapped() for k, v in self.members.items()})


def as_item(item: PairItem | Sequence[Any]) -> PairItem:
    """A PairItem from itself, ``(prompt, a, b)`` or ``(prompt, history, a, b)``."""
    if isinstance(item, PairItem):
        return item
    if len(item) == 3:
        return PairItem(str(item[0]), str(item[1]), str(item[2]))
    if len(item) == 4:
        return PairItem(str(item[0]), str(item[2]), str(item[3]), tuple(item[1] or ()))
    raise ValueError(f"a pair to judge is (prompt, a, b) or (prompt, history, a, b), not {len(item)} values")


def check_aspects(aspects: Sequence[str] | str | None) -> tuple[str, ...]:
    """Aspect names in order, lowercased; an unknown name is a one-line error."""
    if not aspects:
        return ()
    names = [a.strip().lower() for a in (aspects.split(",") if isinstance(aspects, str) else aspects)]
    names = [a for a in names if a]
    unknown = [a for a in names if a not in ASPECTS]
    if unknown:
        raise SelfprefError(f"--aspects {unknown[0]!r}: unknown aspect; choose from "
                            f"{','.join(ASPECTS)} (AlignEZ §3)")
    return tuple(dict.fromkeys(names))


def check_orders(orders: int) -> int:
    if orders not in (1, 2):
        raise SelfprefError(f"--judge-orders {orders}: use 2 (both orders, selfpref's default) or 1 "
                            "(SAO Alg. 1 / Eq. 3's single call, A shown first)")
    return int(orders)


class PairwiseJudge:
    """Base class: ``judge(items)`` asks both orders per item (and per aspect) in one batch
    (``orders=1``: only A first)."""

    kind = "base"
    criteria: tuple[str, ...] = CRITERIA  # SAO Table 6's "w/o Criterion k": set to three of them

    def __init__(self, *, aspects: Sequence[str] | str | None = None, orders: int = 2,
                 template: str = "selfpref") -> None:
        self.aspects = check_aspects(aspects)
        self.orders = check_orders(orders)
        if template not in TEMPLATES:
            raise SelfprefError(f"--judge-template {template!r}: use one of {', '.join(TEMPLATES)}")
        if template != "selfpref" and self.aspects:
            raise SelfprefError(f"--judge-template {template}: judges overall only; drop --aspects")
        self.template = template

    @property
    def label(self) -> str:
        """How the judge is named in records and reports, e.g. ``logits:HuggingFaceTB/...``."""
        return self.kind

    def describe(self) -> dict[str, Any]:
        """JSON-ready description for eval.json and build records (never holds a credential)."""
        described = {"kind": self.kind, "label": self.label, "aspects": list(self.aspects),
                     "orders": self.orders, "template": self.template}
        if self.criteria != CRITERIA:  # SAO Table 6's ablation; the default stays as it was
            described["criteria"] = list(self.criteria)
        return described

    def prefer_first(self, shown: Sequence[Shown]) -> list[tuple[float, str]]:
        """Per presentation: (P(first-shown answer better), raw output)."""
        raise NotImplementedError

    def judge(self, items: Sequence[PairItem | Sequence[Any]]) -> list[Judgment]:
        pairs = [as_item(item) for item in items]
        criteria: tuple[str | None, ...] = (None, *self.aspects)
        layouts = (lambda p: ((p.a, p.b), (p.b, p.a))) if self.orders == 2 else (lambda p: ((p.a, p.b),))
        shown = [Shown(p.prompt, first, second, aspect, p.history, self.template, self.criteria)
                 for p in pairs for aspect in criteria for first, second in layouts(p)]
        answers = self.prefer_first(shown) if shown else []
        if len(answers) != len(shown):
            raise RuntimeError(f"{self.label}: {len(answers)} verdicts for {len(shown)} presentations")
        out, i = [], 0
        for _ in pairs:
            per_criterion = []
            for _ in criteria:
                if self.orders == 1:
                    p1, raw1 = answers[i]
                    i += 1
                    per_criterion.append(Judgment(float(p1), float(p1), (raw1, ""), orders=1))
                    continue
                (p1, raw1), (p2, raw2) = answers[i], answers[i + 1]
                i += 2
                per_criterion.append(Judgment(float(p1), 1.0 - float(p2), (raw1, raw2)))
            overall, *by_aspect = per_criterion
            out.append(Judgment(overall.p_a_first, overall.p_a_second, overall.raw,
                                dict(zip(self.aspects, by_aspect)), self.orders))
        return out
