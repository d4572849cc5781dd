"""SimPO and ORPO over TRL's CPO and ORPO trainers, with one end-of-turn per answer.

TRL's ``CPOTrainer`` / ``ORPOTrainer.tokenize_row`` append the tokenizer's EOS unless the answer's
last token already is EOS. A ChatML template (SmolLM2, Qwen) ends the assistant turn with
``<|im_end|>\\n``, so the answer trained on ended ``<|im_end|>\\n<|im_end|>``: a second end-of-turn the
model never generates, and one more token in SimPO's length normalisation. The public
``tokenize_row`` is overridden to take that appended EOS off again when the template already
closed the turn with that token. Every selfpref trainer then trains on the answer exactly as
the chat template renders its turn, as TRL's DPOTrainer and RewardTrainer tokenize it: the
template's trailing ``\\n`` after ``<|im_end|>`` stays (it is part of the rendered turn, and the
log-probs selfpref's pipelines score, e.g. SELFEE's labels, include it too).
"""

from __future__ import annotations

from typing import Any

from trl.experimental.cpo import CPOTrainer
from trl.experimental.orpo import ORPOTrainer as TRLORPOTrainer


class TemplateTurnEnd:
    """Mixin for TRL trainers with ``tokenize_row``: no EOS after a turn the template closed.

    The EOS is only taken off when it was appended (the answer is one token longer than the
    template renders it) and the rendered answer already holds that EOS. With a template that
    does not close the turn with the tokenizer's EOS (no end token, or Gemma's <end_of_turn>
    with EOS <eos>), TRL's appended EOS stays: the model must still learn to stop.
    """

    def tokenize_row(self, feature: dict[str, Any], model: Any = None) -> dict:
        batch = super().tokenize_row(feature, model)  # type: ignore[misc]
        if self.is_encoder_decoder:  # type: ignore[attr-defined]
            return batch
        eos = self.processing_class.eos_token_id  # type: ignore[attr-defined]
        for side in ("chosen", "rejected"):
            rendered = self.build_tokenized_answer(feature["prompt"], feature[side])["input_ids"]  # type: ignore[attr-defined]
            answer = sum(1 for label in batch[f"{side}_labels"] if label != -100)
            if answer == len(rendered) + 1 and eos in rendered and batch[f"{side}_input_ids"][-1] == eos:
                for key in ("input_ids", "attention_mask", "labels"):
                    batch[f"{side}_{key}"] = batch[f"{side}_{key}"][:-1]
        return batch


class SimPOTrainer(TemplateTurnEnd, CPOTrainer):
    """TRL's CPOTrainer (``loss_type: simpo``) with one end-of-turn per answer."""


class ORPOTrainer(TemplateTurnEnd, TRLORPOTrainer):
    """TRL's ORPOTrainer with one end-of-turn per answer."""
