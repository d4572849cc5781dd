"""vLLM's own offline API behind selfpref's model interface (generate, option probabilities,
answer log-probs), one ``vllm.LLM`` per model per build.

distilabel's vLLM class is not used: it crashes on unload with vLLM >= 0.8.4 (distilabel PR #1138,
never released). vllm is imported only when a model is loaded, so this module imports anywhere.
The calls are checked against vLLM's source by ``tools/vllm_snapshot.py`` (the versions in
``tests/data/vllm_api_snapshot.json``); nothing here has run on a GPU in selfpref's own tests.

- generate: ``LLM.chat`` with one ``SamplingParams(n, temperature, top_p, max_tokens, seed)`` per
  conversation. The per-conversation seed fixes which random numbers a sample draws, but vLLM's
  logits depend slightly on the batch a request runs in (kernel reduction order), so a sample
  can differ between runs with other batch neighbours. ``VLLM_BATCH_INVARIANT=1`` in the
  environment makes vLLM use batch-invariant kernels (slower; vLLM says which GPUs support it).
  Greedy decoding (temperature 0) with n > 1 is one request with n = 1, its answer repeated n
  times: vLLM refuses greedy n > 1, and n greedy answers are that one answer (the transformers
  backend returns the same copies; a method drops such identical pairs with a counted reason).
- answer_logps (SELFEE Eq. 7): prompt + answer tokenized with the chat template and scored as one
  prompt with ``prompt_logprobs=0``; vLLM returns raw log-probs and ``None`` for the first token.
- option_probabilities (forced-choice verdicts): one generated token restricted to the option
  labels (``allowed_token_ids``). Where ``SamplingParams`` has ``logprob_token_ids`` (vLLM >=
  0.33) the option labels' own log-probs come back exactly in that one pass; otherwise
  ``logprobs=20`` and an option outside those 20 is scored from the prompt log-prob of the
  prompt followed by that option.
- The renormalisation over the options needs the raw distribution, before the
  ``allowed_token_ids`` mask: the engine always runs with ``logprobs_mode="raw_logprobs"``
  (vLLM's default; another mode is refused), and ``tokenizer_mode="hf"`` so the chat template
  is the Hugging Face one the token ids here are built with (vLLM's "auto" picks
  mistral_common's tokenizer for Mistral-format models).
- close: the engine core is shut down (its worker processes and their GPU memory), then
  garbage is collected and the CUDA cache emptied, so a next engine in the same process
  (``iterate``) finds the memory free.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any, cast

from selfpref import SelfprefError
from selfpref.models.generation import Message, chat_input_ids, option_token_ids, sample_seed
from selfpref.models.memory import release_memory
from selfpref.models.scoring import answer_token_ids

Chat = Sequence[Message]
TOP_LOGPROBS = 20  # vLLM's default max_logprobs
MAX_LOGPROB_TOKEN_IDS = 128  # vllm.sampling_params.MAX_LOGPROB_TOKEN_IDS (0.33, 0.34)
# What the engine always gets unless the caller says otherwise; logprobs_mode cannot be changed.
ENGINE_DEFAULTS = {"tokenizer_mode": "hf"}
LOGPROBS_MODE = "raw_logprobs"


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
        mode = engine_options.get("logprobs_mode", LOGPROBS_MODE)
        if mode != LOGPROBS_MODE:
            raise SelfprefError(f"vLLM logprobs_mode {mode!r}: selfpref's forced-choice and "
                                f"log-prob scores need {LOGPROBS_MODE!r} (log-probs before "
                                "sampling processors); drop the option")
        self.ref, self.seed = ref, seed
        self.engine_options = {**ENGINE_DEFAULTS, **engine_options, "logprobs_mode": LOGPROBS_MODE}
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
        """Stop the engine's core (its processes hold the GPU memory), then free what is left."""
        engine, self.engine = self.engine, None
        core = getattr(getattr(engine, "llm_engine", None), "engine_core", None)
        if engine is not None and hasattr(engine, "shutdown"):  # a vLLM whose LLM has its own shutdown
            engine.shutdown()
        elif core is not None and hasattr(core, "shutdown"):  # vLLM 0.33/0.34: LLM has none, its engine core has
            core.shutdown()
        del engine, core
        release_memory()

    def _has_field(self, name: str) -> bool:
        """Whether the installed vLLM's SamplingParams takes ``name`` (a msgspec Struct)."""
        fields = getattr(self._params, "__struct_fields__", None)
        if fields is None:
            try:
                fields = inspect.signature(self._params).parameters
            except (TypeError, ValueError):
                return False
        return name in fields

    def generate(self, chats: Sequence[Chat], *, num_generations: int = 1, max_new_tokens: int = 128,
                 temperature: float = 0.7, top_p: float = 1.0, seed: int | None = None,
                 seeds: Sequence[int] | None = None) -> list[list[str]]:
        self.load()
        if not chats:
            return []
        seeds = list(seeds) if seeds is not None else [sample_seed(seed or self.seed, i) for i in range(len(chats))]
        greedy = temperature == 0  # vLLM: "n must be 1 when using greedy sampling"
        params = [self._params(n=1 if greedy else num_generations, temperature=temperature,
                               top_p=top_p, max_tokens=max_new_tokens, seed=s) for s in seeds]
        outs = self.engine.chat([list(c) for c in chats], sampling_params=params, use_tqdm=False)
        texts = [[(o.text or "").strip() for o in out.outputs] for out in outs]
        return [t * num_generations for t in texts] if greedy else texts

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
        exact = self._has_field("logprob_token_ids") and len(option_ids) <= MAX_LOGPROB_TOKEN_IDS
        ask = {"logprob_token_ids": option_ids} if exact else {"logprobs": TOP_LOGPROBS}
        params = self._params(max_tokens=1, temperature=0.0, allowed_token_ids=option_ids, **ask)
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
            scored = self._prompt_token_logprobs([prompts[i] + [option_ids[k]] for i, k in missing])
            for (i, k), out in zip(missing, scored):
                logps[i][k] = out.prompt_logprobs[-1][option_ids[k]].logprob
        probs = []
        for row in logps:
            filled = cast(list[float], row)  # every None was scored exactly just above
            top = max(filled)
            weights = [math.exp(v - top) for v in filled]
            probs.append([w / sum(weights) for w in weights])
        return probs
