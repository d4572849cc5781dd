"""A reward model (a sequence classifier with one output) that scores (conversation, answer) pairs.

`selfpref train rm` writes exactly this: TRL's RewardTrainer over
``AutoModelForSequenceClassification(num_labels=1)``, the conversation rendered by the tokenizer's
chat template, padded on the right, the score read at the last non-pad token (the classifier's
own pooling, through ``config.pad_token_id``). Scoring here tokenizes the same way, so a trained
folder is a judge with no conversion. A tokenizer without a chat template gets (prompt, answer)
as a text pair, which is how template-free reward models (DeBERTa-style) are scored.

Batches are cut after sorting by length (less padding), and the scores come back in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from selfpref import SelfprefError
from selfpref.models.quiet import quiet_transformers
from selfpref.models.resolve import model_label, resolve_model

Message = dict[str, str]


class RewardModel:
    """``rewards(conversations)``: one float per conversation (ending with the assistant turn)."""

    def __init__(self, ref: str | None, *, batch_size: int = 8, flag: str = "--judge-model") -> None:
        self.ref, self.batch_size, self.flag = ref, batch_size, flag
        self.label = model_label(ref)
        self.model: Any = None
        self.tokenizer: Any = None
        self.forwards = 0  # batches run, for the benchmark and tests

    def load(self) -> RewardModel:
        if self.model is not None:
            return self
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = resolve_model(self.ref, flag=self.flag)
        quiet_transformers()
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise SelfprefError(f"{self.flag} {self.ref}: could not load a reward model "
                                f"(AutoModelForSequenceClassification): {str(exc).splitlines()[0]}; "
                                "train one with `selfpref train rm` or name a reward-model folder") from None
        if int(getattr(model.config, "num_labels", 1)) != 1:
            raise SelfprefError(f"{self.flag} {self.ref}: a reward model has one output, this "
                                f"classifier has {model.config.num_labels}; use a Bradley-Terry "
                                "reward model (`selfpref train rm` writes one)")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if model.config.pad_token_id is None:  # the classifier pools at the last non-pad token
            model.config.pad_token_id = tokenizer.pad_token_id
        tokenizer.padding_side = "right"  # as TRL's RewardTrainer collates
        self.model, self.tokenizer = model.eval(), tokenizer
        return self

    def encode(self, conversation: Sequence[Message]) -> list[int]:
        """Token ids of one conversation, as `train rm` tokenized its training pairs."""
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            ids = tok.apply_chat_template(list(conversation), tokenize=True, return_dict=True)
            return list(ids["input_ids"])
        *context, answer = conversation
        prompt = "\n\n".join(m.get("content", "") for m in context)
        return list(tok(prompt, answer.get("content", ""))["input_ids"])

    def rewards(self, conversations: Sequence[Sequence[Message]]) -> list[float]:
        """The reward of each conversation's last (assistant) turn, in input order."""
        import torch

        self.load()
        encoded = [self.encode(c) for c in conversations]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        out = [0.0] * len(encoded)
        pad = self.tokenizer.pad_token_id
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                width = max(len(encoded[i]) for i in batch)
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):
                    ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
                    mask[row, : len(encoded[i])] = 1
                scores = self.model(input_ids=ids, attention_mask=mask).logits[:, 0].float()
                self.forwards += 1
                for row, i in enumerate(batch):
                    out[i] = float(scores[row])
        return out

    def close(self) -> None:
        self.model = self.tokenizer = None
