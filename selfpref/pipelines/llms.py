"""The LLMs of selfpref's distilabel Tasks: thin faces over the models of a build's pool.

A Task names its LLM (backend, model, generation settings: that is what ``pipeline.yaml``
records); the build binds the face to the pool's model for that backend and model, so every
step and every chunk that uses the same model shares one load (``models.pool``).

Each face gives every conversation a seed made from the build seed, the step and the
conversation itself, so an answer does not depend on the chunk or batch it was generated in.
Rows that ask the very same conversation on purpose (SAO Table 5's "random" prompts, a domain
drawn a second time) carry a ``draw`` number that enters the seed, so they are independent
samples instead of copies.
"""

from __future__ import annotations

import collections
import hashlib
import json
from typing import Any

from pydantic import Field, PrivateAttr

from selfpref.pipelines._distilabel import LLM, prepare_output


def chat_seed(seed: int, step: str, chat: Any, draw: int = 0) -> int:
    """A conversation's seed: the same text in the same step of the same build, the same seed.

    ``draw`` k >= 1 is the k-th independent sample of a conversation identical to another row's;
    draw 0 keeps the seed it always had, so builds without repeated conversations are unchanged.
    """
    key = [seed, step, chat, draw] if draw else [seed, step, chat]
    blob = json.dumps(key, sort_keys=True, ensure_ascii=False)
    return int(hashlib.sha256(blob.encode()).hexdigest()[:15], 16)


class PooledLLM(LLM):
    """distilabel's face of a pooled model (``models.local.LocalModel``, ``VLLMModel``, an
    OpenAI-compatible client or a scripted model): generate, option probabilities."""

    backend: str = Field(default="transformers", description="transformers, vllm, openai or scripted.")
    model: str = Field(default="", description="The model reference the pool loads.")
    model_id: str = Field(default="", description="Name recorded as the generator.")
    step: str = Field(default="", description="The step this LLM answers for (seeds, scripts).")
    endpoint: str = Field(default="", description="openai: a named endpoint of the build's pool "
                          "('judge': --judge-base-url); empty: --base-url.")
    seed: int = 0

    _backend: Any = PrivateAttr(None)
    _usage: Any = PrivateAttr(default_factory=collections.Counter)

    def bind(self, backend: Any) -> PooledLLM:
        self._backend = backend
        return self

    @property
    def bound(self) -> Any:
        if self._backend is None:
            raise RuntimeError(f"LLM of step {self.step!r} is not bound to a model; the build binds it")
        return self._backend

    @property
    def model_name(self) -> str:
        return self.model_id or self.model

    def generate(self, inputs: list[Any], num_generations: int = 1, max_new_tokens: int = 128,
                 temperature: float = 0.7, top_p: float = 1.0,
                 draws: list[int] | None = None) -> list[Any]:
        draws = draws or [0] * len(inputs)
        seeds = [chat_seed(self.seed, self.step, chat, draw) for chat, draw in zip(inputs, draws)]
        before = _endpoint_usage(self.bound)
        texts = self.bound.generate(inputs, num_generations=num_generations,
                                    max_new_tokens=max_new_tokens, temperature=temperature,
                                    top_p=top_p, seeds=seeds)
        self._account(before, inputs, [t for answers in texts for t in answers])
        return [prepare_output(list(t)) for t in texts]

    def option_probabilities(self, inputs: list[Any], options: tuple[str, ...]) -> list[list[float]]:
        """P(next token = option label) renormalised over the options, per conversation."""
        before = _endpoint_usage(self.bound)
        probs = self.bound.option_probabilities(inputs, options)
        self._account(before, inputs, [])
        return probs

    @property
    def usage(self) -> dict[str, int]:
        """Tokens (and requests, for an endpoint) this step's calls cost so far."""
        return dict(self._usage)

    def _account(self, before: Any, inputs: list[Any], outputs: list[str]) -> None:
        """An endpoint's own ``usage`` (what it bills), or the tokenizer's count for a local
        model: each conversation's prompt once, every generated text."""
        after = _endpoint_usage(self.bound)
        if after is not None:
            self._usage.update({k: v - before.get(k, 0) for k, v in after.items()})
            return
        tokenizer = getattr(self.bound, "tokenizer", None)
        if tokenizer is None or not hasattr(tokenizer, "encode"):  # vLLM, scripted: no count
            return
        from selfpref.models.generation import chat_input_ids

        # rendered as the model renders them (a base model's completion prompts have no template)
        fmt = getattr(self.bound, "prompt_format", "chat")
        self._usage["prompt_tokens"] += sum(len(chat_input_ids(tokenizer, chat, prompt_format=fmt))
                                            for chat in inputs)
        self._usage["completion_tokens"] += sum(len(tokenizer.encode(t, add_special_tokens=False))
                                                for t in outputs)


def _endpoint_usage(backend: Any) -> collections.Counter | None:
    usage = getattr(backend, "usage", None)
    return collections.Counter(usage) if isinstance(usage, collections.Counter) else None


class ScriptedLLM(PooledLLM):
    """A face over its own scripted model (tests): ``outputs`` in order, cycling; ``option_probs``
    likewise for forced-choice calls. Builds use ``--backend scripted`` with a script file."""

    backend: str = "scripted"
    model_id: str = "scripted"
    outputs: list[str] = Field(default_factory=list)
    option_probs: list[float] = Field(default_factory=list, description="P(first option) per call.")
    delay: float = Field(default=0.0, description="Seconds to sleep per call (to test kills).")

    def load(self) -> None:
        super().load()
        if self._backend is None:
            from selfpref.models.scripted import ScriptedModel

            self._backend = ScriptedModel(self.outputs, self.option_probs, delay=self.delay)


def load_script(path: str) -> dict[str, Any]:
    """A scripted run: {step_name: [texts...], ..., 'option_probs': {step: [...]}, 'delay':
    seconds, 'raise': {step: message | {message, chunk}}}."""
    from selfpref.data.recipes import load_yaml_mapping

    return load_yaml_mapping(path, what="script", flag="--script")


def make_llm(backend: str, model: str, *, model_id: str, seed: int = 0,
             generation: dict[str, Any] | None = None, step: str = "", endpoint: str = "") -> PooledLLM:
    """The face a step uses; ``generation`` holds max_new_tokens, temperature, top_p."""
    return PooledLLM(backend=backend, model=model, model_id=model_id, seed=seed, step=step,
                     endpoint=endpoint, generation_kwargs=dict(generation or {}))
