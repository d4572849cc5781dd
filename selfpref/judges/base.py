"""The pairwise judge interface: (prompt, history, A, B) in, both orders asked, one Judgment out.

Every judge shows each pair twice, A first and then B first, and reports P(A better) for each
order, their mean, the raw outputs and whether the orders agree. A kind only answers "how likely
is the first-shown answer the better one?" for each presentation (`PairwiseJudge.prefer_first`);
the base class builds the presentations and maps them back onto A and B, so position handling is
written once. With aspects, each aspect is one more pair of presentations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from selfpref import SelfprefError
from selfpref.judges.prompts import ASPECTS, Chat, judge_chat

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

    def chat(self) -> Chat:
        return judge_chat(self.prompt, self.first, self.second, aspect=self.aspect,
                          history=self.history)


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

    @property
    def score(self) -> float:
        """P(A better), the mean of both orders: position bias cancels."""
        return (self.p_a_first + self.p_a_second) / 2.0

    @property
    def consistent(self) -> bool:
        """Both orders pick the same side; a tie or an unreadable verdict in either picks none."""
        return (self.p_a_first > 0.5 and self.p_a_second > 0.5) or (
            self.p_a_first < 0.5 and self.p_a_second < 0.5)

    def swapped(self) -> Judgment:
        """The same judgment read with A and B exchanged."""
        return Judgment(1.0 - self.p_a_second, 1.0 - self.p_a_first, (self.raw[1], self.raw[0]),
                        {k: v.swapped() for k, v in self.aspects.items()})


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


class PairwiseJudge:
    """Base class: ``judge(items)`` asks both orders per item (and per aspect) in one batch."""

    kind = "base"

    def __init__(self, *, aspects: Sequence[str] | str | None = None) -> None:
        self.aspects = check_aspects(aspects)

    @property
    def label(self) -> str:
        """How the judge is named in records and reports, e.g. ``logits:HuggingFaceTB/...``."""
        return self.kind

    def describe(self) -> dict[str, Any]:
        """JSON-ready description for eval.json and build records (never holds a credential)."""
        return {"kind": self.kind, "label": self.label, "aspects": list(self.aspects)}

    def prefer_first(self, shown: Sequence[Shown]) -> list[tuple[float, str]]:
        """Per presentation: (P(first-shown answer better), raw output)."""
        raise NotImplementedError

    def judge(self, items: Sequence[PairItem | Sequence[Any]]) -> list[Judgment]:
        pairs = [as_item(item) for item in items]
        criteria: tuple[str | None, ...] = (None, *self.aspects)
        shown = [Shown(p.prompt, first, second, aspect, p.history)
                 for p in pairs for aspect in criteria for first, second in ((p.a, p.b), (p.b, p.a))]
        answers = self.prefer_first(shown) if shown else []
        if len(answers) != len(shown):
            raise RuntimeError(f"{self.label}: {len(answers)} verdicts for {len(shown)} presentations")
        out, i = [], 0
        for _ in pairs:
            per_criterion = []
            for _ in criteria:
                (p1, raw1), (p2, raw2) = answers[i], answers[i + 1]
                i += 2
                per_criterion.append(Judgment(float(p1), 1.0 - float(p2), (raw1, raw2)))
            overall, *by_aspect = per_criterion
            out.append(Judgment(overall.p_a_first, overall.p_a_second, overall.raw,
                                dict(zip(self.aspects, by_aspect))))
        return out
