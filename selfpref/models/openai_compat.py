"""An OpenAI-compatible endpoint behind the same interface as `LocalModel`.

``generate(chats, ...) -> list[list[str]]`` and ``option_probabilities(chats, options)`` (the
forced choice read from the top log-probabilities of one generated token), so judges and
pipelines run on a hosted model, a ``vllm serve`` endpoint or any server that speaks the
chat-completions API. Requests run concurrently (``max_workers``) and come back in input order.

The API key is read from the environment variable *named* by ``api_key_env`` when the object is
made and handed only to the HTTP client (which keeps it in memory): it is never stored in
selfpref's own attributes, printed by ``repr``, recorded by ``describe`` (which names the
variable) or included in an error message (a server that echoes the key back has it replaced by
``***``; an authentication failure reports the status only).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from selfpref import SelfprefError

Chat = Sequence[dict[str, str]]
NO_KEY = "EMPTY"  # what vLLM's server accepts when started without --api-key


def mask_url(url: str) -> str:
    """The URL with any ``user:password@`` part replaced by ``***@``."""
    return re.sub(r"://[^/@\s]+@", "://***@", url)


class OpenAICompatModel:
    """Chat completions at ``base_url`` for ``model``; the key comes from ``$api_key_env``."""

    def __init__(self, base_url: str, model: str, api_key_env: str | None = "OPENAI_API_KEY", *,
                 max_workers: int = 8, timeout: float = 120.0, max_retries: int = 2,
                 top_logprobs: int = 20, key_flag: str = "--api-key-env") -> None:
        try:
            import openai
        except ImportError:  # pragma: no cover - openai is in the dev and openai extras
            raise SelfprefError("an OpenAI-compatible endpoint needs `pip install 'selfpref[openai]'`") from None
        self.base_url, self.model, self.api_key_env = base_url, model, api_key_env
        self.max_workers, self.top_logprobs = max_workers, top_logprobs
        key = NO_KEY
        if api_key_env:
            key = os.environ.get(api_key_env, "")
            if not key:
                raise SelfprefError(f"{key_flag} {api_key_env}: the environment variable is not set; "
                                    "export the endpoint's key there (selfpref reads it from the "
                                    "environment and writes it nowhere)")
        self._client = openai.OpenAI(base_url=base_url, api_key=key, timeout=timeout,
                                     max_retries=max_retries)

    @property
    def label(self) -> str:
        return f"{self.model}@{mask_url(self.base_url)}"

    def __repr__(self) -> str:
        return f"OpenAICompatModel({mask_url(self.base_url)!r}, {self.model!r}, api_key_env={self.api_key_env!r})"

    def describe(self) -> dict[str, Any]:
        return {"backend": "openai", "base_url": mask_url(self.base_url), "model": self.model,
                "api_key_env": self.api_key_env}

    # --- requests ------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        key = getattr(self._client, "api_key", "")  # the client holds the key; selfpref does not
        if key and key != NO_KEY:
            text = text.replace(key, "***")
        return mask_url(text)

    cache: Any = None  # a request_cache.RequestCache the build sets: no request is sent twice

    def _call(self, **kwargs: Any) -> Any:
        """One request, answered from ``cache`` when it holds it, else sent and appended there."""
        if self.cache is None:
            return self._send(**kwargs)
        from openai.types.chat import ChatCompletion

        response = self.cache.fetch(self.base_url, {"model": self.model, **kwargs}, lambda request: self._send(
            **{k: v for k, v in request.items() if k != "model"}).model_dump(mode="json"))
        return ChatCompletion.model_validate(response)

    def _send(self, **kwargs: Any) -> Any:
        import openai

        try:
            return self._client.chat.completions.create(model=self.model, **kwargs)
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise SelfprefError(f"{self.label}: the endpoint refused the key from "
                                f"${self.api_key_env} (HTTP {exc.status_code}); check that "
                                "variable") from None
        except openai.APIStatusError as exc:
            raise SelfprefError(f"{self.label}: HTTP {exc.status_code}: "
                                f"{self._redact(str(exc).splitlines()[0])}") from None
        except openai.APIError as exc:  # connection errors, timeouts, malformed responses
            raise SelfprefError(f"{self.label}: {type(exc).__name__}: "
                                f"{self._redact(str(exc).splitlines()[0])}") from None

    def _map(self, fn: Any, chats: Sequence[Any]) -> list[Any]:
        if len(chats) <= 1 or self.max_workers <= 1:
            return [fn(chat) for chat in chats]
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            return list(pool.map(fn, chats))

    def generate(self, chats: Sequence[Chat], *, num_generations: int = 1, max_new_tokens: int = 128,
                 temperature: float = 0.7, top_p: float = 1.0, seed: int | None = None,
                 seeds: Sequence[int | None] | None = None) -> list[list[str]]:
        """``num_generations`` answers per conversation (temperature 0: greedy).

        ``seeds`` (one per conversation, as a build passes them) goes into each request's
        ``seed``, so a conversation's samples do not depend on the batch it came in; ``seed``
        is one seed for every request. Servers that honour ``seed`` (vLLM, OpenAI's best
        effort) then answer the same conversation the same way.
        """
        if seeds is not None and len(seeds) != len(chats):
            raise ValueError(f"{len(seeds)} seeds for {len(chats)} conversations")
        per_chat = list(seeds) if seeds is not None else [seed] * len(chats)

        def one(item: tuple[Chat, int | None]) -> list[str]:
            chat, chat_seed = item
            kwargs: dict[str, Any] = {"messages": list(chat), "n": num_generations,
                                      "max_tokens": max_new_tokens, "temperature": temperature}
            if temperature > 0:
                kwargs["top_p"] = top_p
            if chat_seed is not None:
                kwargs["seed"] = int(chat_seed) % 2**63  # the API's seed is a signed 64-bit integer
            response = self._call(**kwargs)
            texts = [(c.message.content or "").strip() for c in response.choices]
            return (texts + [""] * num_generations)[:num_generations]

        return self._map(one, list(zip(chats, per_chat)))

    def option_probabilities(self, chats: Sequence[Chat], options: Sequence[str]) -> list[list[float]]:
        """P(next token = option), renormalised over the options, from one token's top log-probs.

        A top token counts for an option when it equals the option after stripping whitespace
        (" A" and "A" both count). When no option is among the top ``top_logprobs`` tokens the
        verdict is uniform (1 / len(options) each).
        """
        def one(chat: Chat) -> list[float]:
            response = self._call(messages=list(chat), max_tokens=1, temperature=0.0, logprobs=True,
                                  top_logprobs=self.top_logprobs)
            return option_mass(top_logprobs_of(response), options)

        return self._map(one, chats)


def top_logprobs_of(response: Any) -> list[tuple[str, float]]:
    """(token, logprob) pairs of the first generated token's top alternatives."""
    try:
        first = response.choices[0].logprobs.content[0]
    except (AttributeError, IndexError, TypeError):
        raise SelfprefError("the endpoint returned no log-probabilities; a forced-choice judge "
                            "needs logprobs=True support (use --judge text otherwise)") from None
    pairs = [(t.token, t.logprob) for t in (first.top_logprobs or [])]
    return pairs or [(first.token, first.logprob)]


def option_mass(top: Sequence[tuple[str, float]], options: Sequence[str]) -> list[float]:
    mass = [0.0] * len(options)
    for token, logprob in top:
        text = token.strip()
        for i, option in enumerate(options):
            if text == option and logprob is not None and math.isfinite(logprob):
                mass[i] += math.exp(logprob)
    total = sum(mass)
    if total <= 0:
        return [1.0 / len(options)] * len(options)
    return [m / total for m in mass]
