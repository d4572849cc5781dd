"""SELFEE trainer (SELFEE §4.2): DPO with self-refined labels and de-coupled noise detection.

Per pair, the confidence p(y_w > y_l | x) of the extrapolated policy (Eq. 11-12) is compared
with tau, the K-th percentile of the last ``window`` confidences (B.3); pairs below tau are
noisy and get label smoothing alpha (Eq. 10). No refinement during the warm-up share of steps.
The extrapolated logits come from the same two forward passes DPO makes (policy and reference).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import torch
from trl import DPOTrainer

from selfpref.trainers.losses import extrapolated_logps, selfee_confidence, selfee_refined_loss

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from selfpref.trainers.configs import SelfeeConfig


class NoiseDetector:
    """Marks pairs whose confidence falls below the K-th percentile of a moving window.

    Every call records its confidences in the window: call it with training pairs only.
    """

    def __init__(self, k: float = 10.0, window: int = 50) -> None:
        self.k = k
        self.recent: deque[float] = deque(maxlen=window)

    def __call__(self, confidence: torch.Tensor, active: bool) -> torch.Tensor:
        self.recent.extend(confidence.detach().flatten().tolist())
        if not active:
            return torch.zeros_like(confidence, dtype=torch.bool)
        tau = torch.quantile(torch.tensor(list(self.recent), dtype=torch.float64), self.k / 100.0)
        return confidence.detach().to(torch.float64) < tau


class SelfeeTrainer(DPOTrainer):
    """DPOTrainer whose loss is SELFEE's Eq. 10; ``args`` is a ``SelfeeConfig``."""

    # TRL types these TrainingArguments and Optional; Trainer.__init__ sets them (ref_model is
    # checked below).
    args: SelfeeConfig
    model: torch.nn.Module
    ref_model: PreTrainedModel

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.ref_model is None:
            raise ValueError("SELFEE needs a reference model (pi_ref): pass ref_model")
        self.noise = NoiseDetector(self.args.selfee_k, self.args.selfee_window)

    def _refining(self) -> bool:
        total = max(self.state.max_steps, 1)
        return self.state.global_step >= self.args.selfee_warmup * total

    def compute_loss(self, model: Any, inputs: dict[str, torch.Tensor], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        mode = "train" if self.model.training else "eval"
        ids, attention = inputs["input_ids"], inputs["attention_mask"]
        labels = ids.masked_fill(inputs["completion_mask"] == 0, -100)[:, 1:]
        logits = model(input_ids=ids, attention_mask=attention, use_cache=False).logits[:, :-1]
        with torch.no_grad():
            ref_logits = self.ref_model(input_ids=ids, attention_mask=attention,
                                        use_cache=False).logits[:, :-1]
        policy = extrapolated_logps(logits, logits, labels, 0.0)  # lam 0: the policy itself
        ref = extrapolated_logps(ref_logits, ref_logits, labels, 0.0)
        with torch.no_grad():
            extrapolated = extrapolated_logps(logits.detach(), ref_logits, labels,
                                              self.args.selfee_lambda)
        pc, pr = policy.chunk(2)
        rc, rr = ref.chunk(2)
        ec, er = extrapolated.chunk(2)
        confidence = selfee_confidence(ec, er, rc, rr, self.args.beta)
        if mode == "train":
            noisy = self.noise(confidence, active=self._refining())
        else:  # only training pairs enter the window of Eq. 9/11; evaluation is plain DPO (Eq. 6)
            noisy = torch.zeros_like(confidence, dtype=torch.bool)
        losses = selfee_refined_loss(pc, pr, rc, rr, noisy, beta=self.args.beta,
                                     alpha=self.args.selfee_alpha)
        self.last_noisy = noisy
        self.last_confidence = confidence.detach()
        margin = (pc - rc) - (pr - rr)
        self._metrics[mode]["selfee/confidence"].append(confidence.mean().item())
        self._metrics[mode]["selfee/noisy_share"].append(noisy.float().mean().item())
        self._metrics[mode]["rewards/margins"].append(margin.mean().item())
        loss = losses.mean()
        return (loss, {}) if return_outputs else loss
