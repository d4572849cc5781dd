"""Builds, eval and iterate against a real OpenAI-compatible server: `transformers serve`.

One server for the module (the embedded SmolLM2-135M on 127.0.0.1, a free port), few prompts and
short answers: it generates on a shared 2-core CPU. What this server does, measured: it ignores
``n`` (one choice per request), samples greedily unless the request's ``generation_config`` field
turns sampling on, refuses fields outside OpenAI's schema with 422 (``top_k``) and returns no
log-probs. The fault schedule runs against the fake server (tests/test_endpoint_faults.py): on
this shared CPU one real request takes from one to thirty seconds, so a stall "past the timeout"
cannot be told from a slow answer.
"""

from __future__ import annotations

import json
import os

import polars as pl
import pytest

from selfpref import SelfprefError
from selfpref.data.refs import read_dataset
from selfpref.data.schema import validate
from selfpref.pipelines.config import BuildConfig
from selfpref.pipelines.run import build
from tests.openai_server import transformers_serve

KEY_ENV = "SELFPREF_TEST_ENDPOINT_KEY"
PROMPTS = ["How do I keep basil fresh?", "Why do cats purr?"]


@pytest.fixture(scope="session")
def real_server(default_model_path, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "transformers-serve.log"
    os.environ[KEY_ENV] = "EMPTY"  # transformers serve takes any key
    try:
        with transformers_serve(str(default_model_path), log=str(log)) as url:
            yield url, str(default_model_path)
    finally:
        os.environ.pop(KEY_ENV, None)


def _prompts(folder, texts=PROMPTS):
    path = folder / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": t}) + "\n" for t in texts))
    return str(path)


def _config(url, model, prompts, **extra):
    # One request in flight: transformers serve seeds by resetting torch's global generator when a
    # request arrives, so concurrent requests would draw from each other's streams.
    return BuildConfig(**{"method": "sao", "backend": "openai", "base_url": url, "api_key_env": KEY_ENV,
                          "model": model, "prompts": prompts, "max_new_tokens": 12,
                          "prompt_max_new_tokens": 24, "judge_max_new_tokens": 8, "max_concurrency": 1,
                          "chunk_size": 1, **extra})


def _pairs_are_real(df):
    validate(df)  # the record contract
    assert df.height >= 1
    for chosen, rejected in zip(df["chosen"], df["rejected"]):
        assert chosen.strip() and rejected.strip() and chosen != rejected


@pytest.fixture(scope="module")
def sao_build(real_server, tmp_path_factory):
    url, model = real_server
    folder = tmp_path_factory.mktemp("sao-real")
    # 16 tokens: with 12 the 135M judge's verdicts on these answers did not parse (deterministic:
    # one request in flight, every request seeded)
    build(_config(url, model, _prompts(folder), max_new_tokens=16), folder / "out")
    return read_dataset(folder / "out"), folder


def test_build_sao_against_transformers_serve(sao_build):
    (df, record), _ = sao_build
    _pairs_are_real(df)
    [endpoint] = record.stats["usage"]["endpoints"].values()
    caps = endpoint["capabilities"]
    # ignores n, samples only through generation_config, refuses top_k: the probe saw all three
    assert caps["choices_per_request"] == 1 and caps["sampling"] == "generation_config"
    assert "top_k" not in caps["sampling_fields"] and "frequency_penalty" in caps["sampling_fields"]
    usage = record.stats["usage"]
    assert usage["steps"]["answer_pair"]["requests"] == 2 * len(PROMPTS)  # one per missing choice
    assert usage["steps"]["self_judge"]["requests"] == 2 * len(PROMPTS)  # both orders
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["requests_sent"] >= usage["steps"]["answer_pair"]["requests"] + 4


def test_logits_judge_is_refused_before_any_answer(real_server, tmp_path):
    url, model = real_server
    with pytest.raises(SelfprefError, match=r"--judge logits: .* returns no log-probabilities .*use --judge text"):
        build(_config(url, model, _prompts(tmp_path), judge="logits"), tmp_path / "out")
    parts = list((tmp_path / ".out.parts").rglob("part-*.json"))
    assert parts == []  # refused in the preflight: no chunk was answered


@pytest.mark.parametrize("method", ["sso", "alignez"])
def test_build_sso_and_alignez_against_transformers_serve(real_server, tmp_path, method):
    url, model = real_server
    build(_config(url, model, _prompts(tmp_path, PROMPTS[:1]), method=method, judge=None,
                  judge_max_new_tokens=16), tmp_path / "out")
    df, record = read_dataset(tmp_path / "out")
    _pairs_are_real(df)
    assert set(df["method"]) == {method}
    assert record.stats["usage"]["requests_sent"] > 0


def test_eval_with_the_judge_on_the_endpoint(real_server, tmp_path):
    from selfpref.eval.run import EvalConfig, run_eval

    url, model = real_server
    for side, answers in (("a", ["Wrap it in a damp towel.", "Nobody knows."]),
                          ("b", ["Keep the stems in water like flowers.", "Purring signals contentment."])):
        (tmp_path / f"{side}.jsonl").write_text("".join(
            json.dumps({"prompt": p, "answer": a}) + "\n" for p, a in zip(PROMPTS, answers)))
    summary = run_eval(EvalConfig(output=str(tmp_path / "eval"), answers_a=str(tmp_path / "a.jsonl"),
                                  answers_b=str(tmp_path / "b.jsonl"), prompts=_prompts(tmp_path),
                                  judge="text", judge_model=model, judge_base_url=url,
                                  judge_api_key_env=KEY_ENV, judge_max_new_tokens=8, bootstrap=0,
                                  max_concurrency=1))
    table = pl.read_parquet(tmp_path / "eval" / "judgments.parquet")
    assert summary["n"] == 2 and table.height == 2
    assert all(len(raw) == 2 and all(r.strip() for r in raw) for raw in table["judge_raw"])


def test_one_iterate_step_generates_through_transformers_serve(real_server, tmp_path):
    """iterate's build on the real server (the served embedded model writes the pairs; the length
    rule labels them, since this server gives no log-probs and the 135M text judge rarely parses
    at a few tokens), then one SimPO step on the same model's local weights."""
    from selfpref.loop.iterate import IterateConfig, iterate

    url, model = real_server
    rows = iterate(IterateConfig(
        method="sao", iterations=1, output=str(tmp_path / "loop"), model=model,
        prompts=_prompts(tmp_path), num_prompts=2,
        build={"backend": "openai", "base_url": url, "api_key_env": KEY_ENV, "max_new_tokens": 12,
               "judge": "length", "max_concurrency": 1, "chunk_size": 1},
        train={"max_steps": 1, "per_device_train_batch_size": 2, "max_length": 96,
               "warmup_steps": 0}))
    df, record = read_dataset(tmp_path / "loop" / "iter-1" / "raw")
    _pairs_are_real(df)
    assert record.parameters["backend"] == "openai"
    assert record.stats["usage"]["requests_sent"] >= 2  # the answers came from the server
    assert (tmp_path / "loop" / "iter-1" / "model" / "config.json").is_file() and rows[0]["model"]
