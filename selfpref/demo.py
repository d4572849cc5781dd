"""`make demo`: the main job on the embedded model, on this CPU, in a few minutes.

Build a small SAO dataset (the model writes personas, prompts, answer pairs and judges them),
filter it, print its summary, train SimPO for two steps on it, and answer a fixed question with
the base and the trained model.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

QUESTION = "What are two simple ways to save water at home?"
OUT = Path("demo-out")


def _selfpref(*args: str) -> None:
    print(f"\n$ selfpref {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "selfpref.cli", *args], check=True)


def main() -> None:
    from selfpref.generation import generate_batch
    from selfpref.models import load_causal_lm, resolve_model

    start = time.perf_counter()
    print(f"embedded model: {resolve_model(None)}")
    _selfpref("build", "sao", "--num-prompts", "4", "--max-new-tokens", "64", "--judge-mode",
              "logits", "--output", str(OUT / "sao"))
    _selfpref("filter", str(OUT / "sao"), "--output", str(OUT / "sao-clean"), "--dedup", "exact",
              "--max-length-diff", "3000")
    _selfpref("inspect", str(OUT / "sao-clean"))
    _selfpref("train", "simpo", "--dataset", str(OUT / "sao-clean"), "--output-dir",
              str(OUT / "simpo"), "--max-steps", "2", "--batch-size", "2", "--max-length", "256",
              "--learning-rate", "1e-6")
    chat = [[{"role": "user", "content": QUESTION}]]
    print(f"\nQ: {QUESTION}")
    for label, ref in (("base", None), ("trained (SimPO, 2 steps)", str(OUT / "simpo"))):
        model, tokenizer = load_causal_lm(ref)
        [[answer]] = generate_batch(model, tokenizer, chat, max_new_tokens=60, temperature=0.0)
        print(f"\n[{label}]\n{answer}")
    print(f"\ndemo finished in {time.perf_counter() - start:.0f} s; datasets and model in {OUT}/")


if __name__ == "__main__":
    main()
