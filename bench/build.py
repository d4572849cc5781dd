"""`selfpref build` end to end vs a plain script making the same model calls, same run.

On the embedded model, each measurement in its own child process (model load included, peak RSS
= the child's VmHWM):

- build sso / build selfee (the build runner: inputs, model load, every step, parts, assembly,
  the dataset folder with its minimal card; the full data card's separability is left out, it is
  the same for any engine) vs a plain script that loads the model once and makes the same
  generate_batch / answer_logps calls (same conversations, same per-conversation seeds, so the
  texts are identical, which the bench checks);
- build selfee at chunk sizes 4, 16 and 64 (and whether the three datasets are equal);
- peak RSS of build sao vs the plain script's (at most 16 prompts: the memory is the model's).

Goals: build >= 0.9x the plain script; chunk 4 within 10% of chunk 64; sao peak RSS <= 1.3x.

    python bench/build.py [num_prompts=64] [max_new_tokens=32] [rounds=2]

Each measurement runs once per round, the rounds interleaved, and the fastest is kept: on a
shared 2-core machine the same child varied by up to 30% between runs (same texts, same work).
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOPICS = ["sleep", "budgeting", "gardening", "python", "cooking rice", "running", "learning french",
          "saving water", "job interviews", "writing emails", "photography", "chess", "stress",
          "public speaking", "composting", "bike repair"]


def prompts(n: int) -> list[str]:
    return [f"Give me two practical tips about {TOPICS[i % len(TOPICS)]} (case {i})." for i in range(n)]


def chat_seed(seed: int, step: str, chat: list) -> int:
    """The seed selfpref.pipelines.llms gives a conversation (restated: this side is plain)."""
    blob = json.dumps([seed, step, chat], sort_keys=True, ensure_ascii=False)
    return int(hashlib.sha256(blob.encode()).hexdigest()[:15], 16)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# --- the child processes ------------------------------------------------------------------------

def run_build(method: str, prompt_file: str, n: int, tokens: int, chunk: int, out: str) -> dict:
    from selfpref.pipelines.config import BuildConfig
    from selfpref.pipelines.run import build

    config = BuildConfig(method=method, prompts=prompt_file if method != "sao" else None,
                         num_prompts=n, max_new_tokens=tokens, chunk_size=chunk, seed=0)
    record = build(config, out)
    return {"kept": record.funnel[0]["kept"], "dropped": record.funnel[0]["dropped"]}


def run_plain(method: str, prompt_file: str, n: int, tokens: int, out: str) -> dict:
    """The same calls as the build, written out by hand in one process."""
    import random

    from selfpref.models.local import LocalModel
    from selfpref.pipelines.config import BuildConfig

    config = BuildConfig(method=method, num_prompts=n, max_new_tokens=tokens)
    model = LocalModel(None, batch_size=config.batch_size).load()

    def generate(step: str, chats: list, n_gen: int = 1, max_new: int | None = None,
                 temperature: float | None = None) -> list[list[str]]:
        temp = config.temperature if temperature is None else temperature
        return model.generate(chats, num_generations=n_gen, max_new_tokens=max_new or tokens,
                              temperature=temp, top_p=config.top_p,
                              seeds=[chat_seed(0, step, c) for c in chats])

    texts = [json.loads(line)["prompt"] for line in Path(prompt_file).read_text().splitlines()][:n]
    result: dict = {}
    if method == "sso":
        from selfpref.pipelines.features import (
            ALLOCATE_TEMPLATE,
            CONCISION,
            FEATURES,
            system_prompt,
        )
        from selfpref.pipelines.parsing import parse_features

        names = [f.name for f in FEATURES]
        by_name = {f.name: f for f in FEATURES}
        alloc = generate("allocate_features", [user(ALLOCATE_TEMPLATE.format(names=", ".join(names), query=p))
                                               for p in texts], max_new=16, temperature=0.0)
        chats = []
        for p, a in zip(texts, alloc):  # SSO A.3: two features allocated, one picked, Concision at 0.2
            rng = random.Random(int(hashlib.sha256(f"0:{p}".encode()).hexdigest()[:16], 16))
            allocated = parse_features(a[0], names)[:2]
            allocated += rng.sample([x for x in names if x not in allocated], 2 - len(allocated))
            picked = [by_name[rng.choice(allocated)]]
            if rng.random() < config.concision_probability:
                picked.append(CONCISION)
            chats += [[{"role": "system", "content": system_prompt(picked, True)}, *user(p)],
                      [{"role": "system", "content": system_prompt(picked, False)}, *user(p)], user(p)]
        result["texts"] = generate("principled_answers", chats)
    elif method == "selfee":
        answers = generate("answer_pair", [user(p) for p in texts], n_gen=2)
        result["texts"] = answers
        pairs = [(user(p), a) for p, two in zip(texts, answers) for a in two]
        result["logps"] = model.answer_logps([c for c, _ in pairs], [a for _, a in pairs])[0]
    elif method == "sao":
        from selfpref.judges.pairwise import both_orders
        from selfpref.pipelines.domains import DOMAINS
        from selfpref.pipelines.parsing import clean_prompt
        from selfpref.pipelines.prompting import PERSONA_TEMPLATE, PROMPT_TEMPLATE

        domains = DOMAINS[:]
        random.Random(0).shuffle(domains)
        short = config.prompt_max_new_tokens
        personas = generate("write_persona", [user(PERSONA_TEMPLATE.format(domain=domains[i % len(domains)]))
                                              for i in range(n)], max_new=short)
        written = generate("write_prompt", [user(PROMPT_TEMPLATE.format(persona=p[0])) for p in personas if p[0]],
                           max_new=short)
        kept = [c for c in (clean_prompt(w[0])[0] for w in written) if c]
        answers = generate("answer_pair", [user(p) for p in kept], n_gen=2)
        judged = [c for p, (a, b) in zip(kept, answers) if a and b and a != b for c in both_orders(p, a, b)]
        result["texts"] = generate("self_judge", judged, max_new=config.judge_max_new_tokens, temperature=0.0)
    Path(out).write_text(json.dumps(result))
    return {}


def child(argv: list[str]) -> None:
    sys.path.insert(0, str(HERE))
    from _peak import peak_rss_mb

    kind, method, prompt_file, n, tokens, chunk, out = argv
    start = time.perf_counter()
    if kind == "build":
        info = run_build(method, prompt_file, int(n), int(tokens), int(chunk), out)
    else:
        info = run_plain(method, prompt_file, int(n), int(tokens), out)
    print(json.dumps({"seconds": time.perf_counter() - start, "peak_mb": peak_rss_mb(), **info}))


# --- the driver ---------------------------------------------------------------------------------

def measure(kind: str, method: str, prompt_file: Path, n: int, tokens: int, chunk: int, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, method, str(prompt_file), str(n), str(tokens),
           str(chunk), str(out)]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode != 0:
        raise SystemExit(f"{kind} {method} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall"] = time.perf_counter() - start  # with the interpreter's start and imports
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds: on a shared machine the wall clock measures the neighbours too
    result["cpu"] = (after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime)
    print(f"  {kind:5s} {method:6s} chunk {chunk:3d}: {result['wall']:7.1f} s wall, "
          f"{result['cpu']:7.1f} s CPU, peak {result['peak_mb']:6.0f} MB, load "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    return result


def same_texts(build_dir: Path, plain_file: Path, method: str) -> bool:
    import polars as pl

    df = pl.read_parquet(build_dir / "data" / "train-00000-of-00001.parquet")
    plain = json.loads(plain_file.read_text())["texts"]
    if method == "sso":
        built = {t for row in df.iter_rows(named=True) for t in (row["chosen"], row["rejected"], row["original"])}
        return built <= {t[0] for t in plain}
    built = {t for row in df.iter_rows(named=True) for t in (row["chosen"], row["rejected"])}
    return built <= {t for two in plain for t in two}


def best(runs: list[dict]) -> dict:
    """The fastest of the rounds (wall and CPU each): a shared machine only ever adds time."""
    return {**runs[0], "wall": min(r["wall"] for r in runs), "cpu": min(r["cpu"] for r in runs),
            "peak_mb": max(r["peak_mb"] for r in runs)}


def main(n: int = 64, tokens: int = 32, rounds: int = 2) -> None:
    import polars as pl

    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        tmp = Path(tmp)
        prompt_file = tmp / "prompts.jsonl"
        prompt_file.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts(n)))
        print(f"embedded model, {n} prompts, {tokens} new tokens, {os.cpu_count()} cores, {rounds} "
              f"interleaved rounds (the fastest of each kept); load {os.getloadavg()[0]:.1f}", flush=True)
        n_sao = min(n, 16)  # peak memory is the model's, not the prompts'
        plan = [(kind, method, chunk, n_sao if method == "sao" else n)
                for method in ("sso", "selfee", "sao") for kind, chunk in (("build", 16), ("plain", 0))]
        plan += [("build", "selfee", 4, n), ("build", "selfee", 64, n)]
        runs: dict[tuple, list[dict]] = {}
        for r in range(rounds):
            for kind, method, chunk, count in plan:
                out = tmp / f"{method}-{kind}-c{chunk}-r{r}"
                if kind == "plain":
                    out = out.with_suffix(".json")
                runs.setdefault((kind, method, chunk), []).append(
                    {**measure(kind, method, prompt_file, count, tokens, chunk, out), "out": out})
        got = {key: best(v) for key, v in runs.items()}
        first = {key: v[0]["out"] for key, v in runs.items()}
        same = {m: same_texts(first[("build", m, 16)], first[("plain", m, 0)], m) for m in ("sso", "selfee")}
        frames = [pl.read_parquet(first[("build", "selfee", c)] / "data").drop("prompt_id") for c in (4, 16, 64)]
        equal = all(f.equals(frames[0]) for f in frames[1:])

        print("\nresults (ratios of the fastest rounds, wall clock and CPU seconds; goal in brackets)")
        for method in ("sso", "selfee"):
            b, p = got[("build", method, 16)], got[("plain", method, 0)]
            print(f"  build {method} / plain script speed: {p['wall'] / b['wall']:.2f}x wall "
                  f"({b['wall']:.1f} s vs {p['wall']:.1f} s), {p['cpu'] / b['cpu']:.2f}x CPU "
                  f"({b['cpu']:.1f} s vs {p['cpu']:.1f} s) [>= 0.9]; same texts: {same[method]}")
        chunks = {c: got[("build", "selfee", c)] for c in (4, 16, 64)}
        table = ", ".join(f"chunk {c}: {chunks[c]['wall']:.1f} s wall / {chunks[c]['cpu']:.1f} s CPU"
                          for c in (4, 16, 64))
        print(f"  build selfee {table}; chunk 4 / chunk 64 = {chunks[4]['wall'] / chunks[64]['wall']:.2f} "
              f"wall, {chunks[4]['cpu'] / chunks[64]['cpu']:.2f} CPU [<= 1.10]; datasets equal across "
              f"chunk sizes: {equal}")
        sao_b, sao_p = got[("build", "sao", 16)], got[("plain", "sao", 0)]
        print(f"  build sao peak RSS {sao_b['peak_mb']:.0f} MB vs plain {sao_p['peak_mb']:.0f} MB: "
              f"{sao_b['peak_mb'] / sao_p['peak_mb']:.2f}x [<= 1.3]; speed {sao_p['wall'] / sao_b['wall']:.2f}x "
              f"wall, {sao_p['cpu'] / sao_b['cpu']:.2f}x CPU")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main(*[int(a) for a in sys.argv[1:]])
