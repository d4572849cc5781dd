"""An OpenAI-compatible endpoint behind the same interface as `LocalModel`.

``generate(chats, ...) -> list[list[str]]``, ``option_probabilities(chats, options)`` (the
forced choice read from the top log-probabilities of one generated token) and
``answer_logps(prompts, answers)`` (SELFEE's scores, from the log-probs a server returns for the
prompt's own tokens), so judges and pipelines run on a hosted model, a ``vllm serve`` endpoint,
``transformers serve`` or any server that speaks the API. Requests run concurrently (at most
``max_concurrency`` in flight, fewer after a 429) and come back in input order.

Every request goes through ``_send(request, path=...) -> dict``: one request body in, the
response JSON out, retries included (``endpoint_retry``); the response cache hooks in there.
What the server does (choices per request, sampling, log-probs) is probed once per model object
(``endpoint_probe``) and reported by ``report()`` for the build record, with the tokens and
requests the endpoint was sent.

The API key is read from the environment variable *named* by ``api_key_env`` when the object is
made and handed only to the HTTP client (a header it keeps in memory): it is never stored in
selfpref's own attributes, printed by ``repr``, recorded by ``describe`` or ``report`` (which
name the variable) or included in an error message (a server that echoes the key back has it
replaced by ``***``; an authentication failure reports the status only).
"""

from __future__ import annotations

import collections
import json
import math
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from selfpref import SelfprefError
from selfpref.models.endpoint_probe import prompt_token_logprobs
from selfpref.models.endpoint_retry import (
    EndpointRejected,
    GaveUp,
    Retrier,
    RetryableError,
    RetryPolicy,
    retry_after_seconds,
    status_kind,
)

__all__ = ["EndpointRejected", "OpenAICompatModel", "mask_url", "option_mass", "prompt_token_logprobs",
           "top_logprobs_of"]

Chat = Sequence[dict[str, str]]
NO_KEY = "EMPTY"  # what vLLM's server accepts when started without --api-key


def mask_url(url: str) -> str:
    """The URL with any ``user:password@`` part replaced by ``***@``."""
    return re.sub(r"://[^/@\s]+@", "://***@", url)


class OpenAICompatModel:
    """Chat completions at ``base_url`` for ``model``; the key comes from ``$api_key_env``."""

    def __init__(self, base_url: str, model: str, api_key_env: str | None = "OPENAI_API_KEY", *,
                 max_concurrency: int = 16, max_retries: int = 8, request_timeout: float = 120.0,
                 retry_backoff: float = 1.0, top_logprobs: int = 20, key_flag: str = "--api-key-env",
                 max_workers: int | None = None, timeout: float | None = None) -> None:
        import httpx

        self.base_url, self.model, self.api_key_env = base_url.rstrip("/"), model, api_key_env
        self.top_logprobs = top_logprobs
        self.max_concurrency = max(1, int(max_workers or max_concurrency))
        key = NO_KEY
        if api_key_env:
            key = os.environ.get(api_key_env, "")
            if not key:
                raise SelfprefError(f"{key_flag} {api_key_env}: the environment variable is not set; "
                                    "export the endpoint's key there (selfpref reads it from the "
                                    "environment and writes it nowhere)")
        policy = RetryPolicy(max_retries=max_retries, timeout=timeout or request_timeout,
                             backoff=retry_backoff)
        self.retrier = Retrier(policy, self.max_concurrency)
        self._client = httpx.Client(timeout=policy.timeout, headers={"Authorization": f"Bearer {key}"})
        self.usage: collections.Counter = collections.Counter()  # requests, tokens, failures
        self.capabilities: dict[str, Any] = {}
        self._probe_lock = threading.Lock()
        self._usage_lock = threading.Lock()  # requests finish on many threads
        self._tokenizer: Any = None

    @property
    def label(self) -> str:
        return f"{self.model}@{mask_url(self.base_url)}"

    def __repr__(self) -> str:
        return f"OpenAICompatModel({mask_url(self.base_url)!r}, {self.model!r}, api_key_env={self.api_key_env!r})"

    def describe(self) -> dict[str, Any]:
        return {"backend": "openai", "base_url": mask_url(self.base_url), "model": self.model,
                "api_key_env": self.api_key_env}

    def report(self) -> dict[str, Any]:
        """What the build record keeps: the probe's findings, requests, tokens, retries."""
        return {**self.describe(), "capabilities": dict(self.capabilities),
                "usage": dict(self.usage), "retries": dict(self.retrier.retries),
                "lowest_concurrency": self.retrier.limit.lowest}

    def close(self) -> None:
        self._client.close()

    def with_model(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"model": self.model, **body}

    # --- one request ---------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        key = self._client.headers.get("Authorization", "").removeprefix("Bearer ")
        if key and key != NO_KEY:  # the client holds the key; selfpref does not
            text = text.replace(key, "***")
        return mask_url(text)

    cache: Any = None  # a request_cache.RequestCache the build sets: no request is paid twice

    def _attempt(self, request: dict[str, Any], path: str) -> dict[str, Any]:
        import httpx

        try:
            response = self._client.post(f"{self.base_url}/{path}", json=request)
        except httpx.TimeoutException as exc:
            raise RetryableError("timeout", f"no answer within {self.retrier.policy.timeout:g} s "
                                 f"({type(exc).__name__})") from None
        except httpx.TransportError as exc:  # refused, reset, closed mid-response
            raise RetryableError("connection", f"{type(exc).__name__}: {self._redact(str(exc))}") from None
        status = response.status_code
        if status in (401, 403):
            raise SelfprefError(f"{self.label}: the endpoint refused the key from "
                                f"${self.api_key_env} (HTTP {status}); check that variable")
        if status >= 400:
            detail = self._redact(" ".join(response.text.split())[:300])
            kind = status_kind(status)
            if kind is None:
                raise EndpointRejected(f"{self.label}: HTTP {status}: {detail}", status)
            raise RetryableError(kind, f"HTTP {status}: {detail}",
                                 retry_after_seconds(response.headers.get("Retry-After")))
        try:
            return response.json()
        except ValueError:  # a proxy's HTML page or a body cut short: the next try may do better
            raise RetryableError("malformed", f"HTTP {status} with a body that is not JSON") from None

    def _send(self, request: dict[str, Any], *, path: str = "chat/completions") -> dict[str, Any]:
        """POST ``request`` to ``{base_url}/{path}``; the response JSON, from ``cache`` when it
        holds this request (the key is the URL, the path and the body; never a header or key),
        else sent and appended there. Outside the retries: one entry per request that succeeded.
        The capability probe (``endpoint_probe``) goes around it: it asks what the server does now."""
        if self.cache is None:
            return self._send_uncached(request, path=path)
        return self.cache.fetch(f"{self.base_url}/{path}", request,
                                lambda body: self._send_uncached(body, path=path))

    def _send_uncached(self, request: dict[str, Any], *, path: str = "chat/completions") -> dict[str, Any]:
        """The request itself. Retries what may pass; raises one-line SelfprefErrors for what
        cannot (after the retries, or at once)."""
        try:
            result = self.retrier.run(lambda: self._attempt(request, path))
        except GaveUp as exc:
            with self._usage_lock:
                self.usage["failed_requests"] += 1
            what = ", ".join(f"{k} x{v}" for k, v in sorted(exc.kinds.items()))
            raise SelfprefError(f"{self.label}: a request failed {exc.attempts} times ({what}); "
                                f"last: {self._redact(exc.last)}") from None
        usage = result.get("usage") or {}
        with self._usage_lock:
            self.usage["requests"] += 1
            self.usage["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
            self.usage["completion_tokens"] += int(usage.get("completion_tokens") or 0)
        return result

    def _map(self, fn: Any, items: Sequence[Any]) -> list[Any]:
        if len(items) <= 1 or self.max_concurrency <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            return list(pool.map(fn, items))

    # --- what the server does ------------------------------------------------------------------

    def probe(self, *, sampling: bool = False, logprobs: bool = False) -> dict[str, Any]:
        """Find out (once) what the endpoint does; refuses in one line what a caller needs and
        the server cannot do."""
        from selfpref.models.endpoint_probe import probe_fields, probe_logprobs, probe_sampling

        with self._probe_lock:
            caps = self.capabilities
            if "length_field" not in caps:
                caps.update(probe_fields(self))
            if sampling and "sampling" not in caps:
                caps["sampling"] = probe_sampling(self, caps)
            if logprobs and "logprobs" not in caps:
                caps["logprobs"] = probe_logprobs(self, caps)
            if logprobs and not caps["logprobs"]:
                raise SelfprefError(f"--judge logits: {self.label} returns no log-probabilities "
                                    "(it ignores logprobs=true); use --judge text")
            return caps

    def sampling_body(self, max_new_tokens: int, temperature: float, top_p: float) -> dict[str, Any]:
        """The fields of a generation request: everything selfpref means, as the server takes it."""
        caps = self.probe(sampling=temperature > 0)
        body: dict[str, Any] = {caps["length_field"]: max_new_tokens, "temperature": temperature,
                                "top_p": top_p if temperature > 0 else 1.0}
        from selfpref.models.endpoint_probe import NEUTRAL_EXTRA, NEUTRAL_OPENAI, SAMPLING_CONFIG

        for key, value in {**NEUTRAL_EXTRA, **NEUTRAL_OPENAI}.items():
            if key in caps["sampling_fields"]:
                body[key] = value
        if temperature > 0 and caps.get("sampling") == "generation_config":
            body["generation_config"] = json.dumps(SAMPLING_CONFIG)
        return body

    # --- the model interface -------------------------------------------------------------------

    def generate(self, chats: Sequence[Chat], *, num_generations: int = 1, max_new_tokens: int = 128,
                 temperature: float = 0.7, top_p: float = 1.0, seed: int | None = None,
                 seeds: Sequence[int | None] | None = None) -> list[list[str]]:
        """``num_generations`` answers per conversation (temperature 0: greedy).

        ``seeds`` (one per conversation, as a build passes them) goes into each request's
        ``seed``, so a conversation's samples do not depend on the batch it came in. A server
        that returns fewer choices than asked (``transformers serve`` ignores ``n``) gets one
        more request per missing answer, seeded ``sample_seed(seed, k)`` for answer k: a missing
        answer is fetched, never left empty.
        """
        from selfpref.models.generation import sample_seed

        if seeds is not None and len(seeds) != len(chats):
            raise ValueError(f"{len(seeds)} seeds for {len(chats)} conversations")
        per_chat = list(seeds) if seeds is not None else [seed] * len(chats)
        fields = self.sampling_body(max_new_tokens, temperature, top_p)
        per_request = max(1, min(num_generations, self.capabilities.get("choices_per_request", 1)))

        def request(job: tuple[int, int, int]) -> list[str]:
            i, first, n = job
            body = {"messages": list(chats[i]), **fields}
            if n > 1:
                body["n"] = n
            chat_seed = per_chat[i]
            if chat_seed is not None:  # the API's seed is a signed 64-bit integer
                body["seed"] = (chat_seed if first == 0 else sample_seed(chat_seed, first)) % 2**63
            choices = self._send(self.with_model(body)).get("choices") or []
            if not choices:
                raise SelfprefError(f"{self.label}: the endpoint answered a request with no choice")
            return [((c.get("message") or {}).get("content") or "").strip() for c in choices][:n]

        out: list[list[str]] = [[] for _ in chats]
        jobs = [(i, k, min(per_request, num_generations - k)) for i in range(len(chats))
                for k in range(0, num_generations, per_request)]
        while jobs:  # one round of requests, then one request per answer still missing
            for (i, _, _), got in zip(jobs, self._map(request, jobs)):
                out[i] += got
            jobs = [(i, len(out[i]), 1) for i in range(len(chats)) if len(out[i]) < num_generations]
        return [answers[:num_generations] for answers in out]

    def option_probabilities(self, chats: Sequence[Chat], options: Sequence[str]) -> list[list[float]]:
        """P(next token = option), renormalised over the options, from one token's top log-probs.

        A top token counts for an option when it equals the option after stripping whitespace
        (" A" and "A" both count). When no option is among the top ``top_logprobs`` tokens the
        verdict is uniform (1 / len(options) each).
        """
        caps = self.probe(logprobs=True)

        def one(chat: Chat) -> list[float]:
            response = self._send(self.with_model({"messages": list(chat), caps["length_field"]: 1,
                                                   "temperature": 0.0, "logprobs": True,
                                                   "top_logprobs": self.top_logprobs}))
            return option_mass(top_logprobs_of(response), options)

        return self._map(one, chats)

    def answer_logps(self, prompts: Sequence[Chat], answers: Sequence[str]) -> tuple[list[float], list[int]]:
        """Summed log-prob of each answer's tokens given its prompt, and the token counts, from
        the log-probs the completions endpoint returns for a prompt's own tokens (the prompt +
        answer rendered with the model's chat template here, sent as token ids)."""
        from selfpref.models.endpoint_probe import completion_body, probe_prompt_logprobs
        from selfpref.models.scoring import answer_token_ids

        tokenizer = self.tokenizer()
        items = [answer_token_ids(tokenizer, p, a) for p, a in zip(prompts, answers)]
        with self._probe_lock:
            if "prompt_logprobs" not in self.capabilities and items:
                self.capabilities["prompt_logprobs"] = probe_prompt_logprobs(self, items[0][0])
        style = self.capabilities.get("prompt_logprobs")
        if items and not style:
            raise SelfprefError(f"selfee over an endpoint: {self.label} returns no log-probs of the "
                                "prompt's tokens (vLLM's /v1/completions takes prompt_logprobs); "
                                "serve the model with vllm serve, or use --backend transformers or vllm")

        def one(item: tuple[list[int], int]) -> tuple[float, int]:
            full, n_prompt = item
            assert style  # set whenever there are items (raised above otherwise)
            response = self._send(self.with_model(completion_body(style, full)), path="completions")
            values = prompt_token_logprobs(response, style, full)
            if values is None or len(values) != len(full):
                raise SelfprefError(f"{self.label}: the completions endpoint returned "
                                    f"{'no' if values is None else len(values)} prompt log-probs "
                                    f"for {len(full)} tokens")
            scored = values[max(n_prompt, 1):]
            return float(math.fsum(scored)), len(scored)

        results = self._map(one, items)
        return [r[0] for r in results], [r[1] for r in results]

    def tokenizer(self) -> Any:
        """The served model's tokenizer, loaded here from its name (a folder or a Hub id)."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            try:
                self._tokenizer = AutoTokenizer.from_pretrained(self.model)
            except (OSError, ValueError) as exc:
                raise SelfprefError(f"selfee over an endpoint renders prompts here: the tokenizer of "
                                    f"--model {self.model!r} does not load ({type(exc).__name__}); "
                                    "name the model by a local folder or a Hub id") from None
        return self._tokenizer


def top_logprobs_of(response: dict[str, Any]) -> list[tuple[str, float]]:
    """(token, logprob) pairs of the first generated token's top alternatives."""
    try:
        first = response["choices"][0]["logprobs"]["content"][0]
    except (KeyError, IndexError, TypeError):
        raise SelfprefError("the endpoint returned no log-probabilities; a forced-choice judge "
                            "needs logprobs=True support (use --judge text otherwise)") from None
    pairs = [(t["token"], t["logprob"]) for t in (first.get("top_logprobs") or [])]
    return pairs or [(first["token"], first["logprob"])]


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
