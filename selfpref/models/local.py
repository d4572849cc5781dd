"""A loaded model behind selfpref's small LLM interface: generate, option probabilities, log-probs.

Loaded once and shared by every step and filter that uses the same model (``models.pool`` keeps
one per build). The pipelines' LLM faces and the judges both call this interface, so neither
depends on the other; ``vllm_backend.VLLMModel`` and ``scripted.ScriptedModel`` offer the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from selfpref.models.generation import Message, generate_batch, next_token_probabilities

Chat = Sequence[Message]


class LocalModel:
    """transformers on the CPU (or one GPU): batched generation, forced choice and scoring."""

    def __init__(self, ref: str | None, *, batch_size: int = 8, num_threads: int | None = None,
                 prompt_format: str = "chat") -> None:
        self.ref, self.batch_size, self.num_threads = ref, batch_size, num_threads
        self.prompt_format = prompt_format  # how `generate` renders chats (generation.chat_ids)
        self.model: Any = None
        self.tokenizer: Any = None

    def load(self) -> LocalModel:
        if self.model is None:
            import torch

            from selfpref.models.load import load_causal_lm

            if self.num_threads:
                torch.set_num_threads(self.num_threads)
            self.model, self.tokenizer = load_causal_lm(self.ref)
        return self

    def generate(self, chats: Sequence[Chat], *, num_generations: int = 1, max_new_tokens: int = 128,
                 temperature: float = 0.7, top_p: float = 1.0, seed: int | None = None,
                 seeds: Sequence[int] | None = None) -> list[list[str]]:
        """``num_generations`` texts per chat; with ``seeds`` (one per chat) each chat's samples
        come from its own random stream, whatever batch it lands in."""
        self.load()
        return generate_batch(self.model, self.tokenizer, chats, max_new_tokens=max_new_tokens,
                              temperature=temperature, top_p=top_p,
                              num_return_sequences=num_generations, batch_size=self.batch_size,
                              seed=seed, seeds=seeds, prompt_format=self.prompt_format)

    def option_probabilities(self, chats: Sequence[Chat], options: Sequence[str]) -> list[list[float]]:
        """P(next token = option label), renormalised over the options, per conversation."""
        self.load()
        return next_token_probabilities(self.model, self.tokenizer, chats, options,
                                        batch_size=self.batch_size)

    def answer_logps(self, prompts: Sequence[Chat], answers: Sequence[str]) -> tuple[list[float], list[int]]:
        """Summed log-prob of each answer given its prompt, and the answer token counts."""
        from selfpref.models.scoring import answer_logps

        self.load()
        return answer_logps(self.model, self.tokenizer, prompts, answers, batch_size=self.batch_size)
