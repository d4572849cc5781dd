"""Answers/s through the sao pipeline's answer step vs raw batched model.generate, same run.

Both generate two answers per prompt for the same prompts, batch size and max tokens on the
embedded model; the pipeline number includes distilabel's overhead (workers, batching, queues).
Goal: ratio >= 0.9.

    python bench/generation.py [num_prompts] [max_new_tokens] [batch_size]
"""

from __future__ import annotations

import sys
import tempfile
import time



def main(n: int = 16, max_new_tokens: int = 48, batch_size: int = 8) -> None:
    from selfpref.pipelines.run import default_llm_factory
    from selfpref.models.generation import generate_batch
    from selfpref.models import load_causal_lm
    from selfpref.pipelines import run_pipeline
    from selfpref.pipelines.config import BuildConfig

    prompts = [f"Give me one practical tip about topic number {i}." for i in range(n)]
    convs = [[{"role": "user", "content": p}] for p in prompts]
    # Both sides include loading the model: the pipeline's worker loads it too.
    start = time.perf_counter()
    model, tok = load_causal_lm(None)
    generate_batch(model, tok, convs, max_new_tokens=max_new_tokens, temperature=0.6, top_p=0.95,
                   num_return_sequences=2, batch_size=batch_size)
    raw = 2 * n / (time.perf_counter() - start)

    # The pipeline up to the answer pair: the judge is left out so both sides do the same work.
    config = BuildConfig(method="selfee", max_new_tokens=max_new_tokens, batch_size=batch_size,
                         temperature=0.6, top_p=0.95)
    from selfpref.pipelines.tasks import AnswerPair
    from distilabel.pipeline import Pipeline
    from distilabel.steps import LoadDataFromDicts

    factory = default_llm_factory(config)
    with tempfile.TemporaryDirectory() as cache:
        with Pipeline(name="bench-generation", cache_dir=cache) as pipeline:
            load = LoadDataFromDicts(name="load", data=[{"prompt": p} for p in prompts], batch_size=n)
            answer = AnswerPair(name="answer_pair", llm=factory("answer_pair", config.generation()),
                                num_generations=2, input_batch_size=n)
            load >> answer
        start = time.perf_counter()
        rows = run_pipeline(pipeline)
        piped = 2 * len(rows) / (time.perf_counter() - start)
    print(f"raw batched generate: {raw:.2f} answers/s")
    print(f"sao answer step (distilabel pipeline, end to end): {piped:.2f} answers/s")
    print(f"ratio pipeline / raw: {piped / raw:.2f} (goal >= 0.9)")


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
