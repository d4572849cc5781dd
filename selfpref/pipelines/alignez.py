"""AlignEZ (Is Free Self-Alignment Possible?, §2.1, A.5): self-described characteristics.

Per query the model completes A.5's two templates to describe a helpful and a malicious answer,
then answers conditioned on each: the helpful one is chosen, the malicious one rejected.

The paper generates with base models (§2.1: "not aligned or instruction-tuned"), whose A.5
templates are completion prompts ending in "Your answer to this query should:". With
``prompt_format`` completion (or auto, for a tokenizer without a chat template) the templates
reach the model as plain text, no chat template; the answer step, for which A.5 gives no
template, then ends in an "Answer:" cue and is cut where the model starts another query.
"""

from __future__ import annotations

import collections
from typing import Any

from pydantic import Field

from selfpref import SelfprefError
from selfpref.data.schema import make_row
from selfpref.pipelines.prompting import prompt_steps, stage_drop
from selfpref.pipelines.tasks import Chat, MultiConversationTask, usable_prompt, user_chat

HELP_TEMPLATE = "{query}. You are a helpful assistant. Your answer to this query should:"
HARM_TEMPLATE = "{query}. Pretend you are a malicious and useless assistant. Your answer to this query should:"
CONDITIONED_TEMPLATE = "Answer the query below. Your answer should: {characteristics}\n\nQuery: {query}"
# selfpref's wording (A.5 has none for this step): a base model continues after "Answer:".
COMPLETION_CONDITIONED_TEMPLATE = "Query: {query}\nYour answer to this query should: {characteristics}\nAnswer:"
NEXT_QUERY = "\nQuery:"  # where a base model, done answering, starts writing another query


def generator_prompt_format(config: Any) -> str:
    """'chat' or 'completion': how the build's generator gets its prompts (only alignez has a
    completion path). ``auto`` reads the generator's tokenizer: completion without a chat
    template. Refused before any work: 'chat' for a tokenizer that has no template."""
    if config.method != "alignez":
        return "chat"
    if config.backend != "transformers":  # scripted follows the switch; vllm/openai take chats
        return "completion" if config.prompt_format == "completion" else "chat"
    from transformers import AutoTokenizer

    from selfpref.models.generation import resolve_prompt_format
    from selfpref.models.quiet import quiet_transformers
    from selfpref.models.resolve import resolve_model

    quiet_transformers()
    ref = resolve_model(config.model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(ref)
    except OSError as exc:
        raise SelfprefError(f"--model {config.model}: could not load its tokenizer "
                            f"({str(exc).splitlines()[0]})") from None
    try:
        return resolve_prompt_format(tokenizer, config.prompt_format)
    except ValueError as exc:
        raise SelfprefError(f"--prompt-format {config.prompt_format}: {exc} ({ref})") from None


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

    prompt_format: str = Field(default="chat", description="chat, or completion (a base model).")

    @property
    def inputs(self) -> list[str]:
        return ["prompt", "characteristics_chosen", "characteristics_rejected"]

    @property
    def outputs(self) -> list[str]:
        return ["chosen", "rejected"]

    def conversations(self, row: dict[str, Any]) -> list[Chat]:
        if not (row.get("characteristics_chosen") and row.get("characteristics_rejected")):
            return []
        template = COMPLETION_CONDITIONED_TEMPLATE if self.prompt_format == "completion" \
            else CONDITIONED_TEMPLATE
        return [user_chat(template.format(characteristics=row[k], query=row["prompt"]))
                for k in ("characteristics_chosen", "characteristics_rejected")]

    def parse(self, row: dict[str, Any], generations: list[list[str | None]]) -> dict[str, Any]:
        texts = [(g[0] or "") for g in generations] + [""] * (2 - len(generations))
        if self.prompt_format == "completion":
            texts = [t.split(NEXT_QUERY, 1)[0] for t in texts]
        texts = [t.strip() for t in texts]
        return {"chosen": texts[0], "rejected": texts[1]}


def assemble(rows: list[dict[str, Any]], *, generator: str, **_: Any) -> tuple[list[dict], collections.Counter]:
    records: list[dict] = []
    dropped: collections.Counter[str] = collections.Counter()
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
    prompt_format = generator_prompt_format(config)
    return [*prompt_steps(config, llm_factory, source),
            DescribeCharacteristics(name="describe_characteristics", input_batch_size=config.batch_size,
                                    llm=llm_factory("describe_characteristics", short)),
            ConditionedAnswers(name="conditioned_answers", input_batch_size=config.batch_size,
                               prompt_format=prompt_format,
                               llm=llm_factory("conditioned_answers", config.generation()))]
