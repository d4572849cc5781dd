"""Pairs/s of the SELFEE labelling step's scorer vs scoring one sequence at a time with a full
log-softmax, and vs the bare batched forward passes (no scoring), on the embedded model.

Goals: >= 2x the one-at-a-time scorer, and within 25% of the bare batched forward passes.

    python bench/labels.py [pairs] [batch_size]
"""

from __future__ import annotations

import sys
import time

import torch


def main(pairs: int = 16, batch_size: int = 8) -> None:
    from selfpref.models import load_causal_lm
    from selfpref.models.scoring import answer_logps, answer_token_ids

    model, tok = load_causal_lm(None)
    prompts = [[{"role": "user", "content": f"Explain idea number {i} in a few sentences."}]
               for i in range(pairs)] * 2
    answers = [("This is a moderately long answer that explains the idea with some detail "
                f"and an example, number {i}. ") * 3 for i in range(2 * pairs)]

    # warm-up: the first forward pays for thread pools and allocator growth; time none of it
    answer_logps(model, tok, prompts[:batch_size], answers[:batch_size], batch_size=batch_size)
    start = time.perf_counter()
    answer_logps(model, tok, prompts, answers, batch_size=batch_size)
    ours = pairs / (time.perf_counter() - start)

    start = time.perf_counter()
    for p, a in zip(prompts, answers):
        full, n_prompt = answer_token_ids(tok, p, a)
        ids = torch.tensor([full])
        with torch.inference_mode():
            logp = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
        sum(logp[t - 1, full[t]].item() for t in range(n_prompt, len(full)))
    naive = pairs / (time.perf_counter() - start)

    items = [answer_token_ids(tok, p, a)[0] for p, a in zip(prompts, answers)]
    order = sorted(range(len(items)), key=lambda i: len(items[i]))
    decoder = model.get_decoder()
    start = time.perf_counter()
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        longest = max(len(items[i]) for i in idx)
        ids = torch.full((len(idx), longest), tok.pad_token_id)
        mask = torch.zeros_like(ids)
        for r, i in enumerate(idx):
            ids[r, : len(items[i])] = torch.tensor(items[i])
            mask[r, : len(items[i])] = 1
        with torch.inference_mode():
            decoder(input_ids=ids, attention_mask=mask)
    bare = pairs / (time.perf_counter() - start)
    print(f"labelling scorer: {ours:.2f} pairs/s; one at a time, full log-softmax: {naive:.2f}; "
          f"bare batched forward: {bare:.2f}")
    print(f"scorer / one-at-a-time: {ours / naive:.2f}x (goal >= 2)")
    print(f"scorer / bare forward: {ours / bare:.2f} (goal >= 0.75)")


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
