"""Where a build's prompts come from when no prompt set is given: SAO §3.1's persona -> prompt.

Every method can run fully self-synthetic: without ``--prompts`` the model writes a persona per
domain (or takes one from ``--personas``), then the one request that person would type. With
``--prompt-source random`` (SAO Table 5, "Random"; App. E) there is no persona: the model is
asked for a request with nothing to condition on, once per row. Rows the stage cannot use keep
``prompt=None`` and a ``drop_reason`` that the method's ``assemble`` counts (``empty_persona``,
``empty_prompt``, ``refusal``).
"""

from __future__ import annotations

from typing import Any

from selfpref.pipelines.parsing import clean_prompt
from selfpref.pipelines.tasks import Chat, MultiConversationTask, user_chat

PERSONA_TEMPLATE = (
    "Describe, in one sentence, a specific person with an interest in {domain}: who they are and "
    "what they do. Write only the description.")
PROMPT_TEMPLATE = (
    "Imagine you are this person: {persona}\n\nWrite the one request this person would type to an "
    "AI assistant. Write only the request itself, in the person's own words, with no preamble.")
# SAO gives no template for its "Random" source (Table 5): selfpref's is PROMPT_TEMPLATE with the
# persona taken out, so the persona is the only thing the ablation changes.
RANDOM_PROMPT_TEMPLATE = (
    "Write one request that a user might type to an AI assistant. Write only the request itself, "
    "with no preamble.")


def token_count(llm: Any, text: str) -> int | None:
    """Tokens of ``text`` in the tokenizer of the model behind ``llm`` (a bound face); None when
    the backend has no tokenizer here (an OpenAI-compatible endpoint)."""
    from selfpref.models.scripted import ScriptedModel

    backend = llm.bound
    if isinstance(backend, ScriptedModel):
        return len(text.split())  # a dry run: one word, one token
    tokenizer = getattr(backend, "tokenizer", None)
    engine = getattr(backend, "engine", None)
    if tokenizer is None and engine is not None and hasattr(engine, "get_tokenizer"):
        tokenizer = engine.get_tokenizer()  # vLLM
    if tokenizer is None:
        return None
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def hit_cap(llm: Any, text: str | None) -> bool:
    """Whether ``text`` used every new token its step allowed, i.e. it was cut, not finished."""
    cap = (getattr(llm, "generation_kwargs", None) or {}).get("max_new_tokens")
    if not text or not text.strip() or not cap:
        return False
    count = token_count(llm, text.strip())
    return count is not None and count >= int(cap)


class WritePersona(MultiConversationTask):
    """Input: ``domain``. Output: ``persona`` (None with ``drop_reason`` when empty or cut)."""

    keep_truncated: bool = False  # BuildConfig.truncated_prompts == "keep"

    @property
    def inputs(self) -> list[str]:
        return ["domain"]

    @property
    def outputs(self) -> list[str]:
        return ["persona", "drop_reason"]

    def conversations(self, row: dict[str, Any]) -> list[Chat]:
        return [user_chat(PERSONA_TEMPLATE.format(domain=row["domain"]))]

    def parse(self, row: dict[str, Any], generations: list[list[str | None]]) -> dict[str, Any]:
        text = (generations[0][0] or "").strip() if generations else ""
        if text and not self.keep_truncated and hit_cap(self.llm, text):
            return {"persona": None, "drop_reason": "persona_truncated"}
        return {"persona": text or None, "drop_reason": None if text else "empty_persona"}


class WritePrompt(MultiConversationTask):
    """Input: ``persona``. Output: ``prompt``, ``drop_reason`` (empty_prompt, refusal,
    prompt_truncated) and ``refusal_text`` (what a refusal said; for the repetition rate with
    refusals counted)."""

    keep_truncated: bool = False  # BuildConfig.truncated_prompts == "keep"

    @property
    def inputs(self) -> list[str]:
        return ["persona"]

    @property
    def outputs(self) -> list[str]:
        return ["prompt", "drop_reason", "refusal_text"]

    def conversations(self, row: dict[str, Any]) -> list[Chat]:
        if row.get("drop_reason") or not row.get("persona"):
            return []
        return [user_chat(PROMPT_TEMPLATE.format(persona=row["persona"]))]

    def parse(self, row: dict[str, Any], generations: list[list[str | None]]) -> dict[str, Any]:
        if not generations:
            return {"prompt": None, "drop_reason": row.get("drop_reason") or "empty_persona"}
        prompt, reason = clean_prompt(generations[0][0])
        if prompt is not None and not self.keep_truncated and hit_cap(self.llm, generations[0][0]):
            return {"prompt": None, "drop_reason": "prompt_truncated", "refusal_text": None}
        # SAO §4.4 counts refusals in its persona repetition rate: keep what the model wrote
        refused = (generations[0][0] or "").strip() if reason == "refusal" else None
        return {"prompt": prompt, "drop_reason": reason, "refusal_text": refused}


class WriteFreePrompt(WritePrompt):
    """SAO Table 5's "Random" source. Input: ``draw`` (the row's number, which seeds its sample:
    every row asks the same question). Output: ``prompt`` and ``drop_reason``; no persona."""

    @property
    def inputs(self) -> list[str]:
        return ["draw"]

    def conversations(self, row: dict[str, Any]) -> list[Chat]:
        return [user_chat(RANDOM_PROMPT_TEMPLATE)]


def prompt_steps(config: Any, llm_factory: Any, source: str) -> list[Any]:
    """[WritePersona] [WritePrompt] for ``source`` 'domain' (fully self-synthetic) or 'persona'
    (a persona dataset); [WriteFreePrompt] for 'random'; nothing for 'prompt' (a prompt set)."""
    short = config.generation(config.prompt_max_new_tokens)
    keep = getattr(config, "truncated_prompts", "drop") == "keep"
    steps: list[Any] = []
    if source == "random":  # same step name: scripts, progress and seeds treat it as the prompts
        return [WriteFreePrompt(name="write_prompt", llm=llm_factory("write_prompt", short),
                                input_batch_size=config.batch_size, keep_truncated=keep)]
    if source == "domain":
        steps.append(WritePersona(name="write_persona", llm=llm_factory("write_persona", short),
                                  input_batch_size=config.batch_size, keep_truncated=keep))
    if source in ("domain", "persona"):
        steps.append(WritePrompt(name="write_prompt", llm=llm_factory("write_prompt", short),
                                 input_batch_size=config.batch_size, keep_truncated=keep))
    return steps


def stage_drop(row: dict[str, Any]) -> str | None:
    """The reason the prompt stage dropped ``row``, or None when it has a prompt."""
    if row.get("drop_reason"):
        return row["drop_reason"]
    return None if row.get("prompt") else "empty_prompt"
