"""Shared fixtures: an offline environment, the embedded model, and a tiny random Llama."""

from __future__ import annotations

import os
from pathlib import Path

# Before any Hugging Face library is imported: no network, a cache inside the checkout.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("SELFPREF_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "selfpref"))

import pytest


@pytest.fixture(scope="session")
def default_model_path() -> Path:
    from selfpref.models import default_model

    return default_model()


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory, default_model_path) -> Path:
    """A 2-layer Llama with hidden size 32 and the SmolLM2 tokenizer and chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(default_model_path)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=2048, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def make_rows(n: int = 6, method: str = "sao", **extra_cols):
    from selfpref.data.schema import make_row

    rows = []
    for i in range(n):
        rows.append(make_row(f"Question number {i}?", f"A good, detailed answer {i}." + " more" * i,
                             f"Bad {i}.", method=method, generator="tiny", labeler="human",
                             confidence=(i + 1) / (n + 1),
                             **{k: v[i] for k, v in extra_cols.items()}))
    return rows


@pytest.fixture
def rows():
    return make_rows()
