"""Batched generation with transformers on the CPU (the models layer's backend).

distilabel's TransformersLLM generates one instruction at a time; batching with left padding is
what makes a small model usable on a CPU (18 vs 11 new tokens/s for SmolLM2 at batch 8).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from selfpref.models.padding import pad

Message = dict[str, str]


def chat_ids(tokenizer: Any, messages: Sequence[Message], *, generation_prompt: bool = False) -> list[int]:
    """Token ids of a conversation rendered with the model's chat template."""
    ids = tokenizer.apply_chat_template(list(messages), add_generation_prompt=generation_prompt,
                                        tokenize=True)
    if hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding
        ids = ids["input_ids"]
    return list(ids)


def chat_input_ids(tokenizer: Any, conversation: Sequence[Message]) -> list[int]:
    """Token ids of a conversation with the generation prompt appended (where an answer starts)."""
    return chat_ids(tokenizer, conversation, generation_prompt=True)


def generate_batch(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[Sequence[Message]],
    *,
    max_new_tokens: int = 64,
    temperature: float = 0.7,
    top_p: float = 1.0,
    num_return_sequences: int = 1,
    batch_size: int = 8,
    seed: int | None = None,
) -> list[list[str]]:
    """For each conversation, ``num_return_sequences`` answers (plain text, special tokens removed)."""
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    encoded = [chat_input_ids(tokenizer, conv) for conv in conversations]
    # Sort by length so each batch pads little; results go back in input order.
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    results: list[list[str]] = [[] for _ in encoded]
    do_sample = temperature > 0
    pad_id = tokenizer.pad_token_id
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        input_ids, attention = pad([encoded[i] for i in idx], pad_id, side="left")
        longest = input_ids.shape[1]
        kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": do_sample,
                                  "num_return_sequences": num_return_sequences,
                                  "pad_token_id": pad_id}
        if do_sample:
            kwargs.update(temperature=temperature, top_p=top_p)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            out = model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
        texts = tokenizer.batch_decode(out[:, longest:], skip_special_tokens=True)
        for row, i in enumerate(idx):
            chunk = texts[row * num_return_sequences : (row + 1) * num_return_sequences]
            results[i] = [t.strip() for t in chunk]
    return results


def next_token_probabilities(model: Any, tokenizer: Any, conversations: Sequence[Sequence[Message]],
                             options: Sequence[str], *, batch_size: int = 8) -> list[list[float]]:
    """Probability of each option label as the next token, renormalised over the options.

    A forced choice: it always gives a verdict, and averaging both presentation orders cancels
    a judge's position bias. Each option is scored by the first token of its text.
    """
    import torch

    option_ids = []
    for text in options:
        ids = tokenizer.encode(text, add_special_tokens=False)
        if not ids:
            raise ValueError(f"option {text!r} encodes to no token")
        option_ids.append(ids[0])
    encoded = [chat_input_ids(tokenizer, conv) for conv in conversations]
    # Sorted by length so each batch pads little (a judge's prompts vary with the answers'
    # lengths); results go back in input order.
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out: list[list[float]] = [[] for _ in encoded]
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        input_ids, attention = pad([encoded[i] for i in idx], tokenizer.pad_token_id, side="left")
        with torch.inference_mode():
            logits = model(input_ids=input_ids, attention_mask=attention, logits_to_keep=1).logits[:, -1]
        probs = torch.softmax(logits[:, option_ids].float(), dim=-1)
        for i, row in zip(idx, probs.tolist()):
            out[i] = row
    return out
