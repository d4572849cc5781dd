"""The LLMs selfpref's distilabel pipelines run on, behind one factory (``make_llm``).

- ``LocalTransformersLLM``: transformers on the CPU (or one GPU), *batched* with left padding;
  distilabel's own TransformersLLM generates one instruction at a time.
- distilabel's ``vLLM`` (GPU) and ``OpenAILLM`` (any OpenAI-compatible endpoint), unchanged.
- ``ScriptedLLM``: returns scripted text, for testing parsing and pipeline logic without a model.
Only this module and ``tasks.py`` touch distilabel's LLM classes (distilabel is unmaintained).
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any, Optional

from distilabel.models.llms import LLM
from distilabel.models.llms.utils import prepare_output
from pydantic import Field, PrivateAttr

from selfpref import SelfprefError


class LocalTransformersLLM(LLM):
    """distilabel's face of ``models.local.LocalModel``: batched generation, option probabilities."""

    model: str
    model_id: str = Field(default="", description="Name recorded as the generator.")
    batch_size: int = 8
    seed: Optional[int] = None
    num_threads: Optional[int] = None

    _local: Any = PrivateAttr(None)

    def load(self) -> None:
        super().load()
        import torch

        from selfpref.models.local import LocalModel

        if self.seed is not None:
            torch.manual_seed(self.seed)
        self._local = LocalModel(self.model, batch_size=self.batch_size,
                                 num_threads=self.num_threads).load()

    @property
    def model_name(self) -> str:
        return self.model_id or self.model

    def generate(self, inputs: list[Any], num_generations: int = 1, max_new_tokens: int = 128,
                 temperature: float = 0.7, top_p: float = 1.0) -> list[Any]:
        texts = self._local.generate(inputs, num_generations=num_generations,
                                     max_new_tokens=max_new_tokens, temperature=temperature,
                                     top_p=top_p)
        return [prepare_output(t) for t in texts]

    def option_probabilities(self, inputs: list[Any], options: tuple[str, ...]) -> list[list[float]]:
        """P(next token = option label) renormalised over the options, per conversation."""
        return self._local.option_probabilities(inputs, options)


class ScriptedLLM(LLM):
    """Returns ``outputs`` in order, cycling; ``option_probs`` likewise for the logits judge.

    An empty string stands for a failed generation (distilabel's LLMs return None there).
    """

    # Flat lists: distilabel's cache signature cannot hash nested lists or None items.
    outputs: list[str] = Field(default_factory=list)
    option_probs: list[float] = Field(default_factory=list, description="P(first option) per call.")
    model_id: str = "scripted"
    delay: float = Field(default=0.0, description="Seconds to sleep per call (to test kills).")

    _calls: Any = PrivateAttr(None)
    _probs: Any = PrivateAttr(None)

    def load(self) -> None:
        super().load()
        self._calls = itertools.cycle(self.outputs or [""])
        self._probs = itertools.cycle(self.option_probs or [0.5])

    @property
    def model_name(self) -> str:
        return self.model_id

    def generate(self, inputs: list[Any], num_generations: int = 1, max_new_tokens: int = 128,
                 temperature: float = 0.7, top_p: float = 1.0) -> list[Any]:
        if self.delay:
            time.sleep(self.delay)
        return [prepare_output([next(self._calls) for _ in range(num_generations)]) for _ in inputs]

    def option_probabilities(self, inputs: list[Any], options: tuple[str, ...]) -> list[list[float]]:
        return [[p, 1.0 - p] for p in (next(self._probs) for _ in inputs)]


def load_script(path: str) -> dict[str, Any]:
    """A scripted run: {step_name: [texts...], ..., optional 'delay': seconds, 'option_probs': {...}}."""
    from selfpref.data.recipes import load_yaml_mapping

    return load_yaml_mapping(path, what="script", flag="--script")


def make_llm(backend: str, model: str, *, model_id: str, batch_size: int = 8,
             seed: int | None = None, base_url: str | None = None,
             api_key_env: str | None = None, generation: dict[str, Any] | None = None,
             num_threads: int | None = None, step: str = "", script: str | None = None) -> LLM:
    """An LLM for ``backend``; ``generation`` holds max_new_tokens, temperature, top_p."""
    generation = dict(generation or {})
    if backend == "scripted":
        data = load_script(script or "")
        return ScriptedLLM(outputs=[str(t or "") for t in data.get(step) or []], model_id=model_id,
                           option_probs=list((data.get("option_probs") or {}).get(step) or []),
                           delay=float(data.get("delay", 0.0)), generation_kwargs=generation)
    if backend == "transformers":
        return LocalTransformersLLM(model=model, model_id=model_id, batch_size=batch_size,
                                    seed=seed, num_threads=num_threads,
                                    generation_kwargs=generation)
    if backend == "vllm":
        try:
            from distilabel.models.llms import vLLM
        except ImportError:  # pragma: no cover - vllm is a GPU extra
            raise SelfprefError("--backend vllm needs `pip install 'selfpref[vllm]'` on a GPU machine") from None
        return vLLM(model=model, generation_kwargs=generation, seed=seed or 0)
    if backend == "openai":
        from distilabel.models.llms import OpenAILLM

        if not base_url:
            raise SelfprefError("--backend openai needs --base-url (the endpoint's /v1 URL)")
        key = os.environ.get(api_key_env or "OPENAI_API_KEY")
        if not key:
            raise SelfprefError(f"--backend openai: environment variable {api_key_env or 'OPENAI_API_KEY'} "
                                "is not set; export the key there (it is never written anywhere)")
        return OpenAILLM(model=model, base_url=base_url, api_key=key, generation_kwargs=generation)
    raise SelfprefError(f"unknown backend {backend!r}: use transformers, vllm or openai")
