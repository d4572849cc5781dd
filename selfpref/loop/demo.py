"""`make demo`: the whole story on the embedded model, on this CPU, in a few minutes.

The model writes personas and one prompt per persona, answers each prompt twice and judges its
own pairs (SAO); the pairs are filtered into a derived dataset with a data card; `inspect`
summarises it; SimPO trains a few steps on it; AlignEZ fits steering directions from the same
pairs. Three fixed questions are then answered by the base model, the trained model and the
steered base model, side by side.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

QUESTIONS = (
    "What are two simple ways to save water at home?",
    "How should I prepare for a job interview?",
    "Explain what a budget is to a teenager.",
)
OUT = Path(os.environ.get("SELFPREF_DEMO_OUT", "demo-out"))
NUM_PROMPTS = int(os.environ.get("SELFPREF_DEMO_PROMPTS", "12"))


def _selfpref(*args: str) -> None:
    print(f"\n$ selfpref {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "selfpref.cli", *args], check=True)


def _trained_answers(model_ref: str) -> list[str]:
    from selfpref.models.generation import generate_batch
    from selfpref.models import load_causal_lm

    model, tokenizer = load_causal_lm(model_ref)
    chats = [[{"role": "user", "content": q}] for q in QUESTIONS]
    return [answers[0] for answers in generate_batch(model, tokenizer, chats, max_new_tokens=60,
                                                     temperature=0.0)]


def main() -> None:
    from selfpref.models import resolve_model

    start = time.perf_counter()
    print(f"embedded model: {resolve_model(None)}")
    data, clean, trained, directions = OUT / "sao", OUT / "sao-clean", OUT / "simpo", OUT / "alignez.safetensors"
    _selfpref("build", "sao", "--num-prompts", str(NUM_PROMPTS), "--max-new-tokens", "64",
              "--judge-mode", "logits", "--output", str(data))
    _selfpref("filter", str(data), "--output", str(clean), "--dedup", "minhash",
              "--max-length-diff", "3000")
    print(f"\ndata card: {clean / 'README.md'}")
    _selfpref("inspect", str(clean))
    _selfpref("train", "simpo", "--dataset", str(clean), "--output-dir", str(trained),
              "--max-steps", "6", "--batch-size", "2", "--max-length", "256", "--learning-rate", "5e-5")
    # A.4 picks several layers from a dozen noisy pairs; editing that many breaks a 135M model's
    # generation, so the demo edits the single layer with the lowest held-out CCS loss.
    _selfpref("steer", "fit", "--dataset", str(clean), "--output", str(directions), "--max-layers", "1")
    print("\n$ answering three questions with the base, trained and steered models", flush=True)
    from selfpref.steer import generate as steered_generate

    # one load of the base model answers both unsteered and steered (hooks removed in between)
    base = steered_generate(directions, QUESTIONS, compare=True, max_new_tokens=60, temperature=0.0)
    columns = {"base": [row["unsteered"] for row in base],
               "trained (SimPO, 6 steps)": _trained_answers(str(trained)),
               "steered base (AlignEZ)": [row["steered"] for row in base]}
    for i, question in enumerate(QUESTIONS):
        print(f"\n=== Q{i + 1}: {question}")
        for label, answers in columns.items():
            print(f"--- [{label}]\n{answers[i]}")
    print(f"\ndemo finished in {time.perf_counter() - start:.0f} s; datasets, model and directions in {OUT}/")


if __name__ == "__main__":
    main()
