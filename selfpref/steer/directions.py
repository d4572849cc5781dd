"""AlignEZ §2.2 and A.4: preference directions per layer from a dataset, and the layers to edit.

Phi_l(p) is the MLP output of layer l mean-pooled over the answer tokens of p (the prompt is
given with the chat template, or as plain text for a base model without one). H_l^help stacks Phi_l of the
chosen answers, H_l^harm of the rejected; theta_l is the first right-singular vector of each.
Layers are scored with the CCS loss (Burns et al. 2022) of a probe on the (help, harm) pairs,
as the paper does (measured on held-out folds), and chosen by the A.4 running-mean heuristic (`select_layers`: selfpref's rule by default,
the pseudocode's indices on request).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from selfpref.data.atomic import atomic_path
from selfpref.models.generation import Message
from selfpref.models.padding import pad
from selfpref.models.scoring import answer_token_ids
from selfpref.steer.edit import decoder_layers


@dataclasses.dataclass
class Directions:
    theta_help: Any  # [num_layers, hidden] float32 tensor
    theta_harm: Any
    scores: Any  # [num_layers]: CCS loss per layer, lower is better
    layers: list[int]  # the layers the edit is applied to
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Write a .safetensors file atomically (temp name, fsync, then rename)."""
        import torch
        from safetensors.torch import save_file

        path = Path(path)
        tensors = {"theta_help": self.theta_help.float().contiguous(),
                   "theta_harm": self.theta_harm.float().contiguous(),
                   "scores": torch.as_tensor(self.scores, dtype=torch.float32),
                   "layers": torch.tensor(self.layers, dtype=torch.int64)}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"selfpref": json.dumps(self.metadata, default=str)})
        return path

    @classmethod
    def load(cls, path: str | Path) -> Directions:
        """Read a directions file; a missing, corrupt or inconsistent one is a ValueError saying which."""
        from safetensors import safe_open

        fix = "write one with `selfpref steer fit`"
        if not Path(path).is_file():
            raise ValueError(f"no such file; {fix}")
        try:
            with safe_open(str(path), framework="pt") as fh:
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}
                meta = json.loads((fh.metadata() or {}).get("selfpref", "{}"))
        except Exception as exc:  # noqa: BLE001  (safetensors' own error type, OSError, JSON)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ValueError(f"not a readable .safetensors file ({first}); {fix}") from None
        missing = {"theta_help", "theta_harm", "scores", "layers"} - set(tensors)
        if missing:
            raise ValueError(f"not a selfpref directions file (no {', '.join(sorted(missing))}); {fix}")
        help_, harm, scores, layers = (tensors[k] for k in ("theta_help", "theta_harm", "scores", "layers"))
        if (help_.dim() != 2 or harm.shape != help_.shape or scores.dim() != 1
                or scores.shape[0] != help_.shape[0] or layers.dim() != 1):
            raise ValueError(f"inconsistent directions (theta_help {tuple(help_.shape)}, theta_harm "
                             f"{tuple(harm.shape)}, scores {tuple(scores.shape)}); {fix}")
        chosen = [int(i) for i in layers.tolist()]
        if any(not 0 <= i < help_.shape[0] for i in chosen):
            raise ValueError(f"chosen layers {chosen} outside 0..{help_.shape[0] - 1}; {fix}")
        return cls(help_, harm, scores, chosen, meta if isinstance(meta, dict) else {})


def mlp_outputs(model: Any, tokenizer: Any, prompts: Sequence[Sequence[Message]],
                answers: Sequence[str], *, batch_size: int = 8, prompt_format: str = "chat") -> Any:
    """[N, num_layers, hidden]: each layer's MLP output mean-pooled over each answer's tokens
    (the prompt rendered with the chat template, or as plain text: ``prompt_format``)."""
    import torch

    blocks = decoder_layers(model)
    items = [answer_token_ids(tokenizer, p, a, prompt_format=prompt_format)
             for p, a in zip(prompts, answers)]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    pooled = torch.zeros(len(items), len(blocks), model.config.hidden_size)
    captured: dict[int, Any] = {}
    handles = [block.mlp.register_forward_hook(
        lambda _m, _i, out, index=index: captured.__setitem__(index, out)) for index, block in enumerate(blocks)]
    try:
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            ids, attention = pad([full for full, _ in batch], pad_id)
            answer_mask = torch.zeros(ids.shape)
            for row, (full, n_prompt) in enumerate(batch):
                answer_mask[row, n_prompt : len(full)] = 1.0
            weights = answer_mask / answer_mask.sum(1, keepdim=True).clamp(min=1.0)
            with torch.inference_mode():
                model(input_ids=ids, attention_mask=attention, logits_to_keep=1)
                for index in range(len(blocks)):
                    out = captured[index].float()
                    pooled[start : start + len(batch), index] = torch.einsum("bt,btd->bd", weights, out)
    finally:
        for handle in handles:
            handle.remove()
    return pooled


def first_right_singular_vectors(embeddings: Any) -> Any:
    """[num_layers, hidden]: V[0] of the SVD of each layer's [N, hidden] matrix (AlignEZ §2.2)."""
    import torch

    _, _, vh = torch.linalg.svd(embeddings.transpose(0, 1).double(), full_matrices=False)
    return vh[:, 0, :].float()


def _ccs_probe(train_pos: Any, train_neg: Any, test_pos: Any, test_neg: Any, *, restarts: int,
               steps: int, lr: float, weight_decay: float, generator: Any) -> Any:
    """[num_layers]: held-out CCS loss of the restart with the lowest training loss per layer."""
    import torch

    def stats(x: Any) -> tuple[Any, Any]:
        return x.mean(0), x.std(0, unbiased=False) + 1e-6

    (mp, sp), (mn, sn) = stats(train_pos), stats(train_neg)  # normalise each side (CCS §3)
    sides = [((train_pos - mp) / sp, (train_neg - mn) / sn), ((test_pos - mp) / sp, (test_neg - mn) / sn)]
    layers, hidden = train_pos.shape[1], train_pos.shape[2]
    w = (torch.randn(restarts, layers, hidden, generator=generator, dtype=torch.float64)
         / hidden ** 0.5).requires_grad_()
    b = torch.zeros(restarts, layers, 1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.AdamW([w, b], lr=lr, weight_decay=weight_decay)

    def loss(pos: Any, neg: Any) -> Any:
        p_pos = torch.sigmoid(torch.einsum("nld,rld->rln", pos, w) + b)
        p_neg = torch.sigmoid(torch.einsum("nld,rld->rln", neg, w) + b)
        return ((p_pos - (1 - p_neg)) ** 2 + torch.minimum(p_pos, p_neg) ** 2).mean(-1)

    for _ in range(steps):
        optimizer.zero_grad()
        loss(*sides[0]).sum().backward()
        optimizer.step()
    with torch.no_grad():
        best = loss(*sides[0]).argmin(0)  # [layers]: chosen on training data only
        return loss(*sides[1]).gather(0, best.unsqueeze(0)).squeeze(0)


def ccs_losses(help_: Any, harm: Any, *, folds: int | None = None, restarts: int = 5,
               steps: int = 300, lr: float = 1e-2, weight_decay: float = 0.01, seed: int = 0) -> Any:
    """[num_layers]: the CCS loss of a linear probe per layer, on held-out pairs (lower is better).

    CCS (Burns et al. 2022): each side normalised (mean 0, unit std per dimension), a probe
    p(x) = sigmoid(w.x + b); loss = mean_i (p(x+_i) - (1 - p(x-_i)))^2 + min(p(x+_i), p(x-_i))^2.
    With a few dozen pairs and hundreds of dimensions every layer reaches a training loss of
    zero, so the loss is measured on held-out folds (default: up to 5, two pairs at least per
    fold); with fewer than 4 pairs it is the training loss. All layers and restarts train at once.
    """
    import torch

    pos, neg = help_.double(), harm.double()
    n = pos.shape[0]
    generator = torch.Generator().manual_seed(seed)
    k = min(5, n // 2) if folds is None else folds
    options: dict[str, Any] = dict(restarts=restarts, steps=steps, lr=lr, weight_decay=weight_decay,
                                   generator=generator)
    if k < 2:
        return _ccs_probe(pos, neg, pos, neg, **options).float()
    order = torch.randperm(n, generator=generator)
    total = torch.zeros(pos.shape[1], dtype=torch.float64)
    for test in order.chunk(k):
        train = order[~torch.isin(order, test)]
        total += _ccs_probe(pos[train], neg[train], pos[test], neg[test], **options) * len(test)
    return (total / n).float()


LAYER_RULES = ("running-mean", "a4-pseudocode")


def select_layers(losses: Sequence[float], rule: str = "running-mean") -> list[int]:
    """AlignEZ A.4: sort layers by loss; keep those before the largest rise of the running mean.

    With L the losses sorted ascending and m_k = mean(L[:k]) the running mean of the k best:

    - ``running-mean`` (selfpref's default): m_k for k = 1..n; j = argmax_j (m_{j+2} - m_{j+1})
      (0-based: the (j+2)-th layer raises the mean most); keep the j+1 layers before it.
    - ``a4-pseudocode``: the pseudocode's own indices: m_k for k = 1..n-1 only (``range(1,
      len)``: the full set's mean is never considered) and ``[:stop_edit_idx]``, the j layers
      before the best one of the rise, one fewer. Only its two evident slips are repaired:
      ``layers_loss_sorted[sorted_idx[:i]]`` indexes the sorted array twice (read as the i best
      losses) and it returns losses, not layer indices. It edits **no layer** when the largest
      rise comes with the second layer (j = 0), and needs 3 layers or more.

    The default keeps at least the best layer; docs/papers/alignez-notes.md says why it differs.
    """
    if rule not in LAYER_RULES:
        raise ValueError(f"unknown layer rule {rule!r}: use one of {', '.join(LAYER_RULES)}")
    values = np.asarray(losses, dtype=float)
    order = np.argsort(values, kind="stable")
    n = len(order)
    if rule == "a4-pseudocode":
        if n < 3:  # np.argmax of an empty diff raises in the pseudocode
            return []
        running = np.cumsum(values[order])[: n - 1] / np.arange(1, n)
        return sorted(int(i) for i in order[: int(np.argmax(np.diff(running)))])
    if n < 3:
        return sorted(int(i) for i in order[:1])
    running = np.cumsum(values[order]) / np.arange(1, n + 1)
    stop = int(np.argmax(np.diff(running)))  # adding sorted layer stop+1 raises the mean most
    return sorted(int(i) for i in order[: stop + 1])


def fit_directions(model: Any, tokenizer: Any, prompts: Sequence[Sequence[Message]],
                   chosen: Sequence[str], rejected: Sequence[str], *, batch_size: int = 8,
                   max_layers: int | None = None, layer_rule: str = "running-mean",
                   prompt_format: str = "chat",
                   notify: Callable[[str], None] | None = None) -> Directions:
    """Directions, CCS scores and chosen layers from (prompt, chosen, rejected) triples."""
    if len(chosen) < 2:
        raise ValueError(f"steer fit needs at least 2 pairs, got {len(chosen)}")
    say = notify or (lambda _msg: None)
    say(f"embedding {len(chosen)} chosen and {len(rejected)} rejected answers at every layer")
    help_ = mlp_outputs(model, tokenizer, prompts, chosen, batch_size=batch_size,
                        prompt_format=prompt_format)
    harm = mlp_outputs(model, tokenizer, prompts, rejected, batch_size=batch_size,
                       prompt_format=prompt_format)
    say("fitting a CCS probe per layer")
    scores = ccs_losses(help_, harm)
    layers = select_layers(scores.tolist(), layer_rule)
    if max_layers:  # selfpref's cap, not the paper's: see README (small models break under many edits)
        layers = sorted(sorted(layers, key=lambda i: float(scores[i]))[:max_layers])
    return Directions(first_right_singular_vectors(help_), first_right_singular_vectors(harm),
                      scores, layers, {"pairs": len(chosen), "score": "ccs (held-out folds)",
                                       "hidden_size": help_.shape[2], "max_layers": max_layers,
                                      "layer_rule": layer_rule})
