"""Peak memory of `selfpref filter` (exact + MinHash + length) on a synthetic 1M-row dataset.

The dataset follows the record contract: prompts of 20-60 words from a 20k-word vocabulary
(5% exact copies of earlier prompts, 5% near-copies with one word changed), answers of 200-800
characters, 2% of pairs with a length difference over 3000 characters. It is written in 50k-row
frames, then filtered in a child process whose own peak RSS (VmHWM) is reported. Goal (issue 5):
under 2 GB at 1M rows.

    python bench/filter_scale.py [rows]        # default 1000000
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _peak import peak_rss_mb  # bench/ is on sys.path when a bench runs

FRAME = 50_000


def frames(n: int, seed: int = 0):
    import polars as pl

    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(20_000)])
    made: list[str] = []
    for start in range(0, n, FRAME):
        size = min(FRAME, n - start)
        prompts = []
        for _ in range(size):
            roll = rng.random()
            if made and roll < 0.05:
                prompts.append(made[rng.integers(0, len(made))])  # exact copy
            elif made and roll < 0.10:
                w = made[rng.integers(0, len(made))].split()
                w[rng.integers(0, len(w))] = "changed"
                prompts.append(" ".join(w))  # near copy
            else:
                prompts.append(" ".join(words[rng.integers(0, 20_000, rng.integers(20, 61))]) + "?")
        made = (made + prompts)[-200_000:]  # copies come from recent prompts; bounded memory
        lengths = rng.integers(200, 801, size=(size, 2))
        long = rng.random(size) < 0.02
        lengths[long, 0] += 3500
        chosen = ["a" * int(k) for k in lengths[:, 0]]
        rejected = ["b" * int(k) for k in lengths[:, 1]]
        yield pl.DataFrame({
            "prompt_id": [hashlib.sha256(p.encode()).hexdigest()[:16] for p in prompts],
            "prompt": prompts, "chosen": chosen, "rejected": rejected,
            "method": ["import"] * size, "generator": ["bench"] * size,
            "labeler": ["human"] * size, "confidence": [None] * size,
        }, schema_overrides={"confidence": pl.Float64})


def child(folder: str, out: str) -> None:
    from selfpref.filters.apply import filter_dataset

    start = time.perf_counter()
    record, reports, kept, total = filter_dataset(
        folder, out, [("dedup", "exact"), ("dedup", "minhash"), ("max_length_diff", 3000)])
    print(json.dumps({"seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb(),
                      "kept": kept, "total": total,
                      "funnel": [(r.name, r.input, r.kept, r.dropped) for r in reports]}))


def main(n: int = 1_000_000) -> None:
    from selfpref.data.store import BuildRecord, write_dataset

    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "big", Path(tmp) / "big-clean"
        t = time.perf_counter()
        write_dataset(frames(n), folder, BuildRecord(name="big", method="import"))
        size = sum(f.stat().st_size for f in (folder / "data").glob("*.parquet")) / 1e6
        print(f"wrote {n:,} rows ({size:,.0f} MB parquet) in {time.perf_counter() - t:.0f} s")
        proc = subprocess.run([sys.executable, __file__, "--child", str(folder), str(out)],
                              capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"filter failed: {proc.stderr.strip().splitlines()[-1:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        for name, given, kept, dropped in r["funnel"]:
            print(f"  {name}: {given:,} -> {kept:,} {dropped}")
        print(f"filter (exact + minhash + length) of {r['total']:,} rows: {r['seconds']:.0f} s, "
              f"{r['total'] / r['seconds']:,.0f} rows/s, peak RSS {r['peak_rss_mb']:,.0f} MB "
              f"(goal < 2048 MB)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3])
    else:
        main(*[int(a) for a in sys.argv[1:]])
