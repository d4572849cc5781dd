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

JUDGE_KINDS = ("logits", "text", "rm", "length", "length:longer", "random")
MODEL_KINDS = ("logits", "text", "rm")  # the kinds that call a model
RULE_KINDS = ("length", "length:longer", "random")
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
    if base_url or backend not in LOCAL_BACKENDS or (kind == "rm" and backend != "transformers"):
        return None  # rm: a sequence classifier on transformers only (`make_judge` refuses others)
    return backend


def judge_backend(model: str | None = None, *, base_url: str | None = None,
                  api_key_env: str | None = None, backend: str | None = None, batch_size: int = 8,
                  flag: str = "--judge-model",
                  endpoint_options: dict[str, Any] | None = None) -> tuple[Any, str]:
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
                                     key_flag="--judge-api-key-env", **(endpoint_options or {}))
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
               batch_size: int = 8, model_label: str | None = None, orders: int = 2,
               template: str = "selfpref",
               endpoint_options: dict[str, Any] | None = None) -> PairwiseJudge:
    """A judge of ``kind`` (one of JUDGE_KINDS); ``orders`` 2 asks both orders, 1 only A first.

    ``model``: a reference (None or "default" for the embedded model, a folder, a Hub id, the
    endpoint's model name with ``base_url``) or a loaded object with ``generate`` /
    ``option_probabilities`` (then ``model_label`` names it). The rule kinds take no model.
    """
    if kind not in JUDGE_KINDS:
        raise SelfprefError(f"--judge {kind!r}: use one of {', '.join(JUDGE_KINDS)}")
    if kind in RULE_KINDS:
        if model is not None or base_url:
            raise SelfprefError(f"--judge {kind} is a rule (SAO Table 6's baseline) and takes no "
                                "--judge-model or --judge-base-url")
        if kind == "random":
            return RandomJudge(seed=seed, aspects=aspects, orders=orders)
        return LengthJudge(prefer="longer" if kind == "length:longer" else "shorter", aspects=aspects,
                           orders=orders)
    if kind == "rm":
        from selfpref.judges.reward import RewardJudge

        if base_url or backend not in (None, "transformers"):
            raise SelfprefError("--judge rm scores with a local reward model (transformers); drop "
                                "--judge-base-url / --judge-backend")
        if model is None or isinstance(model, str):
            if model is None or model == "default":
                raise SelfprefError("--judge rm needs --judge-model PATH: a reward model (a folder "
                                    "written by `selfpref train rm`, or a Hub reward model)")
            from selfpref.models.resolve import model_label as label_of
            from selfpref.models.resolve import resolve_model
            from selfpref.models.reward import RewardModel

            resolve_model(model, flag="--judge-model")  # a missing folder fails now
            model_label = model_label or label_of(model)
            model = RewardModel(model, batch_size=batch_size)
        return RewardJudge(model, model_label=model_label, aspects=aspects, orders=orders)
    if model is None or isinstance(model, str):
        model, label = judge_backend(model, base_url=base_url, api_key_env=api_key_env,
                                     backend=backend, batch_size=batch_size,
                                     endpoint_options=endpoint_options)
        model_label = model_label or label
    if kind == "text":
        return TextJudge(model, max_new_tokens=max_new_tokens, model_label=model_label,
                         aspects=aspects, orders=orders, template=template)
    return LogitsJudge(model, model_label=model_label, aspects=aspects, orders=orders,
                       template=template)


def judge_kinds(kinds: str | Sequence[str] | None, n_models: int, flag: str = "--judge") -> list[str]:
    """One kind per model: ``kinds`` is one kind for all (``logits``), or one per model, comma
    separated or repeated (``text,rm``), in the order of the models."""
    if kinds is None:
        names = ["logits"]
    elif isinstance(kinds, str):
        names = [k.strip() for k in kinds.split(",") if k.strip()]
    else:
        names = [k.strip() for part in kinds for k in str(part).split(",") if k.strip()]
    if len(names) == 1:
        names = names * n_models
    if len(names) != n_models:
        raise SelfprefError(f"{flag} {','.join(names)}: give one kind for every judge model, or one "
                            f"for all ({len(names)} kinds for {n_models} --judge-model)")
    for kind in names:
        if kind not in MODEL_KINDS:
            raise SelfprefError(f"{flag} {kind!r}: a panel's judges are models; use "
                                f"{', '.join(MODEL_KINDS)}")
    return names


def make_panel(kinds: str | Sequence[str] | None, models: Sequence[str], rule: str = "mean", *,
               load: Any = None, batch_size: int = 8, **common: Any) -> PairwiseJudge:
    """A `PanelJudge` of one judge per model. ``load(kind, ref)``: the loaded model for a
    reference (a pool, so A, B and the judges share loads); by default each distinct model is
    created once here, a causal LM shared by its text and logits judges."""
    from selfpref.judges.panel import PanelJudge
    from selfpref.models.resolve import model_label

    names = judge_kinds(kinds, len(models))
    cache: dict[tuple[str, str], Any] = {}

    def default_load(kind: str, ref: str) -> Any:
        key = ("rm" if kind == "rm" else "lm", str(ref))
        if key not in cache:
            if kind == "rm":
                from selfpref.models.reward import RewardModel

                cache[key] = RewardModel(ref, batch_size=batch_size)
            else:
                cache[key] = judge_backend(ref, batch_size=batch_size)[0]
        return cache[key]

    load = load or default_load
    judges = []
    for kind, ref in zip(names, models):
        if kind == "rm" and (ref is None or ref == "default"):
            raise SelfprefError("--judge rm needs --judge-model PATH: a reward model")
        judges.append(make_judge(kind, load(kind, ref), model_label=model_label(ref),
                                 batch_size=batch_size, **common))
    return PanelJudge(judges, rule)
