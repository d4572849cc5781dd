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
    """SSO A.1.4 step 2: each judge compares the pair in both orders; any dispute drops it.

    Each judge comes from the judges layer (``make_judge``): ``kind='logits'`` (the default: the
    option-label probabilities averaged over both orders) or ``'text'`` (a written verdict per
    order), on a model folder, a Hub id or ``default``; a pair is disputed when a judge's
    P(chosen better), the mean of both orders, is below 0.5, so a judge's position bias cannot
    dispute a pair by itself.
    """

    name = "judge_dispute"
    columns = ("prompt", "chosen", "rejected")
    KINDS = ("logits", "text")

    def __init__(self, judge_models: list[str], batch_size: int = 8, llms: list[Any] | None = None,
                 kind: str = "logits") -> None:
        if not judge_models and not llms:
            raise SelfprefError("--judge-models needs at least one model")
        if kind not in self.KINDS:
            raise SelfprefError(f"--judge {kind!r}: the dispute filter's judges are models; use "
                                f"{' or '.join(self.KINDS)}")
        self.judge_models, self.batch_size, self.kind = list(judge_models), batch_size, kind
        self._llms = llms

    def parameters(self) -> dict:
        return {"judge_models": self.judge_models, "judge": self.kind, "orders": "both"}

    def _judges(self) -> list[Any]:
        from selfpref.judges import make_judge

        if self._llms is not None:
            return [make_judge(self.kind, llm, model_label=f"judge-{i}")
                    for i, llm in enumerate(self._llms)]
        return [make_judge(self.kind, model, batch_size=self.batch_size) for model in self.judge_models]

    def reasons(self, batches: Batches, n: int) -> list[str | None]:
        triples = list(gather(batches).select("prompt", "chosen", "rejected").iter_rows())
        out: list[str | None] = [None] * len(triples)
        for judge in self._judges():
            for i, verdict in enumerate(judge.judge(triples)):
                if out[i] is None and verdict.score < 0.5:  # P(chosen better), both orders
                    out[i] = "judge_disputes"
        return out
