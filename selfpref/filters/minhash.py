"""MinHash near-duplicate removal, vectorised with numpy, signatures identical to datasketch's.

Words are split and hashed by polars (Rust), word n-gram shingles are combined and permuted with
numpy over whole batches: no Python object per word or shingle. Signatures use datasketch's own
permutation parameters and its default ``affine32`` scheme, so a signature here equals
``MinHash(num_perm, seed, hashfunc=identity).update_batch(shingle_hashes)`` and loads as a
``LeanMinHash``. Batch dedup bands the signature matrix, finds candidate pairs by sorting band
keys (no per-document index objects), and keeps a pair only if its signature Jaccard reaches the
threshold. Verification uses the exact shingle Jaccard of the candidate pair (recomputed from
the texts of candidate rows only): with 128 permutations the signature estimate has a standard
error of 0.035 at s=0.8, so estimate-only verification misjudges a large share of pairs whose
true Jaccard lies near the threshold (measured: precision and recall ~0.89 on bench/dedup.py).

Banding: b bands of r rows make a pair with Jaccard s a candidate with probability
1 - (1 - s^r)^b. With b=25, r=5 (125 of 128 permutations) that is 0.99995 at s=0.8 and 0.55 at
s=0.5; verification then removes the false candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import polars as pl

from selfpref import SelfprefError
from selfpref.filters.base import Batches, Filter

_MASK32 = np.uint64(0xFFFFFFFF)
_GROUP_SHINGLES = 8_192  # shingles permuted at once: 128 x 8k x 4 bytes = 4 MB, cache-sized
_SUB_BATCH = 4_096  # texts tokenised at once: bounds the per-token arrays to ~100 MB
_PREFILTER = 0.15  # candidates whose signature estimate is this far below the threshold are dropped


# datasketch's affine32 scheme, written out here: importing datasketch pulls in scipy (~1.3 s of
# every `selfpref filter` start). tests/test_filters.py checks signatures and these parameters
# against datasketch itself, so a change on its side fails the suite instead of drifting.
_FMIX32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35), np.uint32(16))


def _fmix(hv: np.ndarray, width: int = 32) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer (datasketch's pre-mix), element-wise, wrapping mod 2^32."""
    s1, m1, s2, m2, s3 = _FMIX32
    hv = hv ^ (hv >> s1)
    hv = hv * m1
    hv = hv ^ (hv >> s2)
    hv = hv * m2
    return hv ^ (hv >> s3)


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 parameters: odd a and any b drawn from RandomState(seed)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def shingle_hashes(texts: pl.Series, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """(flat uint32 shingle hashes, shingles per document) for a batch of texts.

    Words are the lowercased text split on whitespace (a literal split: 4x faster than a regex
    tokenizer in polars, and the cost that dominates the whole dedup).
    """
    if texts.null_count():
        texts = texts.fill_null("")
    lowered = texts.str.to_lowercase()
    for ws in ("\n", "\t", "\r"):
        lowered = lowered.str.replace_all(ws, " ", literal=True)
    words = lowered.str.split(" ")
    tokens = words.explode()
    keep = (tokens.str.len_bytes() > 0).fill_null(False).to_numpy()
    doc_index = np.repeat(np.arange(len(words)), words.list.len().to_numpy())
    lengths = np.bincount(doc_index[keep], minlength=len(words)).astype(np.int64)
    flat = tokens.filter(pl.Series(keep)).hash(seed=0x5E1F).to_numpy().astype(np.uint64)
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
    out = np.full((num_perm, len(counts)), np.uint32(0xFFFFFFFF), dtype=np.uint32)
    ends = np.cumsum(counts)
    doc = 0
    while doc < len(counts):
        start = ends[doc] - counts[doc]
        last_doc = max(doc, int(np.searchsorted(ends, start + _GROUP_SHINGLES, side="right")) - 1)
        stop = ends[last_doc]
        if stop > start:
            # (perms, shingles): the min runs along contiguous memory; uint32 wraps mod 2^32
            block = a[:, None] * mixed[None, start:stop] + b[:, None]
            group = slice(doc, last_doc + 1)
            offsets = (ends[group] - counts[group]) - start
            nonempty = counts[group] > 0
            out[:, group][:, nonempty] = np.minimum.reduceat(block, offsets[nonempty], axis=1)
        doc = last_doc + 1
    return np.ascontiguousarray(out.T)


def shingle_sets(texts: pl.Series, ngram: int) -> list[np.ndarray]:
    """Each text's distinct shingle hashes, sorted: for exact Jaccard of candidate pairs."""
    hashes, counts = shingle_hashes(texts, ngram)
    return [np.unique(part) for part in np.split(hashes, np.cumsum(counts)[:-1])]


def exact_jaccard(x: np.ndarray, y: np.ndarray) -> float:
    inter = len(np.intersect1d(x, y, assume_unique=True))
    union = len(x) + len(y) - inter
    return inter / union if union else 1.0


def lean_minhash(signature: np.ndarray, seed: int = 1) -> Any:
    """A datasketch ``LeanMinHash`` holding the signature (for MinHashLSH and other tools)."""
    from datasketch import LeanMinHash

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


def duplicate_mask(sig: np.ndarray, threshold: float, bands: int, rows: int,
                   exact: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """True for every row that is a near-duplicate of an earlier row (first of a cluster kept).

    Candidates come from the bands; a candidate is kept when its Jaccard reaches the threshold:
    the exact shingle Jaccard when ``exact(pairs)`` is given, else the signature estimate.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(sig)
    cand = band_candidates(sig, bands, rows)
    if len(cand):
        agree = np.empty(len(cand))
        for s in range(0, len(cand), 65_536):  # verify in blocks to bound memory
            c = cand[s : s + 65_536]
            agree[s : s + 65_536] = (sig[c[:, 0]] == sig[c[:, 1]]).mean(axis=1)
        if exact is None:
            cand = cand[agree >= threshold]
        else:
            # The estimate's standard error at s=0.8 with 128 permutations is 0.035: near the
            # threshold only the exact Jaccard decides both precision and recall.
            cand = cand[agree >= threshold - _PREFILTER]
            cand = cand[exact(cand) >= threshold] if len(cand) else cand
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
                 against: list[np.ndarray] | None = None, storage_config: dict | None = None,
                 verify: str = "exact") -> None:
        if verify not in ("exact", "signature"):
            raise SelfprefError(f"verify={verify!r}: use exact or signature")
        if not 0 < threshold <= 1:
            raise SelfprefError(f"--threshold {threshold}: must be in (0, 1], e.g. 0.8")
        if not isinstance(ngram, int) or ngram < 1:
            raise SelfprefError(f"--ngram {ngram}: must be a whole number of words >= 1, e.g. 5")
        if bands * rows > num_perm:
            raise SelfprefError(f"bands*rows = {bands * rows} exceeds num_perm = {num_perm}")
        if field not in ("prompt", "pair"):
            raise SelfprefError(f"--dedup-field {field!r}: use prompt or pair")
        self.field, self.threshold, self.ngram, self.num_perm = field, threshold, ngram, num_perm
        self.bands, self.rows, self.seed, self.verify = bands, rows, seed, verify
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

    def signatures_of(self, batches: Iterator[pl.DataFrame], n: int) -> np.ndarray:
        """Signatures of all ``n`` rows, computed _SUB_BATCH texts at a time into one array."""
        out = np.empty((n, self.num_perm), dtype=np.uint32)
        row = 0
        for batch in batches:
            texts = self.text(batch)
            for start in range(0, len(texts), _SUB_BATCH):
                part = signatures(texts.slice(start, _SUB_BATCH), ngram=self.ngram,
                                  num_perm=self.num_perm, seed=self.seed)
                out[row : row + len(part)] = part
                row += len(part)
        return out[:row]

    def exact_checker(self, batches: Batches) -> Callable[[np.ndarray], np.ndarray]:
        """Exact Jaccard of candidate pairs, reading again only the texts of candidate rows."""

        def check(pairs: np.ndarray) -> np.ndarray:
            wanted = np.unique(pairs)
            sets: dict[int, np.ndarray] = {}
            offset = 0
            for batch in batches():
                local = wanted[(wanted >= offset) & (wanted < offset + batch.height)] - offset
                if len(local):
                    texts = self.text(batch[local.tolist()])
                    for i, shingles in zip(local.tolist(), shingle_sets(texts, self.ngram)):
                        sets[offset + i] = shingles
                offset += batch.height
            return np.array([exact_jaccard(sets[i], sets[j]) for i, j in pairs.tolist()])

        return check

    def reasons(self, batches: Batches, n: int) -> list[str | None]:
        sig = self.signatures_of(batches(), n)
        dup = duplicate_mask(sig, self.threshold, self.bands, self.rows,
                             exact=self.exact_checker(batches) if self.verify == "exact" else None)
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
