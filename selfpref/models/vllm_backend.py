"""vLLM's own offline API behind selfpref's model interface (generate, option probabilities,
answer log-probs), one ``vllm.LLM`` per model per build.

distilabel's vLLM class is not used: it crashes on unload with vLLM >= 0.8.4 (distilabel PR #1138,
never released). vllm is imported only when a model is loaded, so this module imports anywhere.

- generate: ``LLM.chat`` with one ``SamplingParams(n, temperature, top_p, max_tokens, seed)`` per
  conversation; the per-conversation seed makes a sample independent of the batch it runs in.
- answer_logps (SELFEE Eq. 7): prompt + answer tokenized with the chat template and scored as one
  prompt with ``prompt_logprobs=0``; vLLM returns raw log-probs and ``None`` for the first token.
- option_probabilities (forced-choice verdicts): one generated token restricted to the option
  labels (``allowed_token_ids``) with ``logprobs=20``; an option outside those 20 is scored
  exactly from the prompt log-prob of the prompt followed by that option.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from selfpref import SelfprefError
from selfpref.models.generation import Message, chat_input_ids, option_token_ids, sample_seed
from selfpref.models.scoring import answer_token_ids

Chat = Sequence[Message]
TOP_LOGPROBS = 20  # vLLM's default max_logprobs


def _vllm() -> Any:
    try:
        import vllm
    except ImportError:
        raise SelfprefError("--backend vllm needs vLLM on a GPU machine: pip install 'selfpref[vllm]'") from None
    return vllm


class VLLMModel:
    """One ``vllm.LLM`` for one model. ``engine`` (an object with vLLM's ``chat``, ``generate``
    and ``get_tokenizer``) replaces the real one in tests; ``engine_options`` go to ``vllm.LLM``
    (e.g. gpu_memory_utilization, tensor_parallel_size, max_model_len)."""

    def __init__(self, ref: str, *, seed: int = 0, engine: Any = None,
                 sampling_params: Any = None, **engine_options: Any) -> None:
        self.ref, self.seed, self.engine_options = ref, seed, engine_options
        self.engine = engine
        self._params = sampling_params  # the SamplingParams class; vLLM's when None

    def load(self) -> VLLMModel:
        if self.engine is None:
            vllm = _vllm()
            self.engine = vllm.LLM(model=self.ref, seed=self.seed, **self.engine_options)
        if self._params is None:
            self._params = _vllm().SamplingParams
        return self

    def close(self) -> None:
        self.engine = None

    def generate(self, chats: Sequence[Chat], *, num_generations: int = 1, max_new_tokens: int = 128,
                 temperature: float = 0.7, top_p: float = 1.0, seed: int | None = None,
                 seeds: Sequence[int] | None = None) -> list[list[str]]:
        self.load()
        if not chats:
            return []
        seeds = list(seeds) if seeds is not None else [sample_seed(seed or self.seed, i) for i in range(len(chats))]
        params = [self._params(n=num_generations, temperature=temperature, top_p=top_p,
                               max_tokens=max_new_tokens, seed=s) for s in seeds]
        outs = self.engine.chat([list(c) for c in chats], sampling_params=params, use_tqdm=False)
        return [[(o.text or "").strip() for o in out.outputs] for out in outs]

    def _prompt_token_logprobs(self, sequences: list[list[int]]) -> list[Any]:
        params = self._params(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        return self.engine.generate([{"prompt_token_ids": ids} for ids in sequences], params,
                                    use_tqdm=False)

    def answer_logps(self, prompts: Sequence[Chat], answers: Sequence[str]) -> tuple[list[float], list[int]]:
        """Summed log-prob of each answer's tokens given its prompt, and the answer token counts."""
        self.load()
        tokenizer = self.engine.get_tokenizer()
        items = [answer_token_ids(tokenizer, p, a) for p, a in zip(prompts, answers)]
        outs = self._prompt_token_logprobs([full for full, _ in items]) if items else []
        sums, counts = [], []
        for (full, n_prompt), out in zip(items, outs):
            # prompt_logprobs[t] is {token id: Logprob} for token t; entry 0 is None
            scored = [out.prompt_logprobs[t][full[t]].logprob for t in range(max(n_prompt, 1), len(full))]
            sums.append(float(sum(scored)))
            counts.append(len(scored))
        return sums, counts

    def option_probabilities(self, chats: Sequence[Chat], options: Sequence[str]) -> list[list[float]]:
        """P(next token = option label), renormalised over the options, per conversation."""
        self.load()
        if not chats:
            return []
        tokenizer = self.engine.get_tokenizer()
        option_ids = option_token_ids(tokenizer, options)
        prompts = [chat_input_ids(tokenizer, c) for c in chats]
        params = self._params(max_tokens=1, temperature=0.0, logprobs=TOP_LOGPROBS,
                              allowed_token_ids=option_ids)
        outs = self.engine.generate([{"prompt_token_ids": ids} for ids in prompts], params,
                                    use_tqdm=False)
        logps: list[list[float | None]] = []
        missing: list[tuple[int, int]] = []
        for i, out in enumerate(outs):
            top = out.outputs[0].logprobs[0]  # {token id: Logprob} of the one generated token
            row = [top[t].logprob if t in top else None for t in option_ids]
            missing += [(i, k) for k, v in enumerate(row) if v is None]
            logps.append(row)
        if missing:  # outside the top 20: score prompt + option exactly
            exact = self._prompt_token_logprobs([prompts[i] + [option_ids[k]] for i, k in missing])
            for (i, k), out in zip(missing, exact):
                logps[i][k] = out.prompt_logprobs[-1][option_ids[k]].logprob
        probs = []
        for row in logps:
            top = max(row)
            weights = [math.exp(v - top) for v in row]
            probs.append([w / sum(weights) for w in weights])
        return probs
