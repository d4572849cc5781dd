"""Answers/s through the sao pipeline's answer step vs raw batched model.generate, same run.

Both generate two answers per prompt for the same prompts, batch size and max tokens on the
embedded model, each counting its model load; the step runs in-process as a build runs it (the
AnswerPair Task on a pooled model, batch by batch). bench/build.py measures whole builds.
Goal: ratio >= 0.9.

    python bench/generation.py [num_prompts] [max_new_tokens] [batch_size]
"""

from __future__ import annotations

import sys
import time


def main(n: int = 16, max_new_tokens: int = 48, batch_size: int = 8) -> None:
    from selfpref.models import load_causal_lm
    from selfpref.models.generation import generate_batch
    from selfpref.models.local import LocalModel
    from selfpref.pipelines.llms import make_llm
    from selfpref.pipelines.tasks import AnswerPair

    prompts = [f"Give me one practical tip about topic number {i}." for i in range(n)]
    convs = [[{"role": "user", "content": p}] for p in prompts]
    start = time.perf_counter()
    model, tok = load_causal_lm(None)
    generate_batch(model, tok, convs, max_new_tokens=max_new_tokens, temperature=0.6, top_p=0.95,
                   num_return_sequences=2, batch_size=batch_size)
    raw = 2 * n / (time.perf_counter() - start)

    start = time.perf_counter()
    llm = make_llm("transformers", "default", model_id="default", step="answer_pair",
                   generation={"max_new_tokens": max_new_tokens, "temperature": 0.6, "top_p": 0.95})
    llm.bind(LocalModel(None, batch_size=batch_size).load())
    answer = AnswerPair(name="answer_pair", llm=llm, num_generations=2, input_batch_size=batch_size)
    answer.load()
    rows = [r for i in range(0, n, batch_size)
            for part in answer.process([{"prompt": p} for p in prompts[i : i + batch_size]]) for r in part]
    piped = 2 * len(rows) / (time.perf_counter() - start)
    print(f"raw batched generate: {raw:.2f} answers/s")
    print(f"sao answer step (in-process Task, end to end): {piped:.2f} answers/s")
    print(f"ratio step / raw: {piped / raw:.2f} (goal >= 0.9)")



if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
