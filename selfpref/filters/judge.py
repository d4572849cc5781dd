"""Filters on the label itself: judge consistency, confidence, and judges that dispute a pair."""

from __future__ import annotations

from typing import Any

import polars as pl

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
            raise ValueError(f"--min-confidence {minimum}: must be in [0, 1]")
        self.minimum = minimum

    def reasons(self, batches: Batches, n: int) -> list[str | None]:
        values = gather(batches)["confidence"].cast(pl.Float64).to_list()
        return [("no_confidence" if v is None else "low_confidence" if v < self.minimum else None)
                for v in values]


class JudgeDispute(Filter):
    """SSO A.1.4 step 2: each judge compares the pair in both orders; any dispute drops it.

    Uses the pipelines' forced-choice judge (option-label probabilities averaged over both
    orders), so a judge's position bias cannot dispute a pair by itself.
    """

    name = "judge_dispute"
    columns = ("prompt", "chosen", "rejected")

    def __init__(self, judge_models: list[str], batch_size: int = 8, llms: list[Any] | None = None) -> None:
        if not judge_models and not llms:
            raise ValueError("--judge-models needs at least one model")
        self.judge_models, self.batch_size = list(judge_models), batch_size
        self._llms = llms

    def parameters(self) -> dict:
        return {"judge_models": self.judge_models, "mode": "logits, both orders"}

    def _judges(self) -> list[Any]:
        if self._llms is not None:
            return self._llms
        from selfpref.pipelines.llms import LocalTransformersLLM

        judges = []
        for model in self.judge_models:
            llm = LocalTransformersLLM(model=model, batch_size=self.batch_size)
            llm.load()
            judges.append(llm)
        return judges

    def reasons(self, batches: Batches, n: int) -> list[str | None]:
        from selfpref.pipelines.sao import judge_chat

        rows = gather(batches)
        out: list[str | None] = [None] * rows.height
        for judge in self._judges():
            chats = []
            for p, c, r in rows.select("prompt", "chosen", "rejected").iter_rows():
                chats += [judge_chat(p, c, r), judge_chat(p, r, c)]
            probs = judge.option_probabilities(chats, ("A", "B")) if chats else []
            for i in range(rows.height):
                p_chosen = (probs[2 * i][0] + probs[2 * i + 1][1]) / 2  # both orders averaged
                if out[i] is None and p_chosen < 0.5:
                    out[i] = "judge_disputes"
        return out
