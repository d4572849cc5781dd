"""Batched generation with transformers on the CPU (the models layer's backend).

distilabel's TransformersLLM generates one instruction at a time; batching with left padding is
what makes a small model usable on a CPU (18 vs 11 new tokens/s for SmolLM2 at batch 8).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from selfpref.models.padding import pad

Message = dict[str, str]
_MASK = 2**63 - 1


def sample_seed(seed: int, index: int) -> int:
    """The seed of sample ``index`` of a conversation whose seed is ``seed``."""
    return (int(seed) * 1_000_003 + index + 1) & _MASK


_BLOCKS = 256


def per_row_sampler(generators: Sequence[Any], temperature: float, top_p: float) -> Any:
    """A logits processor that draws every row's next token from that row's own generator.

    transformers samples a whole batch from one random stream, so a row's answer would depend on
    which rows share its batch (and so on chunk and batch size). Here each row draws from its own
    ``torch.Generator`` (seeded from the row's content), with temperature and the top-p nucleus
    applied first (no top-k, as vLLM's defaults). The draw is Gumbel-max in two levels: a block
    of the vocabulary by its probability mass, then a token inside the block; an exact sample
    from the distribution, with ~450 random numbers per row and step instead of one per token.
    Gumbel-max rather than an inverse-CDF draw because its choice only flips when two perturbed
    scores are within float rounding, so the last-bit differences a padded batch makes in the
    logits do not change the answer. Only the drawn token is left finite; the sampling step
    that follows has a single choice.
    """
    import torch

    def gumbel(n: int) -> Any:
        uniform = torch.stack([torch.rand(n, generator=g) for g in generators]).clamp_(min=1e-20)
        return -torch.log(-torch.log(uniform))

    def process(input_ids: Any, scores: Any) -> Any:
        logits = scores.float() / max(temperature, 1e-6)
        if top_p < 1.0:
            probs = torch.softmax(logits, dim=-1)
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            outside = sorted_probs.cumsum(-1) - sorted_probs > top_p  # the first token always stays
            logits = logits.masked_fill(torch.zeros_like(outside).scatter_(-1, order, outside),
                                        float("-inf"))
        rows, vocab = logits.shape
        size = -(-vocab // _BLOCKS)
        blocks = torch.nn.functional.pad(logits, (0, size * _BLOCKS - vocab), value=float("-inf"))
        blocks = blocks.view(rows, _BLOCKS, size)
        noise = gumbel(_BLOCKS + size)
        block = (torch.logsumexp(blocks, dim=-1) + noise[:, :_BLOCKS]).argmax(dim=-1)
        inside = (blocks[torch.arange(rows), block] + noise[:, _BLOCKS:]).argmax(dim=-1)
        chosen = (block * size + inside).unsqueeze(-1)
        return torch.full_like(scores, float("-inf")).scatter_(-1, chosen, 0.0)

    return process


# How a conversation reaches the model: its chat template, or plain text for a base model that
# has none (AlignEZ §2.1 generates with base models; its A.5 templates are completion prompts).
PROMPT_FORMATS = ("auto", "chat", "completion")


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def resolve_prompt_format(tokenizer: Any, prompt_format: str = "auto") -> str:
    """'chat' or 'completion'; ``auto`` is chat when the tokenizer has a chat template. A
    ValueError for an unknown format, or 'chat' with a tokenizer that has no template."""
    if prompt_format not in PROMPT_FORMATS:
        raise ValueError(f"prompt format {prompt_format!r}: use one of {', '.join(PROMPT_FORMATS)}")
    if prompt_format == "auto":
        return "chat" if has_chat_template(tokenizer) else "completion"
    if prompt_format == "chat" and not has_chat_template(tokenizer):
        raise ValueError("prompt format 'chat', but the tokenizer has no chat template; use "
                         "'completion' (a base model) or 'auto'")
    return prompt_format


def completion_text(messages: Sequence[Message]) -> str:
    """A conversation as plain text: the prompt's turns separated by a blank line, an answer turn
    one space after the prompt's last words (which end in a cue such as "...should:")."""
    text = ""
    for message in messages:
        content = message["content"]
        if not text:
            text = content
        elif message.get("role") == "assistant":
            text += content if text.endswith((" ", "\n")) else " " + content
        else:
            text += "\n\n" + content
    return text


def chat_ids(tokenizer: Any, messages: Sequence[Message], *, generation_prompt: bool = False,
             prompt_format: str = "chat") -> list[int]:
    """Token ids of a conversation rendered with the model's chat template (``prompt_format``
    'chat', the default), or as plain text ('completion'; 'auto' picks by the tokenizer)."""
    if prompt_format != "chat" and resolve_prompt_format(tokenizer, prompt_format) == "completion":
        return list(tokenizer(completion_text(messages), add_special_tokens=True)["input_ids"])
    ids = tokenizer.apply_chat_template(list(messages), add_generation_prompt=generation_prompt,
                                        tokenize=True)
    if hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding
        ids = ids["input_ids"]
    return list(ids)


def chat_input_ids(tokenizer: Any, conversation: Sequence[Message], prompt_format: str = "chat") -> list[int]:
    """Token ids of a conversation with the generation prompt appended (where an answer starts)."""
    return chat_ids(tokenizer, conversation, generation_prompt=True, prompt_format=prompt_format)


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
    seeds: Sequence[int] | None = None,
    prompt_format: str = "chat",
) -> list[list[str]]:
    """For each conversation, ``num_return_sequences`` answers (plain text, special tokens removed).

    With ``seeds`` (one per conversation) every sampled answer comes from its own random stream,
    so it does not depend on the batch it was generated in; ``seed`` alone seeds the global
    stream once (answers then depend on the batching). ``prompt_format``: see `chat_ids`.
    """
    import torch
    from transformers import LogitsProcessorList

    if seeds is not None and len(seeds) != len(conversations):
        raise ValueError(f"{len(seeds)} seeds for {len(conversations)} conversations")
    if seed is not None and seeds is None:
        torch.manual_seed(seed)
    encoded = [chat_input_ids(tokenizer, conv, prompt_format) for conv in conversations]
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
        if do_sample and seeds is not None:
            generators = [torch.Generator().manual_seed(sample_seed(seeds[i], k))
                          for i in idx for k in range(num_return_sequences)]
            kwargs.update(temperature=1.0, top_p=1.0, top_k=0, logits_processor=LogitsProcessorList(
                [per_row_sampler(generators, temperature, top_p)]))
        elif do_sample:
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


def option_token_ids(tokenizer: Any, options: Sequence[str]) -> list[int]:
    """The token id each option label is scored by: the first token of its text."""
    option_ids = []
    for text in options:
        ids = tokenizer.encode(text, add_special_tokens=False)
        if not ids:
            raise ValueError(f"option {text!r} encodes to no token")
        option_ids.append(ids[0])
    return option_ids


def next_token_probabilities(model: Any, tokenizer: Any, conversations: Sequence[Sequence[Message]],
                             options: Sequence[str], *, batch_size: int = 8) -> list[list[float]]:
    """Probability of each option label as the next token, renormalised over the options.

    A forced choice: it always gives a verdict, and averaging both presentation orders cancels
    a judge's position bias. Each option is scored by the first token of its text.
    """
    import torch

    option_ids = option_token_ids(tokenizer, options)
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
