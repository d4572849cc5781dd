"""SSO trainer (SSO §2, Eq. 1-5): DPOTrainer with a collator for six sequences per example.

For each example the batch holds (x, y+), (x, y-), (x+, y+), (x+, y-), (x-, y°), (x-, y+), where
x+ / x- are the query under the good / bad principle as system prompt and y° the answer to x
alone. Only the public ``compute_loss`` is overridden; it calls the pure ``sso_loss``. Unlike
SSO's released collator, which only works at batch size 1, any batch size is correct here.
"""

from __future__ import annotations

from typing import Any

import torch
from datasets import Dataset
from trl import DPOTrainer

from selfpref.models.generation import chat_input_ids
from selfpref.models.scoring import answer_token_ids
from selfpref.models.padding import pad
from selfpref.trainers.logps import completion_logps_by_group
from selfpref.trainers.losses import SSOLogps, sso_loss

SEQUENCES = ("chosen", "rejected", "pos_chosen", "pos_rejected", "neg_original", "neg_chosen")
# (prompt key, completion key) of each of the six sequences, in SSOLogps field order.
_LAYOUT = (("prompt_ids", "chosen_ids"), ("prompt_ids", "rejected_ids"),
           ("pos_prompt_ids", "chosen_ids"), ("pos_prompt_ids", "rejected_ids"),
           ("neg_prompt_ids", "original_ids"), ("neg_prompt_ids", "chosen_ids"))


def _completion_ids(tokenizer: Any, prompt: list[dict], answer: list[dict]) -> list[int]:
    full, n_prompt = answer_token_ids(tokenizer, prompt, answer[-1]["content"])
    return full[n_prompt:]


def add_sso_token_columns(dataset: Dataset, tokenizer: Any) -> Dataset:
    """Token ids of x+, x- (with generation prompt) and of y° as a completion."""
    def tokenize(example: dict) -> dict:
        return {"pos_prompt_ids": chat_input_ids(tokenizer, example["pos_prompt"]),
                "neg_prompt_ids": chat_input_ids(tokenizer, example["neg_prompt"]),
                "original_ids": _completion_ids(tokenizer, example["prompt"], example["original"])}

    return dataset.map(tokenize, desc="Tokenizing SSO contexts")


class SSOCollator:
    """Pads the six sequences of each example into one batch of 6*B rows (sequence-major)."""

    def __init__(self, pad_token_id: int, max_length: int | None = None) -> None:
        self.pad_token_id, self.max_length = pad_token_id, max_length

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        ids, masks = [], []
        for prompt_key, completion_key in _LAYOUT:
            for ex in examples:
                seq = list(ex[prompt_key]) + list(ex[completion_key])
                mask = [0] * len(ex[prompt_key]) + [1] * len(ex[completion_key])
                if self.max_length is not None:
                    seq, mask = seq[: self.max_length], mask[: self.max_length]
                ids.append(seq)
                masks.append(mask)
        input_ids, attention_mask = pad(ids, self.pad_token_id)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask,
                 "completion_mask": pad(masks, 0)[0]}
        if "ref_sso_logps" in examples[0]:
            batch["ref_sso_logps"] = torch.tensor([ex["ref_sso_logps"] for ex in examples])
        return batch


def _split(avg: torch.Tensor) -> SSOLogps:
    return SSOLogps(*avg.view(len(SEQUENCES), -1).unbind(0))


class SSOTrainer(DPOTrainer):
    """DPOTrainer whose loss is SSO's; ``args`` is an ``SSOConfig``."""

    def __init__(self, model: Any, ref_model: Any, args: Any, train_dataset: Dataset,
                 processing_class: Any, **kwargs: Any) -> None:
        train_dataset = add_sso_token_columns(train_dataset, processing_class)
        precompute = args.precompute_ref_log_probs
        args.precompute_ref_log_probs = False  # DPO's precompute knows two sequences, not six
        collator = SSOCollator(processing_class.pad_token_id, args.max_length)
        super().__init__(model, ref_model, args=args, data_collator=collator,
                         train_dataset=train_dataset, processing_class=processing_class, **kwargs)
        if precompute:
            self.train_dataset = self.precompute_reference(self.train_dataset)

    def _reference_logps(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return completion_logps_by_group(self.ref_model, inputs["input_ids"], inputs["attention_mask"],
                                             inputs["completion_mask"], groups=len(SEQUENCES), average=True)

    def precompute_reference(self, dataset: Dataset, batch_size: int = 8) -> Dataset:
        """Reference log-probs of all six sequences once, so training needs no reference forward."""
        rows = []
        for start in range(0, len(dataset), batch_size):
            batch = self.data_collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            avg = self._reference_logps(batch).view(len(SEQUENCES), -1)
            rows += avg.T.tolist()
        return dataset.add_column("ref_sso_logps", rows)

    def compute_loss(self, model: Any, inputs: dict[str, torch.Tensor], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        mode = "train" if self.model.training else "eval"
        policy = _split(completion_logps_by_group(model, inputs["input_ids"], inputs["attention_mask"],
                                                  inputs["completion_mask"], groups=len(SEQUENCES),
                                                  average=True))
        if "ref_sso_logps" in inputs:
            reference = SSOLogps(*inputs["ref_sso_logps"].to(policy.chosen.dtype).T.unbind(0))
        else:
            reference = _split(self._reference_logps(inputs))
        args = self.args
        losses = sso_loss(policy, reference, beta=args.beta, alpha=args.sso_alpha,
                          theta=args.sso_theta, base=args.sso_base, weight_scope=args.sso_weight_scope)
        w = torch.sigmoid(-(args.sso_alpha * policy.chosen + (1 - args.sso_alpha) * policy.rejected))
        margin = (policy.chosen - reference.chosen) - (policy.rejected - reference.rejected)
        self._metrics[mode]["sso/weight"].append(w.mean().item())
        self._metrics[mode]["rewards/margins"].append(margin.mean().item())
        self._metrics[mode]["rewards/accuracies"].append((margin > 0).float().mean().item())
        loss = losses.mean()
        return (loss, {}) if return_outputs else loss
