"""`selfpref filter --dedup minhash` end to end, data card included, vs the naive datasketch loop.

The dataset follows the record contract: prompts are bench/dedup.py's documents (100-400 random
words, 10% planted near-copies), chosen and rejected are 40-120-word answers drawn from two
overlapping halves of the vocabulary (so the separability probe has something to find). Sides,
each timed as its own process from the outside (interpreter start, imports and the card included):

  cold     the parent has no embedding cache (as `selfpref import` writes it)
  warm     the parent has its data card (`selfpref card` on a copy, as `build`, `filter` and
           `card` write it), so its sampled texts' embeddings are in the folder for the child
  nosep    `--no-separability`
  naive    bench/dedup.py's naive loop (MinHash per document + MinHashLSH query/insert), timed on
           the first NAIVE_DOCS documents and extrapolated linearly to N, as bench/dedup.py does

Each side but cold runs BENCH_REPEATS times (default 3), interleaved, and its median counts.
Wall time is what the goal is about; CPU time (user + system, all threads) is printed too,
because on a shared 2-core machine load slows the multi-threaded filter more than the
single-threaded naive loop, so the wall ratio moves with load and the CPU ratio much less.
Then one instrumented in-process run on the warm parent splits the time: imports, filtering
(run_filters), writing, and the card's parts (summarize, plots, the separability probe).

    python bench/filter_card.py [rows] [sides]    # default: 40000 cold,warm,nosep

The 40k-row dataset (and the warm parent) are written once to $TMPDIR/selfpref-filter-card-40000
and kept between runs; delete that folder after changing the probe's cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from dedup import NAIVE_DOCS, corpus, run_naive  # bench/ is on sys.path when a bench runs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VOCAB = 20_000
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))  # each side's end-to-end time: the median


def frame(n: int, seed: int = 0):
    import polars as pl

    prompts, _ = corpus(n, seed)
    rng = np.random.default_rng(seed + 1)
    words = np.array([f"w{i}" for i in range(VOCAB)])

    def answers(lo: int, hi: int) -> list[str]:
        return [" ".join(words[rng.integers(lo, hi, rng.integers(40, 121))]) for _ in range(n)]

    return pl.DataFrame({
        "prompt_id": [hashlib.sha256(p.encode()).hexdigest()[:16] for p in prompts],
        "prompt": prompts, "chosen": answers(0, 12_000), "rejected": answers(8_000, VOCAB),
        "method": ["import"] * n, "generator": ["bench"] * n, "labeler": ["human"] * n,
        "confidence": [None] * n}, schema_overrides={"confidence": pl.Float64})


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "selfpref", *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process, all its threads)."""
    start, cpu = time.perf_counter(), cpu_of_children()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env(), check=False)
    seconds = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return seconds, cpu_of_children() - cpu


def naive_child(folder: str) -> None:
    import datasketch  # noqa: F401  imports are not part of the timing
    import polars as pl

    docs = pl.read_parquet(Path(folder) / "data").get_column("prompt").to_list()[:NAIVE_DOCS]
    run_naive(docs[:50])  # warm-up, as bench/dedup.py does
    start, cpu = time.perf_counter(), time.process_time()
    run_naive(docs)
    print(json.dumps({"docs": len(docs), "seconds": time.perf_counter() - start,
                      "cpu": time.process_time() - cpu}))


def split_child(folder: str, out: str) -> None:
    """The `filter` command in-process, with timers around its parts (seconds, summed)."""
    start = time.perf_counter()
    import selfpref.cli as cli_module
    spent = {"import_cli": time.perf_counter() - start}
    t = time.perf_counter()
    import selfpref.filters.apply  # noqa: F401  (datasketch, which imports scipy)
    from selfpref.filters import runner
    spent["import_filters"] = time.perf_counter() - t
    import selfpref.datacards as cards
    from selfpref.data import store

    def timer(key, fn):
        spent.setdefault(key, 0.0)

        def wrapped(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[key] += time.perf_counter() - t
        return wrapped

    runner.run_filters = timer("filter", runner.run_filters)
    store.write_dataset = timer("write", store.write_dataset)  # includes the card
    cards.write_card = timer("card", cards.write_card)
    cards.summarize = timer("summarize", cards.summarize)
    cards.write_plots = timer("plots", cards.write_plots)
    probe = "probe_separability" if hasattr(cards, "probe_separability") else "separability"  # old trees
    setattr(cards, probe, timer("separability", getattr(cards, probe)))
    sys.argv = ["selfpref", "filter", folder, "--output", out, "--dedup", "minhash"]
    try:
        cli_module.main()
    except SystemExit as exc:
        if exc.code:
            raise
    spent["total"] = time.perf_counter() - start
    record = json.loads((Path(out) / "selfpref.json").read_text())
    print(json.dumps({**spent, "sep": record["stats"].get("separability")}))


def child_json(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env(),
                          check=False)
    if proc.returncode:
        sys.exit(f"{args[0]} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(n: int = 40_000, sides: str = "cold,warm,nosep") -> None:
    from selfpref.data.store import BuildRecord, is_dataset_folder, write_dataset

    base = Path(tempfile.gettempdir()) / f"selfpref-filter-card-{n}"
    cold = base / "cold"
    if not is_dataset_folder(cold):  # the dataset is deterministic: made once, kept between runs
        t = time.perf_counter()
        write_dataset(frame(n), cold, BuildRecord(name="cold", method="import"))
        print(f"wrote {n:,} rows in {time.perf_counter() - t:.1f} s")
    wanted = sides.split(",")
    warm = base / "warm"
    if "warm" in wanted and not (warm / "separability.npz").is_file():  # also kept between runs
        shutil.rmtree(warm, ignore_errors=True)
        shutil.copytree(cold, warm)
        seconds, _ = timed(cli("card", str(warm)))
        print(f"`selfpref card` on the parent (a cold probe: its sample and spare embedded): "
              f"{seconds:.1f} s end to end")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-c", "import selfpref.cli, sklearn, matplotlib.pyplot"],
                       env=env(), check=True)  # compiled files and the page cache, for every side
        runs = [child_json("--naive", str(cold))]
        flags = ["--dedup", "minhash"]
        extra = {"cold": (cold, []), "warm": (warm, []), "nosep": (cold, ["--no-separability"])}
        times: dict[str, list[tuple[float, float]]] = {side: [] for side in wanted}
        for r in range(REPEATS):  # interleaved, so that a burst of load hits every side alike
            for side in wanted:
                if side == "cold" and r:  # minutes of embedding: once is enough
                    continue
                times[side].append(timed(cli("filter", str(extra[side][0]), "--output",
                                             f"{tmp}/{side}-out-{r}", *flags, *extra[side][1])))
        runs.append(child_json("--naive", str(cold)))  # before and after: load drifts on 2 cores
        docs = sum(r["docs"] for r in runs)
        naive_s = n * sum(r["seconds"] for r in runs) / docs
        naive_cpu = n * sum(r["cpu"] for r in runs) / docs
        print(f"naive datasketch loop: {docs / sum(r['seconds'] for r in runs):,.0f} docs/s on the "
              f"first {runs[0]['docs']:,} documents (timed before and after the sides) -> "
              f"{naive_s:.1f} s ({naive_cpu:.1f} CPU s) extrapolated to {n:,}")
        for side, pairs in times.items():
            wall = float(np.median([w for w, _ in pairs]))
            cpu = float(np.median([c for _, c in pairs]))
            print(f"  {side:6s} `selfpref filter --dedup minhash` end to end {wall:6.2f} s (median of "
                  f"{', '.join(f'{w:.2f}' for w, _ in pairs)}), {cpu:6.2f} CPU s   naive / selfpref "
                  f"= {naive_s / wall:5.1f}x wall, {naive_cpu / cpu:5.1f}x CPU")
        for side in wanted:
            if side != "warm":  # cold's split is its end-to-end time minus nosep's, give or take
                continue
            s = child_json("--split", str(extra[side][0]), f"{tmp}/{side}-split")
            sep = s["sep"] or {}
            parts = {"imports (cli)": s["import_cli"], "imports (filters: datasketch, scipy)":
                     s["import_filters"], "filter (run_filters)": s["filter"],
                     "write (validate, parquet, record)": s["write"] - s["card"],
                     "card: summarize": s["summarize"], "card: plots": s["plots"],
                     "card: separability": s["separability"],
                     "card: the rest": s["card"] - s["summarize"] - s["plots"] - s["separability"]}
            parts["the rest (reading the parent, CLI)"] = s["total"] - sum(parts.values())
            print(f"  {side:6s} split of one in-process run, {s['total']:.2f} s: " + ", ".join(
                f"{k} {v:.2f}" for k, v in parts.items()))
            print(f"         probe: {json.dumps({k: v for k, v in sep.items() if k != 'sample'})}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--naive"]:
        naive_child(sys.argv[2])
    elif sys.argv[1:2] == ["--split"]:
        split_child(sys.argv[2], sys.argv[3])
    else:
        main(*[int(a) if a.isdigit() else a for a in sys.argv[1:]])
