"""What an OpenAI-compatible endpoint does, found out once per build before real work is sent.

Servers differ where a build depends on them (measured): ``transformers serve`` ignores ``n``
(one choice per request), samples greedily whatever ``temperature`` says unless the model's
``generation_config.json`` sets ``do_sample`` (it takes a ``generation_config`` JSON field that
does), answers 422 to fields outside OpenAI's schema (``top_k``) and returns no log-probs;
``vllm serve`` fills every sampling field a request leaves unset from the model's
``generation_config.json``; OpenAI's own API wants ``max_completion_tokens``. The probe sends a
few requests of a few tokens and records what it saw; the client then asks for what it means in
the fields the server takes, fetches missing choices with more requests, and refuses in one
line what the server cannot do.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from selfpref import SelfprefError
from selfpref.models.endpoint_retry import EndpointRejected

# Every field selfpref means, at the value that leaves sampling alone, so a server's
# generation_config.json cannot change the distribution silently. top_k -1: "all tokens" for
# vLLM (older versions refuse 0).
NEUTRAL_EXTRA = {"top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0}
NEUTRAL_OPENAI = {"presence_penalty": 0.0, "frequency_penalty": 0.0}
# transformers serve: the body's generation_config replaces the model's, so sampling is on and
# nothing but temperature / top-p shapes it (the body's temperature and top_p override these).
SAMPLING_CONFIG = {"do_sample": True, "top_k": 0, "repetition_penalty": 1.0}

PROBE_CHAT = [{"role": "user", "content": "Write one short sentence about anything at all."}]
PROBE_SEEDS = (11, 12, 13)


def _texts(response: dict[str, Any]) -> list[str]:
    return [((c.get("message") or {}).get("content") or "") for c in response.get("choices") or []]


def probe_fields(client: Any) -> dict[str, Any]:
    """The richest request shape the server accepts, and how many choices it returns for n=2."""
    shapes = [("max_completion_tokens", {**NEUTRAL_EXTRA, **NEUTRAL_OPENAI}),
              ("max_completion_tokens", NEUTRAL_OPENAI), ("max_tokens", NEUTRAL_OPENAI),
              ("max_tokens", {})]
    rejected = []
    for length_field, extra in shapes:
        body = {"messages": PROBE_CHAT, length_field: 2, "temperature": 1.0, "top_p": 1.0,
                "n": 2, "seed": PROBE_SEEDS[0], **extra}
        try:
            response = client._send_uncached(client.with_model(body))
        except EndpointRejected as exc:
            rejected.append(f"HTTP {exc.status}")
            continue
        return {"length_field": length_field, "sampling_fields": sorted(extra),
                "choices_per_request": len(response.get("choices") or []), "rejected_shapes": rejected}
    raise SelfprefError(f"{client.label}: the endpoint refused every chat-completions request the "
                        f"probe tried ({', '.join(rejected)}); is --base-url its /v1 URL and "
                        "--model a model it serves?")


def probe_sampling(client: Any, caps: dict[str, Any]) -> str:
    """'native' when different seeds give different texts at temperature 1, 'generation_config'
    when only transformers serve's field makes the server sample; refuses otherwise."""
    def text(seed: int, extra: dict[str, Any]) -> str:
        body = {"messages": PROBE_CHAT, caps["length_field"]: 6, "temperature": 1.0, "top_p": 1.0,
                "seed": seed, **{k: v for k, v in NEUTRAL_EXTRA.items()
                                 if k in caps["sampling_fields"]}, **extra}
        return _texts(client._send_uncached(client.with_model(body)))[0]

    first = text(PROBE_SEEDS[0], {})
    if text(PROBE_SEEDS[1], {}) != first:
        return "native"
    config = {"generation_config": json.dumps(SAMPLING_CONFIG)}
    try:
        if text(PROBE_SEEDS[0], config) != text(PROBE_SEEDS[1], config):
            return "generation_config"
    except EndpointRejected:
        pass
    if text(PROBE_SEEDS[2], {}) != first:  # a sampler that happened to repeat itself twice
        return "native"
    raise SelfprefError(f"{client.label}: the endpoint gave the same text for {len(PROBE_SEEDS)} "
                        "seeds at temperature 1.0: it does not sample, so both answers of a pair "
                        "would be one answer; serve the model with sampling on (vllm serve, or "
                        "do_sample in its generation_config.json) or use --backend transformers")


def probe_logprobs(client: Any, caps: dict[str, Any]) -> bool:
    """Whether one generated token comes back with its top log-probabilities."""
    body = {"messages": PROBE_CHAT, caps["length_field"]: 1, "temperature": 0.0, "logprobs": True,
            "top_logprobs": 5}
    try:
        response = client._send_uncached(client.with_model(body))
    except EndpointRejected:
        return False
    try:
        first = response["choices"][0]["logprobs"]["content"][0]
    except (KeyError, IndexError, TypeError):
        return False
    return bool(first.get("top_logprobs"))


def probe_prompt_logprobs(client: Any, ids: list[int]) -> str | None:
    """How the completions endpoint returns log-probs of the prompt's own tokens: vLLM's
    ``prompt_logprobs``, OpenAI's legacy ``echo`` + ``logprobs``, or None."""

    for style in ("prompt_logprobs", "echo"):
        try:
            response = client._send_uncached(client.with_model(completion_body(style, ids)), path="completions")
        except EndpointRejected:
            continue
        values = prompt_token_logprobs(response, style, ids)
        if values is not None and len(values) == len(ids):
            return style
    return None


def completion_body(style: str, ids: list[int]) -> dict[str, Any]:
    """A completions request that scores ``ids`` (and generates one token nobody reads)."""
    if style == "prompt_logprobs":
        return {"prompt": ids, "max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0}
    return {"prompt": ids, "max_tokens": 1, "temperature": 0.0, "echo": True, "logprobs": 0}


def prompt_token_logprobs(response: dict[str, Any], style: str, ids: Sequence[int]) -> list[float] | None:
    """Log-prob of each prompt token given the ones before it (position 0 has none: 0.0)."""
    try:
        choice = response["choices"][0]
        if style == "prompt_logprobs":
            entries = choice["prompt_logprobs"]
            out = [0.0]
            for token, entry in zip(ids[1:], entries[1:]):
                value = entry[str(token)]  # vLLM keys each position by token id
                out.append(float(value["logprob"] if isinstance(value, dict) else value))
            return out if len(entries) >= len(ids) else None
        values = choice["logprobs"]["token_logprobs"][: len(ids)]
        return [0.0 if v is None else float(v) for v in values]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
