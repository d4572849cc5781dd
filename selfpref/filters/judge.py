"""Filters on the label itself: judge consistency, confidence, and judges that dispute a pair."""

from __future__ import annotations

from typing import Any

import polars as pl

from selfpref import SelfprefError
from selfpref.filters.base import Batches, Filter, gather


class RequireConsistentJudge(Filter):
    """Keep pairs whose self-judge gave the same verdict in both orders."""

    name = "judge_consistency"
    columns = ("judge_consistent",)

    def reasons(self, batches: Batches, n: int) -> list[str | None]:
        values = gather(batches)["judge_consistent"].to_list()
        return [None if v else "judge_inconsistent" for v in values]


class MinConfidence(Filter):
    """Keep pairs whose ``confidence`` is at least ``minimum`` (null confidence is dropped)."""

    name = "min_confidence"
    columns = ("confidence",)

    def __init__(self, minimum: float) -> None:
        if not 0 <= minimum <= 1:
            raise SelfprefError(f"--min-confidence {minimum}: must be in [0, 1]")
        self.minimum = minimum

    def reasons(self, batches: Batches, n: int) -> list[str | None]:
        values = gather(batches)["confidence"].cast(pl.Float64).to_list()
        return [("no_confidence" if v is None else "low_confidence" if v < self.minimum else None)
                for v in values]


class JudgeDispute(Filter):
    """SSO A.1.4 step 2: "if any judge thought the quality of the rejected response was higher
    than the chosen one, it was removed".

    Each judge comes from the judges layer (``make_judge``): ``kind='logits'`` (the default: the
    option-label probabilities), ``'text'`` (a written verdict) or ``'rm'`` (a reward model), on a
    model folder, a Hub id or ``default``. Each judge sees the pair in both orders (selfpref's
    choice; A.1.4 does not say) and its P(chosen better) is the mean of its two orders, so a
    judge's position bias cannot dispute a pair by itself.

    ``rule='any'`` (A.1.4, the default): a pair is disputed when any judge's P is below 0.5.
    ``rule='mean'``: when the mean of the judges' P is below 0.5 (a softer panel).
    ``template='sso'`` (the default): SSO Table 15's leaderboard template, "the same in A.3.2"
    (its Task paragraph is lost from the seed text and reconstructed from AlpacaEval, see
    `selfpref.judges.prompts`); ``'selfpref'``: selfpref's own judge prompt.
    """

    name = "judge_dispute"
    columns = ("prompt", "chosen", "rejected")
    KINDS = ("logits", "text", "rm")
    RULES = ("any", "mean")

    def __init__(self, judge_models: list[str], batch_size: int = 8, llms: list[Any] | None = None,
                 kind: str = "logits", rule: str = "any", template: str = "sso") -> None:
        from selfpref.judges.prompts import TEMPLATES

        if not judge_models and not llms:
            raise SelfprefError("--judge-models needs at least one model")
        if kind not in self.KINDS:
            raise SelfprefError(f"--judge {kind!r}: the dispute filter's judges are models; use "
                                f"{', '.join(self.KINDS)}")
        if rule not in self.RULES:
            raise SelfprefError(f"--dispute-rule {rule!r}: use any (SSO A.1.4: any judge that "
                                "prefers the rejected answer drops the pair) or mean")
        if template not in TEMPLATES:
            raise SelfprefError(f"--judge-template {template!r}: use sso (SSO Table 15) or selfpref")
        self.judge_models, self.batch_size, self.kind = list(judge_models), batch_size, kind
        self.rule, self.template = rule, template
        self._llms = llms

    def parameters(self) -> dict:
        return {"judge_models": self.judge_models, "judge": self.kind, "orders": "both",
                "rule": self.rule, "template": "none (reward model)" if self.kind == "rm" else self.template}

    def _judges(self) -> list[Any]:
        from selfpref.judges import make_judge

        template: dict[str, Any] = {} if self.kind == "rm" else {"template": self.template}
        if self._llms is not None:
            return [make_judge(self.kind, llm, model_label=f"judge-{i}", **template)
                    for i, llm in enumerate(self._llms)]
        return [make_judge(self.kind, model, batch_size=self.batch_size, **template)
                for model in self.judge_models]

    def reasons(self, batches: Batches, n: int) -> list[str | None]:
        triples = list(gather(batches).select("prompt", "chosen", "rejected").iter_rows())
        # P(chosen better) per judge, each the mean of that judge's two orders
        scores = [[v.score for v in judge.judge(triples)] for judge in self._judges()]
        out: list[str | None] = []
        for i in range(len(triples)):
            per_judge = [s[i] for s in scores]
            disputed = (min(per_judge) < 0.5 if self.rule == "any"
                        else sum(per_judge) / len(per_judge) < 0.5)
            out.append("judge_disputes" if disputed else None)
        return out
