"""SSO trainer (SSO §2, Eq. 1-6): DPOTrainer with a collator for SSO's sequences.

Per example the batch holds, kind by kind, the sequences the configured loss needs: (x, y+) and
(x, y-) always; (x+, y+), (x+, y-), (x-, y°), (x-, y+) for G (none with theta 0, SSO Table 12's
'w/o G'); and (x+, y°) with (x-, y°) for W' (Eq. 6). x+ / x- are the query under the good / bad
principle as system prompt, y° the answer to x alone. Only the public ``compute_loss`` is
overridden; it calls the pure ``sso_loss``. Unlike SSO's released collator, which only works at
batch size 1, any batch size is correct here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from datasets import Dataset
from trl import DPOTrainer

from selfpref.models.generation import chat_ids
from selfpref.models.padding import pad
from selfpref.trainers.data import completion_ids
from selfpref.trainers.logps import completion_logps_by_group
from selfpref.trainers.losses import SSOLogps, sso_loss, sso_weight

if TYPE_CHECKING:
    from selfpref.trainers.configs import SSOConfig

# kind (an SSOLogps field) -> (prompt column, completion column)
SEQUENCES = {
    "chosen": ("prompt_ids", "chosen_ids"),
    "rejected": ("prompt_ids", "rejected_ids"),
    "pos_chosen": ("pos_prompt_ids", "chosen_ids"),
    "pos_rejected": ("pos_prompt_ids", "rejected_ids"),
    "neg_original": ("neg_prompt_ids", "original_ids"),
    "neg_chosen": ("neg_prompt_ids", "chosen_ids"),
    "pos_original": ("pos_prompt_ids", "original_ids"),
}
STEERING = ("pos_chosen", "pos_rejected", "neg_original", "neg_chosen")  # G's four (Eq. 3)


def sequence_kinds(theta: float, weight: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(kinds the policy scores, kinds the reference scores); the reference's come first.

    The reference scores L_base's and G's sequences; W' (Eq. 6) is the policy's alone, so its
    (x+, y°) costs one more policy sequence per example and no reference forward.
    """
    reference = ("chosen", "rejected") + (STEERING if theta != 0 else ())
    extra = ("pos_original", "neg_original") if weight == "eq6" else ()
    return reference + tuple(k for k in extra if k not in reference), reference


def add_sso_token_columns(dataset: Dataset, tokenizer: Any) -> Dataset:
    """Token ids of x+, x- (with generation prompt) and of y° as a completion."""
    def tokenize(example: dict) -> dict:
        return {"pos_prompt_ids": chat_ids(tokenizer, example["pos_prompt"], generation_prompt=True),
                "neg_prompt_ids": chat_ids(tokenizer, example["neg_prompt"], generation_prompt=True),
                "original_ids": completion_ids(tokenizer, example["prompt"], example["original"])}

    return dataset.map(tokenize, desc="Tokenizing SSO contexts")


class SSOCollator:
    """Pads each example's sequences into one batch of len(kinds)*B rows (kind-major)."""

    def __init__(self, pad_token_id: int, max_length: int | None = None,
                 kinds: tuple[str, ...] = tuple(SEQUENCES)[:6]) -> None:
        self.pad_token_id, self.max_length, self.kinds = pad_token_id, max_length, kinds

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        ids, masks = [], []
        for kind in self.kinds:
            prompt_key, completion_key = SEQUENCES[kind]
            for ex in examples:
                seq = list(ex[prompt_key]) + list(ex[completion_key])
                mask = [0] * len(ex[prompt_key]) + [1] * len(ex[completion_key])
                if self.max_length is not None:
                    seq, mask = seq[: self.max_length], mask[: self.max_length]
                if not any(mask):  # its average log-prob would be exactly 0
                    raise ValueError(
                        f"an SSO sequence ({kind}) has no answer tokens left after truncation to "
                        f"max_length={self.max_length}: raise max_length, or drop such rows first "
                        "(selfpref.trainers.data.drop_untrainable, as `selfpref train` does)")
                ids.append(seq)
                masks.append(mask)
        input_ids, attention_mask = pad(ids, self.pad_token_id)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask,
                 "completion_mask": pad(masks, 0)[0]}
        if "ref_sso_logps" in examples[0]:
            batch["ref_sso_logps"] = torch.tensor([ex["ref_sso_logps"] for ex in examples])
        return batch


def _by_kind(values: torch.Tensor, kinds: tuple[str, ...]) -> SSOLogps:
    return SSOLogps(**dict(zip(kinds, values.view(len(kinds), -1).unbind(0))))


class SSOTrainer(DPOTrainer):
    """DPOTrainer whose loss is SSO's; ``args`` is an ``SSOConfig``."""

    # TRL types these TrainingArguments and Optional; Trainer.__init__ sets them, to this config.
    args: SSOConfig
    model: torch.nn.Module

    def __init__(self, model: Any, ref_model: Any, args: Any, train_dataset: Dataset,
                 processing_class: Any, **kwargs: Any) -> None:
        train_dataset = add_sso_token_columns(train_dataset, processing_class)
        self.kinds, self.ref_kinds = sequence_kinds(args.sso_theta, args.sso_weight)
        precompute = args.precompute_ref_log_probs
        args.precompute_ref_log_probs = False  # DPO's precompute knows two sequences, not SSO's
        collator = SSOCollator(processing_class.pad_token_id, args.max_length, self.kinds)
        super().__init__(model, ref_model, args=args, data_collator=collator,
                         train_dataset=train_dataset, processing_class=processing_class, **kwargs)
        args.precompute_ref_log_probs = precompute  # as asked, for the run's record
        if precompute:
            self.train_dataset = self.precompute_reference(self.train_dataset)

    def _reference_logps(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Summed reference log-probs of the reference kinds (the batch's first groups)."""
        rows = len(self.ref_kinds) * (inputs["input_ids"].size(0) // len(self.kinds))
        with torch.no_grad():
            sums, _ = completion_logps_by_group(
                self.ref_model, inputs["input_ids"][:rows], inputs["attention_mask"][:rows],
                inputs["completion_mask"][:rows], groups=len(self.ref_kinds))
        return sums

    def precompute_reference(self, dataset: Dataset, batch_size: int = 8) -> Dataset:
        """Reference log-probs of every reference sequence once: training needs no reference forward."""
        device = self.accelerator.device  # where the prepared reference model lives
        rows = []
        for start in range(0, len(dataset), batch_size):
            batch = self.data_collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            batch = {k: v.to(device) for k, v in batch.items()}
            sums = self._reference_logps(batch).view(len(self.ref_kinds), -1)
            rows += sums.T.cpu().tolist()
        return dataset.add_column("ref_sso_logps", rows)

    def compute_loss(self, model: Any, inputs: dict[str, torch.Tensor], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        mode = "train" if self.model.training else "eval"
        sums, counts = completion_logps_by_group(model, inputs["input_ids"], inputs["attention_mask"],
                                                 inputs["completion_mask"], groups=len(self.kinds))
        policy, lengths = _by_kind(sums, self.kinds), _by_kind(counts, self.kinds)
        if "ref_sso_logps" in inputs:
            ref = inputs["ref_sso_logps"].to(sums.dtype).T.reshape(-1)
        else:
            ref = self._reference_logps(inputs)
        reference = _by_kind(ref, self.ref_kinds)
        args = self.args
        losses = sso_loss(policy, reference, lengths, beta=args.beta, alpha=args.sso_alpha,
                          theta=args.sso_theta, base=args.sso_base, weight=args.sso_weight,
                          weight_scope=args.sso_weight_scope)
        w = sso_weight(policy, lengths, alpha=args.sso_alpha, weight=args.sso_weight)
        margin = (policy.chosen - reference.chosen) - (policy.rejected - reference.rejected)
        self._metrics[mode]["sso/weight"].append(w.mean().item())
        self._metrics[mode]["rewards/margins"].append(margin.mean().item())
        self._metrics[mode]["rewards/accuracies"].append((margin > 0).float().mean().item())
        loss = losses.mean()
        return (loss, {}) if return_outputs else loss
