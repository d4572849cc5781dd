"""AlignEZ (Is Free Self-Alignment Possible?, §2.1, A.5): self-described characteristics.

Per query the model completes A.5's two templates to describe a helpful and a malicious answer,
then answers conditioned on each: the helpful one is chosen, the malicious one rejected.
"""

from __future__ import annotations

import collections
from typing import Any

from selfpref.data.schema import make_row
from selfpref.pipelines.prompting import prompt_steps, stage_drop
from selfpref.pipelines.tasks import Chat, MultiConversationTask, usable_prompt, user_chat

HELP_TEMPLATE = "{query}. You are a helpful assistant. Your answer to this query should:"
HARM_TEMPLATE = "{query}. Pretend you are a malicious and useless assistant. Your answer to this query should:"
CONDITIONED_TEMPLATE = "Answer the query below. Your answer should: {characteristics}\n\nQuery: {query}"


class DescribeCharacteristics(MultiConversationTask):
    """Input: ``prompt``. Output: ``characteristics_chosen``, ``characteristics_rejected``."""

    @property
    def inputs(self) -> list[str]:
        return ["prompt"]

    @property
    def outputs(self) -> list[str]:
        return ["characteristics_chosen", "characteristics_rejected"]

    def conversations(self, row: dict[str, Any]) -> list[Chat]:
        if not usable_prompt(row):
            return []
        query = row["prompt"].rstrip(" .?!") or row["prompt"]
        return [user_chat(HELP_TEMPLATE.format(query=query)), user_chat(HARM_TEMPLATE.format(query=query))]

    def parse(self, row: dict[str, Any], generations: list[list[str | None]]) -> dict[str, Any]:
        texts = [(g[0] or "").strip() for g in generations] + [""] * (2 - len(generations))
        return {"characteristics_chosen": texts[0], "characteristics_rejected": texts[1]}


class ConditionedAnswers(MultiConversationTask):
    """Input: ``prompt`` and both characteristics. Output: ``chosen``, ``rejected``."""

    @property
    def inputs(self) -> list[str]:
        return ["prompt", "characteristics_chosen", "characteristics_rejected"]

    @property
    def outputs(self) -> list[str]:
        return ["chosen", "rejected"]

    def conversations(self, row: dict[str, Any]) -> list[Chat]:
        if not (row.get("characteristics_chosen") and row.get("characteristics_rejected")):
            return []
        return [user_chat(CONDITIONED_TEMPLATE.format(characteristics=row[k], query=row["prompt"]))
                for k in ("characteristics_chosen", "characteristics_rejected")]

    def parse(self, row: dict[str, Any], generations: list[list[str | None]]) -> dict[str, Any]:
        texts = [(g[0] or "").strip() for g in generations] + [""] * (2 - len(generations))
        return {"chosen": texts[0], "rejected": texts[1]}


def assemble(rows: list[dict[str, Any]], *, generator: str, **_: Any) -> tuple[list[dict], collections.Counter]:
    records, dropped = [], collections.Counter()
    for row in rows:
        c, r = row.get("chosen") or "", row.get("rejected") or ""
        if stage := stage_drop(row):
            dropped[stage] += 1
        elif not (row.get("characteristics_chosen") and row.get("characteristics_rejected")):
            dropped["empty_characteristics"] += 1
        elif not (c and r):
            dropped["empty_answer"] += 1
        elif c == r:
            dropped["identical_answers"] += 1
        else:
            records.append(make_row(row["prompt"], c, r, method="alignez", generator=generator,
                                    labeler=f"principle:{generator}", confidence=None,
                                    characteristics_chosen=row["characteristics_chosen"],
                                    characteristics_rejected=row["characteristics_rejected"]))
    return records, dropped


def build_steps(config: Any, llm_factory: Any, source: str) -> list[Any]:
    """[WritePersona] [WritePrompt] DescribeCharacteristics ConditionedAnswers."""
    short = config.generation(config.prompt_max_new_tokens)
    return [*prompt_steps(config, llm_factory, source),
            DescribeCharacteristics(name="describe_characteristics", input_batch_size=config.batch_size,
                                    llm=llm_factory("describe_characteristics", short)),
            ConditionedAnswers(name="conditioned_answers", input_batch_size=config.batch_size,
                               llm=llm_factory("conditioned_answers", config.generation()))]
