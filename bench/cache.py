"""Rebuilding with another judge: what the step cache saves (issue 20, item 3).

On the embedded model, each command in its own child process (`selfpref build sao`, imports and
model load included, as a user runs it):

1. `build sao --judge text` into a new output (the cache starts empty);
2. the same prompts rebuilt into another output with `--judge logits`: the answers come from the
   step cache, only the judge step runs;
3. the same rebuild with `--no-cache` (what step 2 cost before the cache).

Goal: step 2's wall time <= 1/3 of step 1's. The bench also checks that the rebuild's answer
pairs are the first build's.

    python bench/cache.py [num_prompts=6] [max_new_tokens=32]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOPICS = ["sleep", "budgeting", "gardening", "python", "cooking rice", "running", "chess", "stress"]


def timed_build(work: Path, output: str, *flags: str) -> float:
    cmd = [sys.executable, "-m", "selfpref.cli", "build", "sao", "--prompts", str(work / "p.jsonl"),
           "--output", str(work / output), *flags]
    began = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    seconds = time.perf_counter() - began
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return seconds


def pairs(folder: Path) -> dict[str, tuple[str, ...]]:
    """prompt -> its two answers in a fixed order: the pair, whatever the judge said."""
    from selfpref.data.refs import read_dataset

    df, _ = read_dataset(folder)
    return {p: tuple(sorted((c, r))) for p, c, r in zip(df["prompt"], df["chosen"], df["rejected"])}


def main(n: int = 6, tokens: int = 32) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = [{"prompt": f"Give me two practical tips about {TOPICS[i % len(TOPICS)]}."} for i in range(n)]
        (work / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        common = ["--num-prompts", str(n), "--max-new-tokens", str(tokens)]
        first = timed_build(work, "text", *common, "--judge", "text")
        rebuild = timed_build(work, "logits", *common, "--judge", "logits")
        uncached = timed_build(work, "logits-nocache", *common, "--judge", "logits", "--no-cache")
        record = json.loads((work / "logits" / "selfpref.json").read_text())
        text, logits = pairs(work / "text"), pairs(work / "logits")
        common = text.keys() & logits.keys()
        same = f"{sum(text[p] == logits[p] for p in common)} of {len(common)} prompts kept by both"
    steps = record["stats"].get("step_cache")
    print(f"build sao, {n} prompts, {tokens} new tokens, embedded model (each a CLI process):")
    print(f"  first build (--judge text):           {first:6.1f} s")
    print(f"  rebuild --judge logits (cache):       {rebuild:6.1f} s   step cache: {steps}")
    print(f"  rebuild --judge logits (--no-cache):  {uncached:6.1f} s")
    print(f"  the rebuild's answer pairs equal the first build's: {same}")
    print(f"ratio rebuild / first build = {rebuild / first:.2f} (goal <= 0.33); "
          f"without the cache {uncached / first:.2f}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
