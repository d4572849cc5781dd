"""The pairwise judge of SAO §3.3 (Figure 5's ranking prompt), asked in both orders.

One home for the judge prompt and for turning the two verdicts into a label: SAO's build, the SSO
dispute filter and evaluation all use it, so none of them imports another's internals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from selfpref.judges.verdict import parse_verdict

Chat = list[dict[str, str]]
OPTIONS = ("A", "B")

JUDGE_TEMPLATE = (
    "You are an impartial judge. Compare the two responses to the user's question on relevance, "
    "accuracy, completeness and clarity, and decide which one is better.\n\n"
    "[Question]\n{prompt}\n\n[Response A]\n{first}\n\n[Response B]\n{second}\n\n"
    "Which response is better? Answer with a single letter, A or B.")


class OptionScorer(Protocol):
    """Anything that gives P(next token = option) per conversation (a loaded model, a script)."""

    def option_probabilities(self, chats: Sequence[Chat], options: Sequence[str]) -> list[list[float]]: ...


def judge_chat(prompt: str, first: str, second: str) -> Chat:
    return [{"role": "user", "content": JUDGE_TEMPLATE.format(prompt=prompt, first=first, second=second)}]


def both_orders(prompt: str, a: str, b: str) -> list[Chat]:
    """The judge asked with (a, b) and then with (b, a)."""
    return [judge_chat(prompt, a, b), judge_chat(prompt, b, a)]


def forced_choice(judge: OptionScorer, triples: Sequence[tuple[str, str, str]]) -> list[float]:
    """P(a better than b) per (prompt, a, b), the option probabilities averaged over both orders."""
    chats = [chat for p, a, b in triples for chat in both_orders(p, a, b)]
    probs = judge.option_probabilities(chats, OPTIONS) if chats else []
    return [(probs[2 * i][0] + probs[2 * i + 1][1]) / 2 for i in range(len(triples))]


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
