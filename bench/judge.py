"""Pairs/s of the reward-model judge vs bare batched forward passes of the same classifier, and of a
three-judge panel vs the same three judges run one after another.

The classifier is the embedded SmolLM2-135M with a one-output head (random, untrained: speed does
not depend on what it learned). Goals: rm judge >= 0.8x the bare forwards (it scores each
distinct answer once, sorted by length); panel >= 0.95x the three judges in sequence (the panel
adds no work of its own).

    python bench/judge.py [pairs] [batch_size]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path


def _pairs(n: int) -> list[tuple[str, str, str]]:
    return [(f"Explain idea number {i} in a few sentences.",
             f"A short answer about idea {i}." * (1 + i % 3),
             ("A longer answer that explains the idea with some detail and an example, "
              f"number {i}. ") * (1 + i % 4)) for i in range(n)]


def main(pairs: int = 16, batch_size: int = 8) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from selfpref.judges import LogitsJudge
    from selfpref.judges.panel import PanelJudge
    from selfpref.judges.reward import RewardJudge, answer_chat
    from selfpref.models import default_model
    from selfpref.models.local import LocalModel
    from selfpref.models.reward import RewardModel

    items = _pairs(pairs)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rm"
        torch.manual_seed(0)
        AutoModelForSequenceClassification.from_pretrained(default_model(), num_labels=1).save_pretrained(path)
        AutoTokenizer.from_pretrained(default_model()).save_pretrained(path)
        scorer = RewardModel(str(path), batch_size=batch_size).load()
        judge = RewardJudge(scorer, model_label="rm")
        judge.judge(items[:batch_size])  # warm-up
        start = time.perf_counter()
        judge.judge(items)
        ours = pairs / (time.perf_counter() - start)

        # bare: the same 2 answers per pair, tokenized beforehand, sorted, padded, one forward each
        encoded = [scorer.encode(answer_chat(p, a)) for p, x, y in items for a in (x, y)]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        pad = scorer.tokenizer.pad_token_id
        start = time.perf_counter()
        with torch.inference_mode():
            for s in range(0, len(order), batch_size):
                idx = order[s : s + batch_size]
                width = max(len(encoded[i]) for i in idx)
                ids = torch.full((len(idx), width), pad)
                mask = torch.zeros_like(ids)
                for r, i in enumerate(idx):
                    ids[r, : len(encoded[i])] = torch.tensor(encoded[i])
                    mask[r, : len(encoded[i])] = 1
                scorer.model(input_ids=ids, attention_mask=mask).logits[:, 0].tolist()
        bare = pairs / (time.perf_counter() - start)
    print(f"rm judge: {ours:.2f} pairs/s; bare batched forwards: {bare:.2f} pairs/s; "
          f"ratio {ours / bare:.2f}x (goal >= 0.8x)")

    lm = LocalModel(None, batch_size=batch_size).load()
    members = [LogitsJudge(lm, model_label=f"judge-{k}") for k in range(3)]
    members[0].judge(items[:batch_size])  # warm-up
    start = time.perf_counter()
    for m in members:
        m.judge(items)
    sequential = pairs / (time.perf_counter() - start)
    start = time.perf_counter()
    PanelJudge(members, "mean").judge(items)
    panel = pairs / (time.perf_counter() - start)
    print(f"three-judge panel: {panel:.2f} pairs/s; the three judges one after another: "
          f"{sequential:.2f} pairs/s; ratio {panel / sequential:.2f}x (goal >= 0.95x)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
