"""selfpref over a real OpenAI-compatible server (`transformers serve`, the embedded model).

1. `build sao` through the server (--backend openai) vs the same build on --backend
   transformers, same prompts and settings (wall seconds, each counting its own model load; the
   server's start is reported apart).
2. The server driven by selfpref's client (OpenAICompatModel.generate, probe done beforehand)
   vs a plain script (httpx + a thread pool) sending the same request bodies with the same number
   of requests in flight. Goal: client >= 0.9x the plain script. Best of two rounds each,
   alternating, since the machine is shared.

    python bench/endpoint.py [num_prompts] [max_new_tokens] [concurrency]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROMPTS = ["How do I keep basil fresh?", "Why do cats purr?", "What is a prime number?",
           "Give me a tip for learning to cook.", "Why is the sea salty?", "How do bees find flowers?",
           "What makes bread rise?", "How can I sleep better?"]


def _build(config, out: Path) -> float:
    from selfpref.pipelines.run import build

    start = time.perf_counter()
    build(config, out)
    return time.perf_counter() - start


def main(n: int = 4, max_new_tokens: int = 16, concurrency: int = 4) -> None:
    import httpx

    from selfpref.models import default_model
    from selfpref.models.openai_compat import OpenAICompatModel
    from selfpref.pipelines.config import BuildConfig
    from tests.openai_server import transformers_serve

    model = str(default_model())
    prompts = [PROMPTS[i % len(PROMPTS)] + ("" if i < len(PROMPTS) else f" ({i})") for i in range(n)]
    tmp = Path(tempfile.mkdtemp(prefix="bench-endpoint-"))
    (tmp / "p.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    common = dict(method="sao", model=model, prompts=str(tmp / "p.jsonl"), max_new_tokens=max_new_tokens,
                  judge_max_new_tokens=8, num_prompts=n)
    local = _build(BuildConfig(backend="transformers", **common), tmp / "local")
    os.environ["BENCH_KEY"] = "EMPTY"
    start = time.perf_counter()
    with transformers_serve(model, log=str(tmp / "serve.log")) as url:
        started = time.perf_counter() - start
        # one request in flight for the build: transformers serve seeds through torch's global
        # generator, so concurrent requests would not be reproducible
        remote = _build(BuildConfig(backend="openai", base_url=url, api_key_env="BENCH_KEY",
                                    max_concurrency=1, **common), tmp / "remote")
        chats = [[{"role": "user", "content": p}] for p in prompts]
        client = OpenAICompatModel(url, model, api_key_env="BENCH_KEY", max_concurrency=concurrency)
        client.probe()
        fields = client.sampling_body(max_new_tokens, 0.0, 1.0)
        bodies = [{"model": model, "messages": c, **fields} for c in chats]
        plain_http = httpx.Client(timeout=600)

        def plain() -> float:
            t = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(lambda b: plain_http.post(f"{url}/chat/completions", json=b).json(), bodies))
            return len(bodies) / (time.perf_counter() - t)

        def ours() -> float:
            t = time.perf_counter()
            client.generate(chats, max_new_tokens=max_new_tokens, temperature=0.0)
            return len(chats) / (time.perf_counter() - t)

        rounds = [(plain(), ours()), (ours(), plain())]
        best_plain = max(rounds[0][0], rounds[1][1])
        best_ours = max(rounds[0][1], rounds[1][0])
    print(f"build sao, {n} prompts, {max_new_tokens} new tokens: --backend transformers {local:.1f} s; "
          f"--backend openai on transformers serve {remote:.1f} s (server start {started:.1f} s apart); "
          f"ratio openai/transformers {remote / local:.2f}")
    print(f"{len(chats)} requests, {concurrency} in flight: plain script {best_plain:.3f} req/s, "
          f"selfpref client {best_ours:.3f} req/s, ratio {best_ours / best_plain:.2f} (goal >= 0.9)")


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
