"""One loaded model per (backend, model): every step and chunk of a build, every side of an eval.

A build asks the pool for the model a step uses; the first request creates the backend object
and the first call loads it (so a build whose chunks are all finished loads nothing). SAO's
persona, prompt, answer and judge steps on one model are one load; SELFEE's answers and policy
scores are one load, its reference a second. Scripted models are per step (each step has its
own script). `selfpref eval` shares one pool between model A, model B and the judge (and a loop
between its evaluations): the same model named twice is one load.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selfpref import SelfprefError

BACKENDS = ("transformers", "vllm", "openai", "scripted")
LOCAL_KINDS = ("transformers", "vllm")  # weights on this machine, named by a folder or a Hub id


def _local_ref(ref: str | os.PathLike | None) -> str:
    """What a local backend loads: the embedded model's folder for None / "default", else ``ref``."""
    from selfpref.models.resolve import is_default

    if is_default(ref):
        from selfpref.models.embedded import default_model

        return str(default_model())
    return str(ref)
# Not a generation backend: a sequence classifier scoring answers (``--judge rm``).
REWARD = "reward"


class ModelPool:
    """Backends by (kind, model reference), created lazily and kept until ``close``.

    ``script``: the scripted build's mapping (step -> texts, ...); ``base_url``/``api_key_env``:
    the OpenAI-compatible endpoint; ``endpoints``: other endpoints by name (SAO's judge on its
    own server: ``{"judge": (url, key variable or None, flag prefix)}``), asked for with
    ``get(..., endpoint=name)``; ``vllm_options``: keyword arguments for ``vllm.LLM``;
    ``factories``: kind -> callable(ref, step) replacing the built-in constructor (tests, or a
    backend defined in a layer above); ``prompt_format``: how transformers models render the
    chats they generate from (`generation.chat_ids`: chat, completion or auto);
    ``endpoint_options``: keyword arguments of every ``OpenAICompatModel`` (max_concurrency,
    max_retries, request_timeout, retry_backoff).
    """

    def __init__(self, batch_size: int = 8, *, seed: int = 0, script: dict[str, Any] | None = None,
                 base_url: str | None = None, api_key_env: str | None = None,
                 vllm_options: dict[str, Any] | None = None,
                 factories: dict[str, Callable[[str, str], Any]] | None = None,
                 endpoints: dict[str, tuple[str, str | None, str]] | None = None,
                 prompt_format: str = "chat",
                 endpoint_options: dict[str, Any] | None = None) -> None:
        self.batch_size, self.seed, self.script = batch_size, seed, script or {}
        self.base_url, self.api_key_env = base_url, api_key_env
        self.endpoints = dict(endpoints or {})
        self.endpoint_options = dict(endpoint_options or {})
        self.vllm_options = dict(vllm_options or {})
        self.factories = dict(factories or {})
        self.prompt_format = prompt_format
        self._models: dict[tuple[str, ...], Any] = {}

    def key(self, kind: str, ref: str | None, *, step: str = "", endpoint: str = "") -> tuple[str, ...]:
        """Which pooled model (kind, ref) is. A local model is named by what it loads, so None,
        "default" and the embedded model's folder are one model, and so are ./m and m."""
        name = _local_ref(ref) if kind in LOCAL_KINDS else str(ref)
        if kind in (*LOCAL_KINDS, REWARD) and Path(name).expanduser().is_dir():
            name = str(Path(name).expanduser().resolve())
        return (kind, name, step if kind == "scripted" else "", endpoint if kind == "openai" else "")

    def get(self, kind: str, ref: str | None, *, step: str = "", endpoint: str = "") -> Any:
        """The model for (kind, ref): one object per pool, whichever steps or sides ask for it."""
        key = self.key(kind, ref, step=step, endpoint=endpoint)
        if key not in self._models:
            target = _local_ref(ref) if kind in LOCAL_KINDS else str(ref)
            self._models[key] = self._create(kind, target, step, endpoint)
        return self._models[key]

    def drop(self, kind: str, ref: str | None, *, step: str = "", endpoint: str = "") -> None:
        """Forget a model (its memory is freed once nothing else holds it); the next ``get``
        creates it again."""
        self._models.pop(self.key(kind, ref, step=step, endpoint=endpoint), None)

    def models(self) -> dict[tuple[str, ...], Any]:
        return dict(self._models)

    def start_chunk(self, index: int) -> None:
        """Tell every model a new chunk begins (scripted models start their script again)."""
        for model in self._models.values():
            if hasattr(model, "start_chunk"):
                model.start_chunk(index)

    def close(self) -> None:
        for model in self._models.values():
            if hasattr(model, "close"):
                model.close()
        self._models.clear()

    def _create(self, kind: str, ref: str, step: str, endpoint: str = "") -> Any:
        if kind in self.factories:
            return self.factories[kind](ref, step)
        if kind == REWARD:
            from selfpref.models.reward import RewardModel

            return RewardModel(ref, batch_size=self.batch_size)
        if kind == "transformers":
            from selfpref.models.local import LocalModel

            return LocalModel(ref, batch_size=self.batch_size, prompt_format=self.prompt_format)
        if kind == "vllm":
            from selfpref.models.vllm_backend import VLLMModel

            return VLLMModel(ref, seed=self.seed, **self.vllm_options)
        if kind == "scripted":
            from selfpref.models.scripted import scripted_model

            return scripted_model(self.script, step)
        if kind == "openai":
            if endpoint:
                if endpoint not in self.endpoints:
                    raise SelfprefError(f"no endpoint named {endpoint!r} in this build")
                url, env, prefix = self.endpoints[endpoint]
                from selfpref.models.openai_compat import OpenAICompatModel

                return OpenAICompatModel(url, ref, api_key_env=env, key_flag=f"{prefix}-api-key-env",
                                         **self.endpoint_options)
            return _openai_model(ref, self.base_url, self.api_key_env, self.endpoint_options)
        raise SelfprefError(f"unknown backend {kind!r}: use one of {', '.join(BACKENDS)}")


def _openai_model(ref: str, base_url: str | None, api_key_env: str | None,
                  options: dict[str, Any]) -> Any:
    if not base_url:
        raise SelfprefError("--backend openai needs --base-url (the endpoint's /v1 URL)")
    env = api_key_env or "OPENAI_API_KEY"
    if not os.environ.get(env):
        raise SelfprefError(f"--backend openai: environment variable {env} is not set; export the "
                            "key there (it is never written anywhere)")
    from selfpref.models.openai_compat import OpenAICompatModel

    return OpenAICompatModel(base_url=base_url, model=ref, api_key_env=env, **options)
