"""Loading a causal LM and its tokenizer for generation and scoring (CPU, eval mode)."""

from __future__ import annotations

from typing import Any

from selfpref import SelfprefError
from selfpref.models.quiet import quiet_transformers
from selfpref.models.resolve import resolve_model


def load_causal_lm(name_or_path: str | None, dtype: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) on the CPU in eval mode, tokenizer padded on the left for generation."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ref = resolve_model(name_or_path)
    quiet_transformers()
    try:
        tokenizer = AutoTokenizer.from_pretrained(ref)
        model = AutoModelForCausalLM.from_pretrained(ref, dtype=dtype or torch.float32)
    except OSError as exc:
        raise SelfprefError(
            f"could not load model {ref!r}: {str(exc).splitlines()[0]} "
            "(offline? pass a local folder or omit --model for the embedded default)"
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model.eval()
    return model, tokenizer
