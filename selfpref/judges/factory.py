"""Build a judge from a small spec: kind, model (or endpoint), aspects, seed.

Model backends come from `selfpref.models`: `LocalModel` (transformers: the embedded default, a
local folder or a Hub id), `OpenAICompatModel` (any OpenAI-compatible endpoint; the key is read
from the environment variable named by ``api_key_env`` and written nowhere), and vLLM through
``selfpref.models.vllm_backend.VLLMModel`` (vllm itself is imported only when the model loads:
`pip install 'selfpref[vllm]'` on a GPU machine; the same ``generate`` / ``option_probabilities``
interface). An already loaded model object can be passed
instead of a reference, so a process that generates and judges with one model loads it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from selfpref import SelfprefError
from selfpref.judges.base import PairwiseJudge
from selfpref.judges.kinds import LengthJudge, LogitsJudge, RandomJudge, TextJudge

JUDGE_KINDS = ("logits", "text", "length", "length:longer", "random")
MODEL_KINDS = ("logits", "text")  # the others are rules (SAO Table 6): no model
BACKENDS = ("transformers", "vllm", "openai")
LOCAL_BACKENDS = ("transformers", "vllm")  # weights on this machine (a folder, a Hub id)


def local_judge_backend(kind: str, *, base_url: str | None = None,
                        backend: str | None = None) -> str | None:
    """The backend ("transformers" or "vllm") a judge runs on when it loads a model's weights
    on this machine, else None: a rule (length, random) takes no model, and an endpoint
    (``base_url``, backend "openai") serves its own. Commands check a local judge's model
    reference before any work; "transformers" judges can share an already loaded model."""
    if kind not in MODEL_KINDS:
        return None
    backend = backend or ("openai" if base_url else "transformers")  # as `judge_backend` picks
    return backend if backend in LOCAL_BACKENDS and not base_url else None


def judge_backend(model: str | None = None, *, base_url: str | None = None,
                  api_key_env: str | None = None, backend: str | None = None, batch_size: int = 8,
                  flag: str = "--judge-model") -> tuple[Any, str]:
    """(model object, label) for a judge model reference; nothing is loaded yet."""
    from selfpref.models import is_default, model_label

    backend = backend or ("openai" if base_url else "transformers")
    if backend not in BACKENDS:
        raise SelfprefError(f"judge backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if backend == "openai":
        from selfpref.models.openai_compat import OpenAICompatModel

        if not base_url:
            raise SelfprefError("--judge-base-url: an OpenAI-compatible judge needs the endpoint's "
                                "URL (e.g. http://localhost:8000/v1)")
        if is_default(model):
            raise SelfprefError(f"{flag}: name the endpoint's model (e.g. {flag} gpt-4o-mini) "
                                "when judging through --judge-base-url")
        endpoint = OpenAICompatModel(base_url, str(model), api_key_env=api_key_env,
                                     key_flag="--judge-api-key-env")
        return endpoint, endpoint.label
    if base_url:
        raise SelfprefError(f"--judge-base-url is for an OpenAI-compatible endpoint; drop it for "
                            f"the {backend} backend")
    if backend == "vllm":
        from selfpref.models.resolve import resolve_model
        from selfpref.models.vllm_backend import VLLMModel

        # vllm.LLM takes a folder or a Hub id: None/"default" must become the embedded model's
        # converted folder here (LocalModel resolves its own reference; VLLMModel does not).
        return VLLMModel(resolve_model(model, flag=flag)), model_label(model)
    if not is_default(model):
        from selfpref.models.resolve import resolve_model

        resolve_model(model, flag=flag)  # a missing folder fails now, before any generation
    from selfpref.models.local import LocalModel

    return LocalModel(model, batch_size=batch_size), model_label(model)


def make_judge(kind: str = "logits", model: Any = None, *, base_url: str | None = None,
               api_key_env: str | None = None, aspects: Sequence[str] | str | None = None,
               seed: int = 0, backend: str | None = None, max_new_tokens: int = 32,
               batch_size: int = 8, model_label: str | None = None) -> PairwiseJudge:
    """A judge of ``kind`` (one of JUDGE_KINDS).

    ``model``: a reference (None or "default" for the embedded model, a folder, a Hub id, the
    endpoint's model name with ``base_url``) or a loaded object with ``generate`` /
    ``option_probabilities`` (then ``model_label`` names it). The rule kinds take no model.
    """
    if kind not in JUDGE_KINDS:
        raise SelfprefError(f"--judge {kind!r}: use one of {', '.join(JUDGE_KINDS)}")
    if kind in ("length", "length:longer", "random"):
        if model is not None or base_url:
            raise SelfprefError(f"--judge {kind} is a rule (SAO Table 6's baseline) and takes no "
                                "--judge-model or --judge-base-url")
        if kind == "random":
            return RandomJudge(seed=seed, aspects=aspects)
        return LengthJudge(prefer="longer" if kind == "length:longer" else "shorter", aspects=aspects)
    if model is None or isinstance(model, str):
        model, label = judge_backend(model, base_url=base_url, api_key_env=api_key_env,
                                     backend=backend, batch_size=batch_size)
        model_label = model_label or label
    if kind == "text":
        return TextJudge(model, max_new_tokens=max_new_tokens, model_label=model_label,
                         aspects=aspects)
    return LogitsJudge(model, model_label=model_label, aspects=aspects)
