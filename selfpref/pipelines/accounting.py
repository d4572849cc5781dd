"""What a build cost: tokens per step, requests and retries per endpoint, an optional price.

Each step's LLM face counts its own calls (an endpoint's ``usage``, or the tokenizer's count for
a local model); each endpoint client counts requests, tokens and retries by kind, the probe's
included. A chunk group's share goes into its first part file, so a resumed build adds what the
earlier runs spent instead of forgetting it; the build record sums the parts.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Any


def snapshot(engine: Any) -> dict[str, dict[str, dict[str, int]]]:
    """Counters now: ``{"steps": {step: {...}}, "endpoints": {label: {...}}}``."""
    steps: dict[str, dict[str, int]] = {}
    for step in engine.steps:
        usage = getattr(getattr(step, "llm", None), "usage", None)
        if isinstance(usage, dict):
            steps[step.name] = dict(usage)
    endpoints: dict[str, dict[str, int]] = {}
    for model in engine.pool.models().values():
        if hasattr(model, "report"):
            counts = dict(model.usage)
            counts.update({f"retries_{k}": v for k, v in model.retrier.retries.items()})
            endpoints[model.label] = counts
    return {"steps": steps, "endpoints": endpoints}


def delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``after - before`` per group and counter, zeros left out."""
    out: dict[str, Any] = {}
    for group, items in after.items():
        for name, counts in items.items():
            old = before.get(group, {}).get(name, {})
            diff = {k: v - old.get(k, 0) for k, v in counts.items() if v - old.get(k, 0)}
            if diff:
                out.setdefault(group, {})[name] = diff
    return out


def add(parts: Iterable[dict[str, Any] | None]) -> dict[str, dict[str, dict[str, int]]]:
    """The parts' usage summed."""
    total: dict[str, dict[str, collections.Counter]] = {}
    for part in parts:
        for group, items in (part or {}).items():
            for name, counts in items.items():
                total.setdefault(group, {}).setdefault(name, collections.Counter()).update(counts)
    return {g: {n: dict(c) for n, c in items.items()} for g, items in total.items()}


def usage_stats(parts: Iterable[dict[str, Any] | None], reports: list[dict[str, Any]],
                prices: tuple[float, float] | None) -> dict[str, Any]:
    """The build record's ``stats.usage``: per step, per endpoint (with what its probe found),
    the totals, and the cost at ``prices`` (per million input, output tokens)."""
    summed = add(parts)
    steps = summed.get("steps", {})
    endpoints = summed.get("endpoints", {})
    for report in reports:  # what this run's probe found; counts come from the parts
        entry = endpoints.setdefault(report["model"] + "@" + report["base_url"], {})
        entry_caps = report.get("capabilities")
        if entry_caps:
            entry["capabilities"] = entry_caps
    total: collections.Counter[str] = collections.Counter()
    for counts in steps.values():
        total.update({k: v for k, v in counts.items() if k in ("prompt_tokens", "completion_tokens")})
    sent: collections.Counter[str] = collections.Counter()
    for counts in endpoints.values():
        sent.update({k: v for k, v in counts.items() if isinstance(v, int)})
    out: dict[str, Any] = {
        "steps": steps, "endpoints": endpoints,
        "prompt_tokens": int(total["prompt_tokens"]), "completion_tokens": int(total["completion_tokens"]),
        "requests_sent": int(sent["requests"]),
        "retries": {k.removeprefix("retries_"): v for k, v in sorted(sent.items()) if k.startswith("retries_")},
        "failed_requests": int(sent["failed_requests"]),
        "cached_requests": None,  # filled by the response cache where one answers
    }
    if prices is not None:
        out["cost"] = cost(out["prompt_tokens"], out["completion_tokens"], prices)
    return out


def cost(prompt_tokens: int, completion_tokens: int, prices: tuple[float, float]) -> dict[str, Any]:
    amount = prompt_tokens * prices[0] / 1e6 + completion_tokens * prices[1] / 1e6
    return {"input_per_million": prices[0], "output_per_million": prices[1], "total": round(amount, 6),
            "line": cost_line(prompt_tokens, completion_tokens, prices)}


def cost_line(prompt_tokens: int, completion_tokens: int, prices: tuple[float, float]) -> str:
    amount = prompt_tokens * prices[0] / 1e6 + completion_tokens * prices[1] / 1e6
    return (f"{prompt_tokens:,} prompt tokens x {prices[0]:g}/M + {completion_tokens:,} completion "
            f"tokens x {prices[1]:g}/M = {amount:.4f}")


def summary_lines(usage: dict[str, Any]) -> list[str]:
    """What `selfpref inspect` and the card print about a build's usage."""
    lines = [f"tokens: {usage.get('prompt_tokens', 0):,} prompt, {usage.get('completion_tokens', 0):,} "
             f"completion"]
    for step, counts in usage.get("steps", {}).items():
        lines.append(f"  {step}: {counts.get('prompt_tokens', 0):,} prompt, "
                     f"{counts.get('completion_tokens', 0):,} completion"
                     + (f", {counts['requests']} requests" if counts.get("requests") else ""))
    if usage.get("requests_sent") or usage.get("endpoints"):
        retries = ", ".join(f"{k} {v}" for k, v in usage.get("retries", {}).items()) or "none"
        cached = usage.get("cached_requests")
        lines.append(f"requests sent: {usage.get('requests_sent', 0):,}; retries: {retries}; "
                     f"failed: {usage.get('failed_requests', 0)}"
                     + (f"; answered from cache: {cached:,}" if cached is not None else ""))
    if "cost" in usage:
        lines.append(f"cost: {usage['cost']['line']}")
    return lines
