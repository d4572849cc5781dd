"""`make demo`: the main job on the embedded model, on the CPU."""

from __future__ import annotations

import time

QUESTION = "What are two simple ways to save water at home?"


def main() -> None:
    from selfpref.generation import generate_batch
    from selfpref.models import load_causal_lm, resolve_model

    start = time.perf_counter()
    path = resolve_model(None)
    print(f"embedded model: {path}")
    model, tokenizer = load_causal_lm(path)
    [[answer]] = generate_batch(model, tokenizer, [[{"role": "user", "content": QUESTION}]],
                                max_new_tokens=80, temperature=0.0)
    print(f"Q: {QUESTION}\nA: {answer}")
    print(f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
