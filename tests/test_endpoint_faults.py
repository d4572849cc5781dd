"""Retries, adaptive concurrency, the probe and accounting, against the fake server of
tests/openai_server.py (a real server cannot be made to return 429s or fewer choices on
demand, and on the shared CPU a real one takes seconds per request: the fault schedule runs
here against the fake; tests/test_endpoint_real.py runs the builds against transformers serve).
"""

from __future__ import annotations

import json
import random

import pytest

from selfpref import SelfprefError
from selfpref.data.refs import read_dataset
from selfpref.models.endpoint_retry import AdaptiveLimit, RetryPolicy, retry_after_seconds
from selfpref.models.openai_compat import OpenAICompatModel
from selfpref.pipelines.config import BuildConfig
from selfpref.pipelines.run import build
from tests.openai_server import SECRET, FaultProxy, every_fourth, serve, work

PROMPTS = ["How do I boil an egg?", "Why is the sea salty?", "What is a prime?", "Name a river."]


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("FAKE_KEY", SECRET)
    return "FAKE_KEY"


def _prompts(folder, texts=PROMPTS):
    path = folder / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": t}) + "\n" for t in texts))
    return str(path)


def _config(url, prompts, **extra):
    return BuildConfig(**{"method": "sao", "backend": "openai", "base_url": url, "api_key_env": "FAKE_KEY",
                          "model": "sampler", "prompts": prompts, "chunk_size": 1, "max_concurrency": 4,
                          "retry_backoff": 0.01, **extra})


def test_faults_on_a_quarter_of_the_requests_change_no_row(tmp_path, key):
    with serve() as (server, url):
        build(_config(url, _prompts(tmp_path)), tmp_path / "clean")
        with FaultProxy(url.removesuffix("/v1"), every_fourth, stall=1.5, retry_after="1") as proxy:
            build(_config(proxy.url, _prompts(tmp_path), request_timeout=0.5), tmp_path / "faulty")
    clean, _ = read_dataset(tmp_path / "clean")
    faulty, record = read_dataset(tmp_path / "faulty")
    columns = ["prompt", "chosen", "rejected", "judge_raw", "judge_consistent", "confidence"]
    assert faulty.select(columns).sort("prompt").equals(clean.select(columns).sort("prompt"))
    assert proxy.count >= 16 and set(proxy.faults) == {"429", "500", "close", "stall"}
    usage = record.stats["usage"]
    assert usage["retries"] == {"429": proxy.faults["429"], "5xx": proxy.faults["500"],
                                "connection": proxy.faults["close"], "timeout": proxy.faults["stall"]}
    assert usage["requests_sent"] == proxy.forwarded  # every answered request, counted once
    [endpoint] = usage["endpoints"].values()
    assert endpoint["capabilities"]["choices_per_request"] == 2


def test_an_endpoint_that_stays_down_stops_in_one_line_and_the_rerun_resumes(tmp_path, key, capsys):
    from selfpref.cli import EXIT_USER, run

    prompts = _prompts(tmp_path, PROMPTS[:2])
    with serve() as (server, url):
        # the probe (3 requests) and the first chunk (answers, 2 verdicts) pass; then it goes down
        with FaultProxy(url.removesuffix("/v1"), lambda i: "close" if i >= 6 else None) as proxy:
            args = ["build", "sao", "-o", str(tmp_path / "out"), "--backend", "openai", "--base-url",
                    proxy.url, "--api-key-env", "FAKE_KEY", "--model", "sampler", "--prompts", prompts,
                    "--chunk-size", "1", "--batch-size", "1", "--max-retries", "2",
                    "--max-concurrency", "1"]
            assert run(args) == EXIT_USER
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1 and SECRET not in err
            assert "a request failed 3 times (connection x3)" in err and "finished chunks are kept" in err
            before = len(work(server.requests))
            proxy.schedule = lambda i: None  # the endpoint is back: the same command again
            assert run(args) == 0
            resent = [b for _, b in work(server.requests)[before:]]
    assert "resuming: 1 of 2 chunks already finished" in capsys.readouterr().out
    asked = {b["messages"][-1]["content"] for b in resent if b.get("n") == 2}
    assert asked == {PROMPTS[1]}  # the finished chunk's prompt is not asked again
    df, _ = read_dataset(tmp_path / "out")
    assert df.height == 2


def test_a_server_that_returns_one_choice_gets_one_request_per_answer(key):
    with serve() as (server, url):
        server.max_choices = 1
        model = OpenAICompatModel(url, "sampler", api_key_env=key, max_concurrency=2)
        chats = [[{"role": "user", "content": "q1"}], [{"role": "user", "content": "q2"}]]
        answers = model.generate(chats, num_generations=2, temperature=0.7, seeds=[5, 6])
        bodies = [b for _, b in work(server.requests)]
    from selfpref.models.generation import sample_seed

    assert [sorted(a) for a in answers] == [sorted(["good answer (seed 5)", f"good answer (seed {sample_seed(5, 1)})"]),
                                            sorted(["good answer (seed 6)", f"good answer (seed {sample_seed(6, 1)})"])]
    assert len(bodies) == 4 and all("n" not in b for b in bodies)
    assert model.capabilities["choices_per_request"] == 1


def test_every_sampling_field_is_sent_at_its_neutral_value(key):
    with serve() as (server, url):
        model = OpenAICompatModel(url, "sampler", api_key_env=key)
        model.generate([[{"role": "user", "content": "q"}]], num_generations=2, max_new_tokens=7,
                       temperature=0.6, top_p=0.9, seeds=[1])
        [(_, body)] = work(server.requests)
    assert body["max_completion_tokens"] == 7 and "max_tokens" not in body
    assert (body["temperature"], body["top_p"], body["top_k"], body["min_p"]) == (0.6, 0.9, -1, 0.0)
    assert (body["repetition_penalty"], body["presence_penalty"], body["frequency_penalty"]) == (1.0, 0.0, 0.0)
    assert "generation_config" not in body  # this server samples by itself


def test_a_server_that_cannot_sample_is_refused_before_any_work(key, tmp_path):
    with serve() as (server, url):  # model "m" echoes the prompt whatever the seed
        with pytest.raises(SelfprefError, match="does not sample, so both answers of a pair would be one"):
            build(_config(url, _prompts(tmp_path), model="m"), tmp_path / "out")
        assert work(server.requests) == []


@pytest.mark.parametrize("model, status", [("deny", 401), ("echo", 400)])
def test_401_and_400_are_never_retried(key, model, status):
    with serve() as (server, url):
        client = OpenAICompatModel(url, model, api_key_env=key, max_retries=5, retry_backoff=0.01)
        with pytest.raises(SelfprefError, match=f"HTTP {status}"):
            client._send({"model": model, "messages": [{"role": "user", "content": "hi"}]})
        assert len(server.requests) == 1 and client.retrier.retries == {}


def test_retry_after_and_backoff():
    assert retry_after_seconds("3") == 3.0 and retry_after_seconds(None) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == pytest.approx(10.0)
    policy, rng = RetryPolicy(backoff=1.0), random.Random(0)
    waits = [policy.wait(a, None, rng) for a in range(8)]
    assert all(0.5 * min(60, 2 ** a) <= w <= min(60, 2 ** a) for a, w in enumerate(waits))
    assert policy.wait(0, 7.0, rng) == 7.0  # never sooner than the server asks


def test_concurrency_halves_on_429_and_grows_back_slowly():
    limit = AdaptiveLimit(8)
    limit.throttled()
    limit.throttled()
    assert limit.limit == 2 and limit.lowest == 2
    for _ in range(2):
        limit.succeeded()
    assert limit.limit == 3  # one more after `limit` successes
    for _ in range(2):
        limit.succeeded()
    assert limit.limit == 3
    limit.succeeded()
    assert limit.limit == 4


def test_accounting_and_price_in_the_record_inspect_and_card(tmp_path, key, capsys):
    from selfpref.cli import run

    with serve() as (server, url):
        assert run(["build", "sao", "-o", str(tmp_path / "out"), "--backend", "openai", "--base-url", url,
                    "--api-key-env", "FAKE_KEY", "--model", "sampler", "--prompts",
                    _prompts(tmp_path, PROMPTS[:2]), "--price", "2,8"]) == 0
        bodies = [b for _, b in server.requests]
    _, record = read_dataset(tmp_path / "out")
    usage = record.stats["usage"]
    answers = usage["steps"]["answer_pair"]
    # the fake counts words: "good answer (seed S)" 4 words, "bad answer, longer (seed S)" 5
    assert answers["requests"] == 2 and answers["completion_tokens"] == 2 * 9
    assert answers["prompt_tokens"] == sum(len(p.split()) for p in PROMPTS[:2])
    assert usage["requests_sent"] == len(bodies)
    expected = (usage["prompt_tokens"] * 2 + usage["completion_tokens"] * 8) / 1e6
    assert usage["cost"]["total"] == pytest.approx(expected)
    card = (tmp_path / "out" / "README.md").read_text()
    assert usage["cost"]["line"] in card and f"requests sent: {len(bodies)}" in card
    capsys.readouterr()
    assert run(["inspect", str(tmp_path / "out")]) == 0
    shown = capsys.readouterr().out
    assert usage["cost"]["line"] in shown and "answer_pair:" in shown
    with pytest.raises(SelfprefError, match="--price '2': give two prices"):
        BuildConfig(method="sao", price="2")


def test_a_local_model_counts_tokens_with_its_tokenizer(tiny_model_path):
    from selfpref.models.generation import chat_input_ids
    from selfpref.models.local import LocalModel
    from selfpref.pipelines.llms import make_llm

    local = LocalModel(str(tiny_model_path)).load()
    llm = make_llm("transformers", str(tiny_model_path), model_id="tiny", step="answer_pair").bind(local)
    chats = [[{"role": "user", "content": "Why is the sea salty?"}], [{"role": "user", "content": "Hi"}]]
    out = llm.generate(chats, num_generations=2, max_new_tokens=5, temperature=0.7)
    texts = [t for row in out for t in row["generations"]]
    tok = local.tokenizer
    assert llm.usage == {"prompt_tokens": sum(len(chat_input_ids(tok, c)) for c in chats),
                         "completion_tokens": sum(len(tok.encode(t, add_special_tokens=False)) for t in texts)}
    assert 0 < llm.usage["completion_tokens"] <= 2 * 2 * 5 + 4  # re-encoding may merge or split a little


def test_one_iterate_step_generates_through_the_endpoint(tmp_path, tiny_model_path, key):
    """iterate's build on --backend openai (the fake serving the tiny model's name), then training
    the tiny model locally; the record's endpoint options. (test_endpoint_real runs one iterate
    step against transformers serve with the 135M model.)"""
    from selfpref.loop.iterate import IterateConfig, iterate

    with serve() as (server, url):
        server.samplers.add(str(tiny_model_path))
        rows = iterate(IterateConfig(
            method="sao", iterations=1, output=str(tmp_path / "loop"), model=str(tiny_model_path),
            prompts=_prompts(tmp_path, PROMPTS[:2]), num_prompts=2,
            build={"backend": "openai", "base_url": url, "api_key_env": key, "max_retries": 2,
                   "max_concurrency": 2},
            train={"max_steps": 1, "per_device_train_batch_size": 2, "max_length": 64, "warmup_steps": 0}))
        answered = [b for _, b in work(server.requests) if b.get("n") == 2]
    assert len(answered) == 2  # both prompts' answers came from the endpoint
    _, record = read_dataset(tmp_path / "loop" / "iter-1" / "raw")
    assert record.stats["usage"]["requests_sent"] >= 2 + 4  # answers, verdicts (and the probe)
    assert record.parameters["max_retries"] == 2 and record.parameters["backend"] == "openai"
    assert rows[0]["model"] and (tmp_path / "loop" / "iter-1" / "model" / "config.json").is_file()


def test_choices_missing_after_the_probe_are_fetched_not_left_empty(key):
    from selfpref.models.generation import sample_seed

    with serve() as (server, url):
        model = OpenAICompatModel(url, "sampler", api_key_env=key)
        model.probe(sampling=True)
        assert model.capabilities["choices_per_request"] == 2
        server.max_choices = 1  # a server that caps n under load
        [answers] = model.generate([[{"role": "user", "content": "q"}]], num_generations=2,
                                   temperature=0.7, seeds=[9])
        bodies = [b for _, b in work(server.requests)]
    assert answers == ["good answer (seed 9)", f"good answer (seed {sample_seed(9, 1)})"]
    assert [b.get("n") for b in bodies] == [2, None]  # the missing answer: one more request
