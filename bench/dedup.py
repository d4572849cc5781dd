"""MinHash near-dedup: selfpref vs the naive datasketch loop vs rensa, in one run.

Corpus: documents of 100-400 random words from a fixed vocabulary; 10% of them are copies of
other documents with 1-3% of their words replaced. Ground truth: the exact 5-gram Jaccard of
every planted (copy, source) pair. Precision and recall are over copies whose true Jaccard with
their source is >= 0.8: a method "finds" a copy when it marks it as a duplicate of an earlier
document. Each method runs in its own process so its peak RSS is its own.

    python bench/dedup.py 10000 100000        # sizes; add 1000000 for the memory goal
    pip install rensa                          # for the rensa column (bench only)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
from _peak import peak_rss_mb  # bench/ is on sys.path when a bench runs

VOCAB = 20_000
NGRAM, THRESHOLD, NUM_PERM = 5, 0.8, 128
NAIVE_DOCS = 2_000  # the naive loop runs ~300 docs/s: timed on a prefix


def corpus(n: int, seed: int = 0) -> tuple[list[str], dict[int, int]]:
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(VOCAB)])
    n_copies = n // 10
    docs: list[str] = []
    originals = n - n_copies
    lengths = rng.integers(100, 401, size=originals)
    ids = [rng.integers(0, VOCAB, size=k) for k in lengths]
    for row in ids:
        docs.append(" ".join(words[row]))
    planted = {}
    sources = rng.integers(0, originals, size=n_copies)
    for _k, src in enumerate(sources):
        row = ids[src].copy()
        m = max(1, int(round(len(row) * rng.uniform(0.01, 0.03))))
        pos = rng.choice(len(row), size=m, replace=False)
        row[pos] = rng.integers(0, VOCAB, size=m)
        planted[len(docs)] = int(src)
        docs.append(" ".join(words[row]))
    order = rng.permutation(n)  # copies scattered; a copy may come before its source
    inverse = np.argsort(order)
    shuffled = [docs[i] for i in order]
    pairs = {int(inverse[c]): int(inverse[s]) for c, s in planted.items()}
    return shuffled, pairs


def shingles(text: str) -> set[str]:
    w = text.split()
    return {" ".join(w[i : i + NGRAM]) for i in range(len(w) - NGRAM + 1)}


def truth(docs: list[str], pairs: dict[int, int]) -> set[int]:
    """Documents with an earlier document of their cluster (source + copies) at Jaccard >= 0.8."""
    clusters: dict[int, list[int]] = {}
    for copy, src in pairs.items():
        clusters.setdefault(src, [src]).append(copy)
    positive = set()
    for members in clusters.values():
        members = sorted(m for m in members if m < len(docs))
        sets = {m: shingles(docs[m]) for m in members}
        for k, later in enumerate(members):
            if any(len(sets[e] & sets[later]) / len(sets[e] | sets[later]) >= THRESHOLD
                   for e in members[:k]):
                positive.add(later)
    return positive


def run_selfpref(path: str) -> np.ndarray:
    """End to end through the filter itself, streaming the texts from parquet in batches."""
    from pathlib import Path

    from selfpref.filters.minhash import MinHashDedup
    from selfpref.filters.parquet import ParquetRows

    rows = ParquetRows([Path(path)])
    dedup = MinHashDedup("prompt", threshold=THRESHOLD, ngram=NGRAM, num_perm=NUM_PERM)
    reasons = dedup.reasons(lambda: rows.batches(["prompt"]), rows.n)
    return np.array([r is not None for r in reasons])


def run_naive(docs: list[str]) -> np.ndarray:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    dup = np.zeros(len(docs), dtype=bool)
    for i, text in enumerate(docs):
        m = MinHash(num_perm=NUM_PERM)
        for s in shingles(text):
            m.update(s.encode())
        if lsh.query(m):
            dup[i] = True
        lsh.insert(i, m)
    return dup


def run_rensa(docs: list[str]) -> np.ndarray:
    from rensa import RMinHash, RMinHashLSH

    hashes = RMinHash.from_token_sets([list(shingles(t)) for t in docs], NUM_PERM, 42)
    lsh = RMinHashLSH(THRESHOLD, NUM_PERM, 16)
    dup = np.zeros(len(docs), dtype=bool)
    for i, m in enumerate(hashes):
        if any(hashes[j].jaccard(m) >= THRESHOLD for j in lsh.query(m)):
            dup[i] = True
        lsh.insert(i, m)
    return dup


def score(dup: np.ndarray, positive: set[int]) -> tuple[float, float]:
    """Keep-first dedup: a flagged document is right when an earlier one truly matches it."""
    flagged = set(np.flatnonzero(dup).tolist())
    tp = len(flagged & positive)
    return (tp / len(flagged) if flagged else 1.0), (tp / len(positive) if positive else 1.0)


def prepare(n: int) -> str:
    """Write the corpus and its ground truth once; each method's process reads them."""
    import polars as pl

    path = f"/tmp/selfpref-dedup-{n}.parquet"
    docs, pairs = corpus(n)
    pl.DataFrame({"prompt": docs}).write_parquet(path)
    positive = sorted(truth(docs, pairs))
    with open(path + ".truth.json", "w") as fh:
        json.dump(positive, fh)
    return path


def child(method: str, n: int) -> None:
    import polars as pl

    path = f"/tmp/selfpref-dedup-{n}.parquet"
    positive = set(json.load(open(path + ".truth.json")))
    import datasketch  # noqa: F401  imports are not part of the timing
    if method == "selfpref":
        import selfpref.filters.minhash  # noqa: F401
        warm = path + ".warm.parquet"  # first calls pay for lazy imports and allocator growth
        pl.read_parquet(path).head(1_000).write_parquet(warm)
        run_selfpref(warm)
        start = time.perf_counter()
        dup = run_selfpref(path)
        docs_n = len(dup)
    else:
        docs = pl.read_parquet(path)["prompt"].to_list()
        if method == "naive":
            docs = docs[:NAIVE_DOCS]
            positive = {p for p in positive if p < NAIVE_DOCS}
        if method == "rensa":
            import rensa  # noqa: F401
        (run_naive if method == "naive" else run_rensa)(docs[:50])  # warm-up, as for selfpref
        start = time.perf_counter()
        dup = (run_naive if method == "naive" else run_rensa)(docs)
        docs_n = len(docs)
    seconds = time.perf_counter() - start
    precision, recall = score(dup, positive)
    print(json.dumps({"method": method, "docs": docs_n, "docs_per_s": docs_n / seconds,
                      "precision": precision, "recall": recall,
                      "peak_rss_mb": peak_rss_mb()}))



def main(sizes: list[int]) -> None:
    results_first_naive = None
    for n in sizes:
        prepare(n)
        results = {}
        methods = ("selfpref", "rensa", "naive") if n <= 100_000 else ("selfpref",)
        for method in methods:
            if method == "naive" and results_first_naive is not None:
                results[method] = results_first_naive  # same rate: timed once on a prefix
                continue
            proc = subprocess.run([sys.executable, __file__, "--child", method, str(n)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{method} at {n}: failed: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            results[method] = json.loads(proc.stdout.strip().splitlines()[-1])
            if method == "naive":
                results_first_naive = results[method]
        print(f"\nN = {n:,}")
        for r in results.values():
            print(f"  {r['method']:9s} {r['docs_per_s']:>10,.0f} docs/s  precision {r['precision']:.3f}  "
                  f"recall {r['recall']:.3f}  peak RSS {r['peak_rss_mb']:,.0f} MB  ({r['docs']:,} docs)")
        s = results.get("selfpref")
        if s and "rensa" in results:
            print(f"  selfpref / rensa: {s['docs_per_s'] / results['rensa']['docs_per_s']:.2f}x")
        if s and "naive" in results:
            print(f"  selfpref / naive datasketch: {s['docs_per_s'] / results['naive']['docs_per_s']:.1f}x")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], int(sys.argv[3]))
    else:
        main([int(x) for x in sys.argv[1:]] or [10_000, 100_000])
