"""Judged pairs/s of the forced-choice judge vs bare batched forwards of the same sequences.

The judge (`selfpref.judges.LogitsJudge` over the embedded model) asks every pair in both orders:
two sequences per pair, each rendered with the judge prompt and the chat template, tokenized,
batched by length, run with ``logits_to_keep=1`` and read as P("A") vs P("B"). The bare side runs
the same token sequences, already tokenized and sorted, through the same batched forward and
nothing else. Both sides are warmed up first; the rounds alternate and the best round of each
counts (on a shared machine the best is the least disturbed).

Goal: the judge at >= 0.8 of the bare forwards.

    python bench/eval.py [pairs] [batch_size] [rounds]
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import torch


def _pairs(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """Held-out prompts with two answers of 150-700 characters made of their own words."""
    prompts = [json.loads(line)["prompt"] for line in
               (Path(__file__).parents[1] / "selfpref" / "eval" / "prompts.jsonl").read_text().splitlines()]
    words = " ".join(prompts).split()
    rng = random.Random(seed)

    def answer() -> str:
        text = ""
        target = rng.randint(150, 700)
        while len(text) < target:
            text += rng.choice(words) + " "
        return text.strip()

    return [(prompts[i % len(prompts)], answer(), answer()) for i in range(n)]


def main(pairs: int = 16, batch_size: int = 8, rounds: int = 2) -> None:
    from selfpref.judges import LogitsJudge
    from selfpref.judges.base import Shown
    from selfpref.models.generation import chat_input_ids
    from selfpref.models.local import LocalModel
    from selfpref.models.padding import pad

    local = LocalModel(None, batch_size=batch_size).load()
    model, tok = local.model, local.tokenizer
    items = _pairs(pairs)
    judge = LogitsJudge(local, model_label="embedded")

    # the same token sequences the judge runs: both orders of every pair
    shown = [Shown(p, x, y) for p, a, b in items for x, y in ((a, b), (b, a))]
    encoded = [chat_input_ids(tok, s.chat()) for s in shown]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    batches = [pad([encoded[i] for i in order[s : s + batch_size]], tok.pad_token_id, side="left")
               for s in range(0, len(order), batch_size)]

    def bare() -> None:
        for ids, mask in batches:
            with torch.inference_mode():
                model(input_ids=ids, attention_mask=mask, logits_to_keep=1)

    # warm-up: thread pools and allocator growth; time none of it
    judge.judge(items[: batch_size // 2])
    ids, mask = batches[-1]
    with torch.inference_mode():
        model(input_ids=ids, attention_mask=mask, logits_to_keep=1)

    judged, forwards = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        judge.judge(items)
        judged.append(pairs / (time.perf_counter() - start))
        start = time.perf_counter()
        bare()
        forwards.append(pairs / (time.perf_counter() - start))
        print(f"round {len(judged)}: judge {judged[-1]:.2f}, bare {forwards[-1]:.2f} pairs/s", flush=True)
    # what the judge adds around the forwards: prompts, chat template, tokenization, sorting
    start = time.perf_counter()
    [chat_input_ids(tok, s.chat()) for s in shown]
    overhead = time.perf_counter() - start
    tokens = sum(len(e) for e in encoded)
    print(f"{pairs} pairs, {2 * pairs} sequences, {tokens / (2 * pairs):.0f} tokens each on "
          f"average, batch {batch_size}, best of {rounds} rounds")
    print(f"forced-choice judge: {max(judged):.2f} pairs/s (rounds: "
          f"{', '.join(f'{x:.2f}' for x in judged)})")
    print(f"bare batched forwards: {max(forwards):.2f} pairs/s (rounds: "
          f"{', '.join(f'{x:.2f}' for x in forwards)})")
    print(f"judge / bare: {max(judged) / max(forwards):.2f} (goal >= 0.8); the judge's work "
          f"outside the forwards (prompt, chat template, tokenizing): {1000 * overhead:.0f} ms, "
          f"{100 * overhead * max(forwards) / pairs:.1f}% of the bare forwards' time")


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
