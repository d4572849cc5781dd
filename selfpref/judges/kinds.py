"""The judge kinds: a written verdict, a forced choice, and SAO Table 6's two baselines.

(The reward-model kind, ``rm``, is `selfpref.judges.reward.RewardJudge`.)

- `TextJudge`: the model writes a verdict (greedy) that `parse_verdict` reads; "A" gives 1 for
  that order, "B" 0, and a tie or an unreadable verdict 0.5 (the raw text is kept).
- `LogitsJudge`: P(next token = "A") renormalised over "A" and "B" (a forced choice): it always
  gives a graded verdict.
- `LengthJudge`: SAO Table 6's length-based feedback, which prefers the *shorter* answer (SAO §4.4:
  "Length-Based (preferring shorter responses)"); ``prefer="longer"`` gives the opposite rule.
  Equal lengths (in characters) are a tie: 0.5 in both orders.
- `RandomJudge`: SAO Table 6's random feedback, a fair coin per pair: the pick is whichever
  answer has the smaller seeded hash, so it does not depend on position, batch or order of calls,
  both orders agree, and swapping A and B swaps the pick. Identical answers tie.

A model is anything with ``generate(chats, ...) -> list[list[str]]`` (text) or
``option_probabilities(chats, options) -> list[list[float]]`` (logits): `selfpref.models`'
LocalModel, OpenAICompatModel, or a script in tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Protocol

from selfpref.judges.base import PairwiseJudge, Shown
from selfpref.judges.prompts import TEMPLATE_OPTIONS
from selfpref.judges.verdict import parse_verdict

Chat = list[dict[str, str]]


class TextModel(Protocol):
    def generate(self, chats: Sequence[Chat], *, num_generations: int = 1, max_new_tokens: int = 128,
                 temperature: float = 0.7, top_p: float = 1.0,
                 seed: int | None = None) -> Sequence[Sequence[str | None]]: ...


class OptionScorer(Protocol):
    """Anything that gives P(next token = option) per conversation (a loaded model, a script)."""

    def option_probabilities(self, chats: Sequence[Chat], options: Sequence[str]) -> list[list[float]]: ...


VERDICT_VALUE = {"A": 1.0, "B": 0.0}


def read_verdict(raw: str, template: str = "selfpref") -> str | None:
    """'A', 'B', 'tie' or None. SSO's template asks for a model identifier, "m" (first shown) or
    "M" (second), and nothing else; anything else is read as a selfpref verdict would be."""
    if template == "sso":
        token = raw.strip().strip("\"'`*.:").split()
        if token and token[0].strip("\"'`*.:") in ("m", "M"):
            return "A" if token[0].strip("\"'`*.:") == "m" else "B"
    return parse_verdict(raw)


class _ModelJudge(PairwiseJudge):
    def __init__(self, model: Any, *, model_label: str | None = None,
                 aspects: Sequence[str] | str | None = None, orders: int = 2,
                 template: str = "selfpref") -> None:
        super().__init__(aspects=aspects, orders=orders, template=template)
        self.model = model
        self.model_label = model_label or str(getattr(model, "label", None) or getattr(model, "ref", None)
                                              or type(model).__name__)

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.model_label}"

    def describe(self) -> dict[str, Any]:
        info = {**super().describe(), "model": self.model_label}
        describe = getattr(self.model, "describe", None)  # an endpoint adds its URL and key variable
        if callable(describe):
            info["backend"] = describe()
        return info


class TextJudge(_ModelJudge):
    kind = "text"

    def __init__(self, model: TextModel, *, max_new_tokens: int = 32, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.max_new_tokens = max_new_tokens

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "max_new_tokens": self.max_new_tokens, "decoding": "greedy"}

    def prefer_first(self, shown: Sequence[Shown]) -> list[tuple[float, str]]:
        texts = self.model.generate([s.chat() for s in shown], num_generations=1,
                                    max_new_tokens=self.max_new_tokens, temperature=0.0)
        out = []
        for generations in texts:
            raw = (generations[0] if generations else None) or ""
            out.append((VERDICT_VALUE.get(read_verdict(raw, self.template) or "", 0.5), raw))
        return out


class LogitsJudge(_ModelJudge):
    kind = "logits"

    def prefer_first(self, shown: Sequence[Shown]) -> list[tuple[float, str]]:
        probs = self.model.option_probabilities([s.chat() for s in shown],
                                                TEMPLATE_OPTIONS[self.template])
        return [(float(p[0]), f"{float(p[0]):.6f}") for p in probs]


class LengthJudge(PairwiseJudge):
    kind = "length"

    def __init__(self, *, prefer: str = "shorter", aspects: Sequence[str] | str | None = None,
                 orders: int = 2) -> None:
        if prefer not in ("shorter", "longer"):
            raise ValueError(f"prefer={prefer!r}: use 'shorter' (SAO Table 6) or 'longer'")
        super().__init__(aspects=aspects, orders=orders)
        self.prefer = prefer

    @property
    def label(self) -> str:
        return "length" if self.prefer == "shorter" else "length:longer"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "prefer": self.prefer}

    def prefer_first(self, shown: Sequence[Shown]) -> list[tuple[float, str]]:
        out = []
        for s in shown:
            n1, n2 = len(s.first), len(s.second)
            first_wins = n1 < n2 if self.prefer == "shorter" else n1 > n2
            p = 0.5 if n1 == n2 else float(first_wins)
            out.append((p, f"length {n1} vs {n2}"))
        return out


class RandomJudge(PairwiseJudge):
    kind = "random"

    def __init__(self, *, seed: int = 0, aspects: Sequence[str] | str | None = None,
                 orders: int = 2) -> None:
        super().__init__(aspects=aspects, orders=orders)
        self.seed = seed

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "seed": self.seed}

    def _draw(self, s: Shown, answer: str) -> str:
        key = "\x00".join([str(self.seed), s.aspect or "", s.prompt, answer])
        return hashlib.sha256(key.encode()).hexdigest()

    def prefer_first(self, shown: Sequence[Shown]) -> list[tuple[float, str]]:
        out = []
        for s in shown:
            h1, h2 = self._draw(s, s.first), self._draw(s, s.second)
            p = 0.5 if h1 == h2 else float(h1 < h2)
            out.append((p, {1.0: "random pick: A", 0.0: "random pick: B"}.get(p, "random: tie")))
        return out
