"""SAO (Aligning LLMs via Fully Self-Synthetic Data, §3, Alg. 1) as a distilabel pipeline.

persona -> one prompt per persona (§3.1) -> two sampled answers (§3.2, Eq. 2) -> the same model
ranks them with a pairwise prompt (§3.3, Eq. 3), asked in both orders so position bias shows up
as ``judge_consistent=false`` instead of hiding in the labels.
"""


import collections
from typing import Any

from selfpref.data.schema import make_row
from selfpref.judges.pairwise import both_orders, decide
from selfpref.pipelines._distilabel import StepInput
from selfpref.pipelines.prompting import (  # noqa: F401
    PERSONA_TEMPLATE,
    PROMPT_TEMPLATE,
    WritePersona,
    WritePrompt,
    prompt_steps,
)
from selfpref.pipelines.tasks import AnswerPair, Chat, MultiConversationTask


def _needs_judging(row: dict[str, Any]) -> bool:
    answers = row.get("answers") or []
    return (not row.get("drop_reason") and len(answers) == 2 and all(a.strip() for a in answers)
            and answers[0] != answers[1])


class PairwiseSelfJudge(MultiConversationTask):
    """Asks the judge in both orders. Input: ``prompt``, ``answers``; output: ``judge_raw``.

    ``judge_raw`` holds the order (answers[0], answers[1]) verdict first, then the swapped one.
    With ``mode='logits'`` it holds P(first-shown answer is better) for each order, as text.
    """

    mode: str = "text"

    @property
    def inputs(self) -> list[str]:
        return ["prompt", "answers"]

    @property
    def outputs(self) -> list[str]:
        return ["judge_raw"]

    def conversations(self, row: dict[str, Any]) -> list[Chat]:
        if not _needs_judging(row):
            return []
        return both_orders(row["prompt"], *row["answers"])

    def parse(self, row: dict[str, Any], generations: list[list[str | None]]) -> dict[str, Any]:
        return {"judge_raw": [g[0] for g in generations] if generations else None}

    def process(self, inputs: StepInput):  # type: ignore[override]
        if self.mode == "text":
            yield from super().process(inputs)
            return
        per_row = [self.conversations(row) for row in inputs]
        flat = [c for chats in per_row for c in chats]
        probs = self.llm.option_probabilities(flat, ("A", "B")) if flat else []
        out, i = [], 0
        for row, chats in zip(inputs, per_row):
            raw = [f"{p[0]:.6f}" for p in probs[i : i + len(chats)]] or None
            i += len(chats)
            out.append({**row, "judge_raw": raw, "model_name": self.llm.model_name})
        yield out


def assemble(rows: list[dict[str, Any]], *, generator: str, judge_mode: str = "text",
             **_: Any) -> tuple[list[dict], collections.Counter]:
    """Contract records from the pipeline's rows, and the count of rows dropped per reason."""
    records, dropped = [], collections.Counter()
    for row in rows:
        answers = row.get("answers") or []
        reason = row.get("drop_reason")
        if not reason and len(answers) != 2:
            reason = "no_answers"
        elif not reason and not all(a.strip() for a in answers):
            reason = "empty_answer"
        elif not reason and answers[0] == answers[1]:
            reason = "identical_answers"
        if reason:
            dropped[reason] += 1
            continue
        chosen_idx, consistent, confidence, reason = decide(row.get("judge_raw"), judge_mode)
        if reason:
            dropped[reason] += 1
            continue
        labeler = f"self-judge:{generator}" + ("" if judge_mode == "text" else "|logits")
        records.append(make_row(row["prompt"], answers[chosen_idx], answers[1 - chosen_idx],
                                method="sao", generator=generator, labeler=labeler,
                                confidence=confidence, persona=row.get("persona"),
                                judge_raw=list(row["judge_raw"]), judge_consistent=consistent))
    return records, dropped


def build_steps(config: Any, llm_factory: Any, source: str) -> list[Any]:
    """Tasks after the loader: [WritePersona] [WritePrompt] AnswerPair PairwiseSelfJudge.

    ``source`` is what the loader yields: 'domain' (the model writes personas, fully
    self-synthetic), 'persona' (a persona dataset) or 'prompt' (an existing prompt set).
    """
    steps = prompt_steps(config, llm_factory, source)
    steps.append(AnswerPair(name="answer_pair", llm=llm_factory("answer_pair", config.generation()),
                            num_generations=2, input_batch_size=config.batch_size))
    steps.append(PairwiseSelfJudge(
        name="self_judge", mode=config.judge_mode, input_batch_size=config.batch_size,
        llm=llm_factory("self_judge", config.generation(config.judge_max_new_tokens, temperature=0.0))))
    return steps
