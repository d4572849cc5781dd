"""SimPO and ORPO trainers: TRL's stable DPOTrainer, with no reference model and selfpref's losses.

Both methods are reference-free. DPOTrainer keeps no reference model when the reference
log-probs are precomputed, so these trainers ask for precomputation while DPOTrainer is built
and answer its public ``compute_ref_log_probs`` with zeros, without a forward pass: no reference
model is loaded, kept or run. (What precomputation still costs is small next to training: one
hash of the policy's weights and one pass of the collator over the dataset, to cache the zeros.)

Everything else is DPOTrainer's: the tokenization (the answer exactly as the chat template
renders its turn, one end-of-turn), the collator and truncation, the fused LM head, PEFT,
logging. Only the public ``compute_loss`` is overridden; it calls the pure ``simpo_loss`` /
``orpo_loss``, as the SSO and SELFEE trainers call theirs. Nothing here imports
``trl.experimental``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from trl import DPOTrainer

from selfpref.trainers.logps import token_logps
from selfpref.trainers.losses import orpo_log_odds_ratio, orpo_loss, simpo_loss

if TYPE_CHECKING:
    from selfpref.trainers.configs import ORPOConfig, SimPOConfig


class ReferenceFreeTrainer(DPOTrainer):
    """DPOTrainer that builds and runs no reference model; subclasses define ``compute_loss``."""

    # TRL types it Optional; Trainer.__init__ always sets it.
    model: torch.nn.Module

    def __init__(self, model: Any, args: Any, train_dataset: Any, processing_class: Any,
                 **kwargs: Any) -> None:
        if kwargs.pop("ref_model", None) is not None:
            raise ValueError(f"{type(self).__name__} is reference-free: pass no ref_model")
        asked = args.precompute_ref_log_probs
        args.precompute_ref_log_probs = True  # DPOTrainer then keeps no reference model
        try:
            super().__init__(model, None, args=args, train_dataset=train_dataset,
                             processing_class=processing_class, **kwargs)
        finally:
            args.precompute_ref_log_probs = asked  # as configured, for the run's record

    def compute_ref_log_probs(self, model: Any, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """No reference: zeros for DPOTrainer's precompute, without running any model."""
        zeros = torch.zeros(inputs["input_ids"].size(0) // 2, device=inputs["input_ids"].device)
        return zeros, zeros.clone()

    def _log_pair_metrics(self, chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor,
                          chosen_logps: torch.Tensor, rejected_logps: torch.Tensor) -> None:
        mode = "train" if self.model.training else "eval"
        gather = self.accelerator.gather_for_metrics
        margin = (chosen_rewards - rejected_rewards).detach()
        self._metrics[mode]["rewards/chosen"].append(gather(chosen_rewards.detach()).mean().item())
        self._metrics[mode]["rewards/rejected"].append(gather(rejected_rewards.detach()).mean().item())
        self._metrics[mode]["rewards/margins"].append(gather(margin).mean().item())
        self._metrics[mode]["rewards/accuracies"].append(gather((margin > 0).float()).mean().item())
        self._metrics[mode]["logps/chosen"].append(gather(chosen_logps.detach()).mean().item())
        self._metrics[mode]["logps/rejected"].append(gather(rejected_logps.detach()).mean().item())


class SimPOTrainer(ReferenceFreeTrainer):
    """SimPO (SAO Eq. 5-7); ``args`` is a ``SimPOConfig`` (beta, simpo_gamma, label_smoothing)."""

    args: SimPOConfig  # TRL types it TrainingArguments

    def compute_loss(self, model: Any, inputs: dict[str, torch.Tensor], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        completion = inputs["completion_mask"]
        per_token = token_logps(model, inputs["input_ids"], inputs["attention_mask"], completion)
        sums, lengths = per_token.sum(dim=1), completion[:, 1:].to(per_token.dtype).sum(dim=1)
        (chosen, rejected), (n_chosen, n_rejected) = sums.chunk(2), lengths.chunk(2)
        args = self.args
        losses = simpo_loss(chosen, rejected, n_chosen, n_rejected, beta=args.beta,
                            gamma=args.simpo_gamma, label_smoothing=args.label_smoothing)
        avg_chosen, avg_rejected = chosen / n_chosen.clamp(min=1), rejected / n_rejected.clamp(min=1)
        self._log_pair_metrics(args.beta * avg_chosen, args.beta * avg_rejected, avg_chosen, avg_rejected)
        loss = losses.mean()
        return (loss, {}) if return_outputs else loss


class ORPOTrainer(ReferenceFreeTrainer):
    """ORPO (Hong et al. 2024, Eq. 6-7); ``args`` is an ``ORPOConfig`` (beta = lambda, orpo_prompt_loss).

    L_SFT is the mean NLL over the chosen sequences' tokens of the batch (the answer's, and the
    prompt's with ``orpo_prompt_loss``), as the authors' code and TRL's ORPOTrainer take it; L_OR
    uses each answer's average log-prob. One forward scores both.
    """

    args: ORPOConfig  # TRL types it TrainingArguments

    def compute_loss(self, model: Any, inputs: dict[str, torch.Tensor], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        completion, attention = inputs["completion_mask"], inputs["attention_mask"]
        sft_tokens = attention if self.args.orpo_prompt_loss else completion
        # score every token the NLL needs (the answer's always); the odds use the answer's only
        per_token = token_logps(model, inputs["input_ids"], attention, sft_tokens)
        answer = completion[:, 1:].to(per_token.dtype)
        avg = (per_token * answer).sum(dim=1) / answer.sum(dim=1).clamp(min=1)
        avg_chosen, avg_rejected = avg.chunk(2)
        chosen_rows = per_token.size(0) // 2
        sft = sft_tokens[:chosen_rows, 1:].to(per_token.dtype)
        nll = -(per_token[:chosen_rows] * sft).sum() / sft.sum().clamp(min=1)
        losses = orpo_loss(avg_chosen, avg_rejected, nll, lam=self.args.beta)
        mode = "train" if self.model.training else "eval"
        log_odds = orpo_log_odds_ratio(avg_chosen, avg_rejected).detach()
        gather = self.accelerator.gather_for_metrics
        self._metrics[mode]["nll_loss"].append(gather(nll.detach()).mean().item())
        self._metrics[mode]["log_odds_chosen"].append(gather(log_odds).mean().item())
        self._metrics[mode]["log_odds_ratio"].append(
            gather(torch.nn.functional.logsigmoid(log_odds)).mean().item())
        self._log_pair_metrics(self.args.beta * avg_chosen, self.args.beta * avg_rejected,
                               avg_chosen, avg_rejected)
        loss = losses.mean()
        return (loss, {}) if return_outputs else loss
