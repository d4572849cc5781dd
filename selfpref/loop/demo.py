"""`make demo`: the whole story on the embedded model, on this CPU, in a few minutes.

The model writes personas and one prompt per persona, answers each prompt twice and judges its
own pairs (SAO); the pairs are filtered into a derived dataset with a data card; `inspect`
summarises it; SimPO trains a few steps on it; AlignEZ fits steering directions from the same
pairs. Three fixed questions are then answered by the base model, the trained model and the
steered base model, side by side. Last, `selfpref.eval` judges trained vs base and steered vs base
on a few of the shipped held-out prompts (one per category), both orders, with the embedded model
as judge, and says what that judge's verdicts are worth (its consistency rate).

Every step replaces its output under ``demo-out/`` (``--overwrite``), so the demo can be rerun.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

QUESTIONS = (
    "What are two simple ways to save water at home?",
    "How should I prepare for a job interview?",
    "Explain what a budget is to a teenager.",
)
OUT = Path(os.environ.get("SELFPREF_DEMO_OUT", "demo-out"))
NUM_PROMPTS = int(os.environ.get("SELFPREF_DEMO_PROMPTS", "12"))
EVAL_PROMPTS = int(os.environ.get("SELFPREF_DEMO_EVAL_PROMPTS", "6"))  # one per category, in turn
EVAL_NEW_TOKENS = 64


def _selfpref(*args: str) -> None:
    print(f"\n$ selfpref {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "selfpref.cli", *args], check=True)


def _trained_answers(model_ref: str) -> list[str]:
    from selfpref.models import load_causal_lm
    from selfpref.models.generation import generate_batch

    model, tokenizer = load_causal_lm(model_ref)
    chats = [[{"role": "user", "content": q}] for q in QUESTIONS]
    return [answers[0] for answers in generate_batch(model, tokenizer, chats, max_new_tokens=60,
                                                     temperature=0.0)]


def _evaluate(trained: Path, directions: Path, base: str = "default") -> None:
    """Trained vs base and steered vs base on a few shipped held-out prompts, judged in both orders
    by the base model (the embedded one); a table of B's figures and what the judge's consistency
    makes of them."""
    import polars as pl

    from selfpref.eval.report import consistency_note
    from selfpref.eval.run import EvalConfig, run_eval
    from selfpref.eval.sources import load_prompts, spread, write_prompts
    from selfpref.eval.stats import b_side
    from selfpref.models.pool import ModelPool

    start = time.perf_counter()
    chosen = spread(load_prompts(), EVAL_PROMPTS)
    prompts = write_prompts(chosen, OUT / "eval-prompts.jsonl")
    print(f"\n$ evaluating trained vs base and steered vs base on {len(chosen.prompts)} held-out "
          f"prompts ({', '.join(chosen.categories or [])}); judge: the embedded model's forced "
          "choice, both orders", flush=True)
    pool = ModelPool(batch_size=8)  # the base model (A, judge, and B's steered base) loads once
    common: dict[str, Any] = {"model_a": base, "judge_model": base, "prompts": str(prompts),
              "max_new_tokens": EVAL_NEW_TOKENS}
    runs = [("trained (SimPO) vs base", EvalConfig(output=str(OUT / "eval-trained"),
                                                   model_b=str(trained), **common)),
            ("steered (AlignEZ) vs base", EvalConfig(output=str(OUT / "eval-steered"),
                                                     steer_b=str(directions), **common))]
    rows = []
    for label, cfg in runs:
        summary = run_eval(cfg, models=pool, notify=lambda m: print(f"  {m}", flush=True))
        scores = pl.read_parquet(Path(cfg.output) / "judgments.parquet", columns=["score"])["score"]
        rows.append((label, b_side(summary, scores.to_numpy()), cfg.output))
    print(f"\n{'B vs base (A)':<26} {'n':>2} {'win %':>6} {'lose %':>6} {'tie %':>6} {'LC win %':>8} "
          f"{'LC 95% CI':>13} {'consistency %':>13} {'mean len B / base':>17}")
    for label, b, _ in rows:
        lc = (b["ci95"] or {}).get("lc_win_rate")
        ci = f"{lc[0]:.1f}-{lc[1]:.1f}" if lc else "-"
        print(f"{label:<26} {b['n']:>2} {b['win_rate']:>6.1f} {b['lose_rate']:>6.1f} {b['tie_rate']:>6.1f} "
              f"{b['lc_win_rate']:>8.1f} {ci:>13} {b['judge_consistency']:>13.1f} "
              f"{b['mean_len']:>8.0f} / {b['mean_len_base']:.0f}")
    consistency = sum(b["judge_consistency"] for _, b, _ in rows) / len(rows)
    print("\nThe judge is the 135M base model itself. "
          + consistency_note(consistency, rows[0][1]["n"], scope=" (both evaluations)"))
    print(f"Reports: {', '.join(f'{out}/README.md' for _, _, out in rows)} (both evaluations "
          f"took {time.perf_counter() - start:.0f} s)")


def main() -> None:
    from selfpref.models import resolve_model

    start = time.perf_counter()
    print(f"embedded model: {resolve_model(None)}")
    data, clean, trained, directions = OUT / "sao", OUT / "sao-clean", OUT / "simpo", OUT / "alignez.safetensors"
    _selfpref("build", "sao", "--num-prompts", str(NUM_PROMPTS), "--max-new-tokens", "64",
              "--judge-mode", "logits", "--output", str(data), "--overwrite")
    _selfpref("filter", str(data), "--output", str(clean), "--dedup", "minhash",
              "--max-length-diff", "3000", "--overwrite")
    print(f"\ndata card: {clean / 'README.md'}")
    _selfpref("inspect", str(clean))
    _selfpref("train", "simpo", "--dataset", str(clean), "--output-dir", str(trained),
              "--max-steps", "6", "--batch-size", "2", "--max-length", "256", "--learning-rate", "5e-5",
              "--overwrite")
    # A.4 picks several layers from a dozen noisy pairs; editing that many breaks a 135M model's
    # generation, so the demo edits the single layer with the lowest held-out CCS loss.
    _selfpref("steer", "fit", "--dataset", str(clean), "--output", str(directions), "--max-layers", "1",
              "--overwrite")
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
    _evaluate(trained, directions)
    print(f"\ndemo finished in {time.perf_counter() - start:.0f} s; datasets, model and directions in {OUT}/")


if __name__ == "__main__":
    main()
