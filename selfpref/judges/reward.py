"""The reward-model judge: each answer scored alone, P(A better) = sigmoid(r_A - r_B).

Bradley-Terry (the model `selfpref train rm` fits): a reward model gives each (conversation,
answer) a scalar, and the probability that A is preferred is the logistic of the difference.
The score of an answer does not depend on the order of presentation, so each distinct answer is
scored once and both "orders" of a pair read the same two rewards: P is the same in both and the
judgment is consistent unless the rewards are equal (a tie, 0.5). The raw output of each order is
"rewards r_first vs r_second", the raw rewards, kept in ``judge_raw``.

A model is anything with ``rewards(conversations) -> list[float]``:
``selfpref.models.reward.RewardModel`` (loaded once per build through the model pool) or a
script in tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

from selfpref import SelfprefError
from selfpref.judges.base import PairwiseJudge, Shown

Chat = list[dict[str, str]]


class RewardScorer(Protocol):
    def rewards(self, conversations: Sequence[Chat]) -> list[float]: ...


def bradley_terry(r_a: float, r_b: float) -> float:
    """P(A better) = sigmoid(r_A - r_B), computed without overflow for large differences."""
    d = float(r_a) - float(r_b)
    if d >= 0:
        return 1.0 / (1.0 + math.exp(-d))
    e = math.exp(d)
    return e / (1.0 + e)


def answer_chat(prompt: str, answer: str, history: Sequence[Any] = ()) -> Chat:
    """The conversation a reward model scores: earlier turns, the user turn, the answer."""
    return [*({"role": m.get("role", "user"), "content": m.get("content", "")} for m in history),
            {"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


class RewardJudge(PairwiseJudge):
    kind = "rm"

    def __init__(self, model: RewardScorer, *, model_label: str | None = None,
                 aspects: Sequence[str] | str | None = None, orders: int = 2) -> None:
        super().__init__(aspects=aspects, orders=orders)
        if self.aspects:
            raise SelfprefError("--aspects: a reward model gives one score per answer, not one per "
                                "aspect; use --judge text|logits for aspects")
        self.model = model
        self.model_label = model_label or str(getattr(model, "label", None) or type(model).__name__)

    @property
    def label(self) -> str:
        return f"rm:{self.model_label}"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": self.model_label,
                "p": "sigmoid(r_A - r_B) (Bradley-Terry)"}

    def prefer_first(self, shown: Sequence[Shown]) -> list[tuple[float, str]]:
        # Both orders of a pair hold the same two answers: score each distinct one once.
        keys: list[tuple[str, tuple, str]] = []
        index: dict[tuple[str, tuple, str], int] = {}
        for s in shown:
            for answer in (s.first, s.second):
                key = (s.prompt, tuple(tuple(sorted(m.items())) for m in s.history), answer)
                if key not in index:
                    index[key] = len(keys)
                    keys.append(key)
        chats = [answer_chat(p, a, [dict(m) for m in h]) for p, h, a in keys]
        rewards = list(self.model.rewards(chats)) if chats else []
        if len(rewards) != len(chats):
            raise RuntimeError(f"{self.label}: {len(rewards)} rewards for {len(chats)} answers")
        out = []
        for s in shown:
            h = tuple(tuple(sorted(m.items())) for m in s.history)
            r1 = rewards[index[(s.prompt, h, s.first)]]
            r2 = rewards[index[(s.prompt, h, s.second)]]
            out.append((bradley_terry(r1, r2), f"rewards {r1:.6g} vs {r2:.6g}"))
        return out


class ImplicitRewards:
    """SELFEE's implicit reward (Eq. 7) as a reward model: r = beta * (log pi(y|x) - log
    pi_ref(y|x)) with summed log-probs; without a reference (SELFEE Table 5) r = beta * the
    per-token mean log pi(y|x). ``policy`` / ``reference``: anything with ``answer_logps``."""

    def __init__(self, policy: Any, reference: Any = None, *, beta: float = 0.1) -> None:
        self.policy, self.reference, self.beta = policy, reference, float(beta)

    def rewards(self, conversations: Sequence[Chat]) -> list[float]:
        prompts = [list(c[:-1]) for c in conversations]
        answers = [c[-1]["content"] for c in conversations]
        logps, counts = self.policy.answer_logps(prompts, answers)
        if self.reference is None:
            return [self.beta * lp / max(1, n) for lp, n in zip(logps, counts)]
        ref = self.reference.answer_logps(prompts, answers)[0]
        return [self.beta * (lp - r) for lp, r in zip(logps, ref)]


class ImplicitRewardJudge(RewardJudge):
    """``--judge implicit``: a policy's implicit reward against a reference (SELFEE §4.1),
    P(A better) = sigmoid(r_A - r_B), the label SELFEE's build gives."""

    kind = "implicit"

    def __init__(self, policy: Any, reference: Any = None, *, beta: float = 0.1,
                 model_label: str | None = None, reference_label: str | None = None,
                 orders: int = 2) -> None:
        super().__init__(ImplicitRewards(policy, reference, beta=beta), model_label=model_label
                         or str(getattr(policy, "ref", None) or "policy"), orders=orders)
        self.reference_label = reference_label or ("reference-free" if reference is None else "reference")
        self.beta = beta

    @property
    def label(self) -> str:
        return f"implicit:{self.model_label}|{self.reference_label}"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "reference": self.reference_label, "beta": self.beta,
                "p": "sigmoid(r_A - r_B), r = beta * (log pi - log pi_ref) (SELFEE Eq. 7)"}
