"""Log-probabilities of answers given prompts (the models layer's scoring primitive).

Batched by length under ``torch.inference_mode()``; the LM head is applied only at the answer
positions (SmolLM2's 49k-token vocabulary makes the head a large share of the cost), through
the model's own forward, so its final-logit processing is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from selfpref.models.generation import Message, chat_ids, chat_input_ids
from selfpref.models.padding import pad


def answer_token_ids(tokenizer: Any, prompt: Sequence[Message], answer: str, *,
                     prompt_format: str = "chat") -> tuple[list[int], int]:
    """(prompt + answer ids with the chat template, or as plain text, number of prompt ids)."""
    prompt_ids = chat_input_ids(tokenizer, prompt, prompt_format)
    full = chat_ids(tokenizer, list(prompt) + [{"role": "assistant", "content": answer}],
                    prompt_format=prompt_format)
    if full[: len(prompt_ids)] != prompt_ids:  # template renders the prompt differently: align
        n = 0
        while n < min(len(full), len(prompt_ids)) and full[n] == prompt_ids[n]:
            n += 1
        return full, n
    return full, len(prompt_ids)


def answer_logps(model: Any, tokenizer: Any, prompts: Sequence[Sequence[Message]],
                 answers: Sequence[str], *, batch_size: int = 8) -> tuple[list[float], list[int]]:
    """Summed log-prob of each answer's tokens given its prompt, and the answer token counts."""
    import torch

    items = [answer_token_ids(tokenizer, p, a) for p, a in zip(prompts, answers)]
    order = sorted(range(len(items)), key=lambda i: len(items[i][0]))
    sums, counts = [0.0] * len(items), [0] * len(items)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        ids, attention = pad([items[i][0] for i in idx], pad_id)
        target = torch.zeros_like(ids, dtype=torch.bool)  # positions whose *next* token is scored
        for row, i in enumerate(idx):
            full, n_prompt = items[i]
            target[row, max(n_prompt - 1, 0) : len(full) - 1] = True
        with torch.inference_mode():
            rows, cols = target.nonzero(as_tuple=True)
            logits = _logits_at(model, ids, attention, target)
            # gather - logsumexp: the 49k-wide log-softmax output is never written out
            token_logps = (logits.gather(-1, ids[rows, cols + 1].unsqueeze(-1)).squeeze(-1)
                           - torch.logsumexp(logits, dim=-1))
            per_row = torch.zeros(len(idx), dtype=torch.float64).index_add_(0, rows, token_logps.double())
        for row, i in enumerate(idx):
            sums[i] = float(per_row[row])
            counts[i] = int(target[row].sum())
    return sums, counts


def _logits_at(model: Any, ids: Any, attention: Any, target: Any) -> Any:
    """The model's own logits at the ``target`` positions, as (positions, vocab) floats.

    The forward goes through the model's head, never the bare decoder plus LM head, so whatever
    the architecture does to its final logits (Gemma-2's soft-capping, Cohere's and Granite's
    scaling) is applied. transformers' boolean ``logits_to_keep`` projects only the answer
    positions through the 49k-wide head; a model that does not take it gets a full forward.
    """
    try:
        logits = model(input_ids=ids, attention_mask=attention, logits_to_keep=target).logits
        if logits.dim() == 3 and logits.shape[0] == 1 and ids.shape[0] != 1:
            logits = logits[0]
        if logits.dim() == 2 and logits.shape[0] == int(target.sum()):
            return logits.float()
    except (TypeError, ValueError, IndexError, RuntimeError):
        pass
    return model(input_ids=ids, attention_mask=attention).logits[target].float()
