"""MinHash near-duplicate removal, vectorised with numpy, signatures identical to datasketch's.

Words are split and hashed by polars (Rust), word n-gram shingles are combined and permuted with
numpy over whole batches: no Python object per word or shingle. Signatures use datasketch's own
permutation parameters and its default ``affine32`` scheme, so a signature here equals
``MinHash(num_perm, seed, hashfunc=identity).update_batch(shingle_hashes)`` and loads as a
``LeanMinHash``. Batch dedup bands the signature matrix, finds candidate pairs by sorting band
keys (no per-document index objects), and keeps a pair only if its signature Jaccard reaches the
threshold, so precision holds as well as recall.

Banding: b bands of r rows make a pair with Jaccard s a candidate with probability
1 - (1 - s^r)^b. With b=25, r=5 (125 of 128 permutations) that is 0.99995 at s=0.8 and 0.55 at
s=0.5; verification then removes the false candidates.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl
from datasketch import LeanMinHash, MinHash
from datasketch.minhash import _fmix

from selfpref.filters.base import Batches, Filter

_MASK32 = np.uint64(0xFFFFFFFF)
_GROUP_SHINGLES = 32_768  # shingles permuted at once: 32k x 128 x 4 bytes = 16 MB


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = MinHash(num_perm=num_perm, seed=seed).permutations
    return np.asarray(a, dtype=np.uint32), np.asarray(b, dtype=np.uint32)


def shingle_hashes(texts: pl.Series, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """(flat uint32 shingle hashes, shingles per document) for a batch of texts."""
    words = texts.fill_null("").str.to_lowercase().str.extract_all(r"\w+")
    lengths = words.list.len().to_numpy().astype(np.int64)
    flat = words.explode().drop_nulls().hash(seed=0x5E1F).to_numpy().astype(np.uint64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    counts = np.maximum(lengths - ngram + 1, np.minimum(lengths, 1))  # a short doc is one shingle
    first = np.repeat(starts, counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    last = np.minimum(first + ngram, np.repeat(starts + lengths, counts))
    h = np.zeros(len(first), dtype=np.uint64)
    if len(flat):
        for k in range(ngram):  # polynomial combine of up to n word hashes, wrapping mod 2^64
            pos = first + k
            word = flat[np.minimum(pos, len(flat) - 1)]
            h = np.where(pos < last, h * np.uint64(0x100000001B3) + word, h)
    return ((h ^ (h >> np.uint64(32))) & _MASK32).astype(np.uint32), counts


def signatures(texts: pl.Series, *, ngram: int = 5, num_perm: int = 128, seed: int = 1) -> np.ndarray:
    """(documents, num_perm) uint32 MinHash signatures (affine32 scheme, datasketch's params)."""
    a, b = permutations(num_perm, seed)
    shingles, counts = shingle_hashes(texts, ngram)
    mixed = _fmix(shingles, 32)
    out = np.full((len(counts), num_perm), np.uint32(0xFFFFFFFF), dtype=np.uint32)
    ends = np.cumsum(counts)
    doc = 0
    while doc < len(counts):
        start = ends[doc] - counts[doc]
        last_doc = max(doc, int(np.searchsorted(ends, start + _GROUP_SHINGLES, side="right")) - 1)
        stop = ends[last_doc]
        block = mixed[start:stop, None] * a[None, :] + b[None, :]  # uint32 wraps: mod 2^32
        offsets = (ends[doc : last_doc + 1] - counts[doc : last_doc + 1]) - start
        nonempty = counts[doc : last_doc + 1] > 0
        if block.shape[0]:
            mins = np.minimum.reduceat(block, offsets[nonempty], axis=0)
            out[doc : last_doc + 1][nonempty] = mins
        doc = last_doc + 1
    return out


def lean_minhash(signature: np.ndarray, seed: int = 1) -> LeanMinHash:
    return LeanMinHash(seed=seed, hashvalues=signature, scheme="affine32")


def band_candidates(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(k, 2) index pairs sharing a band: runs of equal band keys, chained and starred."""
    pairs = []
    for band in range(bands):
        cols = sig[:, band * rows : (band + 1) * rows].astype(np.uint64)
        key = np.zeros(len(sig), dtype=np.uint64)
        for c in range(rows):
            key = key * np.uint64(0x9E3779B97F4A7C15) + cols[:, c]
        order = np.argsort(key, kind="stable")
        ks = key[order]
        same = ks[1:] == ks[:-1]
        if not same.any():
            continue
        run_start = np.maximum.accumulate(np.where(np.concatenate([[True], ~same]), np.arange(len(ks)), 0))
        idx = np.flatnonzero(same) + 1
        pairs.append(np.stack([order[idx - 1], order[idx]], axis=1))  # chain
        pairs.append(np.stack([order[run_start[idx]], order[idx]], axis=1))  # star to run start
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64)
    p = np.concatenate(pairs)
    p = np.sort(p, axis=1)
    return np.unique(p[p[:, 0] != p[:, 1]], axis=0)


def duplicate_mask(sig: np.ndarray, threshold: float, bands: int, rows: int) -> np.ndarray:
    """True for every row that is a near-duplicate of an earlier row (first of a cluster kept)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(sig)
    cand = band_candidates(sig, bands, rows)
    if len(cand):
        agree = np.empty(len(cand))
        for s in range(0, len(cand), 65_536):  # verify in blocks to bound memory
            c = cand[s : s + 65_536]
            agree[s : s + 65_536] = (sig[c[:, 0]] == sig[c[:, 1]]).mean(axis=1)
        cand = cand[agree >= threshold]
    if not len(cand):
        return np.zeros(n, dtype=bool)
    graph = coo_matrix((np.ones(len(cand)), (cand[:, 0], cand[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    first = np.full(label.max() + 1, n)
    np.minimum.at(first, label, np.arange(n))
    return np.arange(n) != first[label]


class MinHashDedup(Filter):
    name = "minhash_dedup"

    def __init__(self, field: str = "prompt", *, threshold: float = 0.8, ngram: int = 5,
                 num_perm: int = 128, bands: int = 25, rows: int = 5, seed: int = 1,
                 against: list[np.ndarray] | None = None, storage_config: dict | None = None) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"--threshold {threshold}: must be in (0, 1]")
        if bands * rows > num_perm:
            raise ValueError(f"bands*rows = {bands * rows} exceeds num_perm = {num_perm}")
        if field not in ("prompt", "pair"):
            raise ValueError(f"--dedup-field {field!r}: use prompt or pair")
        self.field, self.threshold, self.ngram, self.num_perm = field, threshold, ngram, num_perm
        self.bands, self.rows, self.seed = bands, rows, seed
        self.columns = ("prompt",) if field == "prompt" else ("prompt", "chosen", "rejected")
        self._against, self._storage = against or [], storage_config

    def parameters(self) -> dict:
        p = super().parameters()
        p["against_rows"] = sum(len(s) for s in self._against)
        return p

    def text(self, batch: pl.DataFrame) -> pl.Series:
        if self.field == "prompt":
            return batch["prompt"]
        return batch.select(pl.concat_str(list(self.columns), separator=" \n ")).to_series()

    def signatures_of(self, batches: Iterator[pl.DataFrame]) -> np.ndarray:
        parts = [signatures(self.text(b), ngram=self.ngram, num_perm=self.num_perm, seed=self.seed)
                 for b in batches]
        return np.concatenate(parts) if parts else np.zeros((0, self.num_perm), dtype=np.uint32)

    def reasons(self, batches: Batches, n: int) -> list[str | None]:
        sig = self.signatures_of(batches())
        dup = duplicate_mask(sig, self.threshold, self.bands, self.rows)
        out: list[str | None] = ["near_duplicate" if d else None for d in dup.tolist()]
        if self._against:
            earlier = self._earlier_index()
            for i, s in enumerate(sig):
                if out[i] is None and self._matches_earlier(earlier, s):
                    out[i] = "near_duplicate_of_earlier"
        return out

    def _earlier_index(self):
        from datasketch import MinHashLSH

        lsh = MinHashLSH(threshold=self.threshold, num_perm=self.num_perm,
                         storage_config=self._storage)
        self._earlier = np.concatenate(self._against)
        with lsh.insertion_session() as session:
            for i, s in enumerate(self._earlier):
                session.insert(i, lean_minhash(s, self.seed))
        return lsh

    def _matches_earlier(self, lsh, s: np.ndarray) -> bool:
        return any((self._earlier[k] == s).mean() >= self.threshold
                   for k in lsh.query(lean_minhash(s, self.seed)))
