"""The request cache's file (keys, torn lines) and the step cache of local backends."""

import json

import polars as pl
import pytest
import yaml

from selfpref.cli import run as cli_run
from selfpref.data.refs import read_dataset
from selfpref.models.request_cache import RequestCache, request_key

REQUEST = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 2, "max_tokens": 8,
           "temperature": 0.6, "top_p": 0.95, "seed": 7}


def test_request_key_is_the_request_and_its_server():
    url = "http://127.0.0.1:8000/v1"
    key = request_key(url, REQUEST)
    # another server with a model of the same name is another key, as is any field of the body
    assert request_key("http://127.0.0.1:8001/v1", REQUEST) != key
    for field, value in [("model", "m2"), ("temperature", 0.7), ("top_p", 1.0), ("seed", 8),
                         ("n", 1), ("max_tokens", 9), ("messages", [{"role": "user", "content": "ho"}])]:
        assert request_key(url, {**REQUEST, field: value}) != key, field
    assert request_key(url, {k: v for k, v in REQUEST.items() if k != "seed"}) != key
    # key order, a trailing slash and credentials in the URL do not make another request
    assert request_key(url + "/", dict(reversed(list(REQUEST.items())))) == key
    assert request_key("http://user:secret@127.0.0.1:8000/v1", REQUEST) == key


def test_torn_last_line_is_skipped_and_the_next_entry_survives(tmp_path):
    cache = RequestCache(tmp_path)
    sent = []

    def send(request):
        sent.append(request)
        return {"choices": [{"text": request["messages"][0]["content"]}]}

    for word in ("a", "b"):
        cache.fetch("u", {**REQUEST, "messages": [{"role": "user", "content": word}]}, send)
    cache.close()
    with open(tmp_path / "requests.jsonl", "ab") as handle:  # a kill in the middle of a write
        handle.write(b'{"key": "0123", "response": {"choi')

    again = RequestCache(tmp_path)
    assert len(again) == 2 and again.unreadable == 1
    for word in ("a", "b", "c"):
        again.fetch("u", {**REQUEST, "messages": [{"role": "user", "content": word}]}, send)
    again.close()
    assert [r["messages"][0]["content"] for r in sent] == ["a", "b", "c"]
    assert again.counts() == {"sent": 1, "cached": 2}
    third = RequestCache(tmp_path)  # "c" was appended after the torn bytes, not glued to them
    assert len(third) == 3 and third.unreadable == 1
    assert third.get("u", {**REQUEST, "messages": [{"role": "user", "content": "c"}]}) == \
        {"choices": [{"text": "c"}]}


def test_a_failed_request_is_not_cached(tmp_path):
    cache = RequestCache(tmp_path)

    def fail(request):
        raise RuntimeError("HTTP 500")

    with pytest.raises(RuntimeError):
        cache.fetch("u", REQUEST, fail)
    assert cache.counts() == {"sent": 0, "cached": 0} and len(RequestCache(tmp_path)) == 0


TEXTS = {"answer_pair": ["first answer", "second, longer answer", "third", "fourth answer here"],
         "self_judge": ["A", "B", "B"], "option_probs": {"self_judge": [0.8, 0.3, 0.6]}}


def _scripted(tmp_path, script, **extra):
    from selfpref.pipelines.config import BuildConfig

    path = tmp_path / "script.yaml"
    path.write_text(yaml.safe_dump(script))
    prompts = tmp_path / "prompts.jsonl"
    pl.DataFrame({"prompt": [f"Question {i}?" for i in range(5)]}).write_ndjson(prompts)
    return BuildConfig(method="sao", backend="scripted", script=str(path), prompts=str(prompts),
                       num_prompts=5, chunk_size=2, **extra)


def test_changing_only_the_judge_reruns_only_the_judge_step(tmp_path):
    """Scripted backend: the rebuild with --judge logits takes its answers from the step cache
    (its answer step would raise if it ran) and runs the judge."""
    from selfpref.pipelines.run import build

    build(_scripted(tmp_path, TEXTS), tmp_path / "text")
    first, _ = read_dataset(tmp_path / "text")
    broken = {**TEXTS, "raise": {"answer_pair": "the answers must come from the step cache"}}
    build(_scripted(tmp_path, broken, judge="logits"), tmp_path / "logits")
    df, record = read_dataset(tmp_path / "logits")
    assert record.stats["step_cache"] == {"answer_pair": {"computed": 0, "cached": 5},
                                          "self_judge": {"computed": 5, "cached": 0}}
    assert record.stats["cache"] == str(tmp_path / ".selfpref-cache")
    assert sorted(map(sorted, zip(df["chosen"], df["rejected"]))) == \
        sorted(map(sorted, zip(first["chosen"], first["rejected"])))  # the same answer pairs
    assert set(df["labeler"]) == {"self-judge:HuggingFaceTB/SmolLM2-135M-Instruct|logits"}

    # other answer texts are another model: the step runs (and raises) instead of hitting
    changed = {**broken, "answer_pair": ["other", "answers"]}
    with pytest.raises(Exception, match="must come from the step cache"):
        build(_scripted(tmp_path, changed, judge="logits"), tmp_path / "changed")
    # --no-cache: every step runs again, and nothing is read
    with pytest.raises(Exception, match="must come from the step cache"):
        build(_scripted(tmp_path, broken, judge="logits", no_cache=True), tmp_path / "nocache")


def test_cache_command_info_and_clear(tmp_path, capsys):
    from selfpref.pipelines.run import build

    build(_scripted(tmp_path, TEXTS), tmp_path / "out")
    assert cli_run(["cache", "info", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    folder = tmp_path / ".selfpref-cache"
    assert f"cache {folder}: 10 entries" in shown  # 5 answer rows and 5 judge rows
    assert "steps/answer_pair.jsonl: 5 entries" in shown and "steps/self_judge.jsonl: 5 entries" in shown
    assert cli_run(["cache", "clear", str(folder)]) == 0
    assert "cleared" in capsys.readouterr().out and not folder.exists()
    assert cli_run(["cache", "info", str(tmp_path)]) == 0
    assert "0 entries" in capsys.readouterr().out


def test_no_cache_and_cache_dir_together_are_refused(tmp_path):
    from selfpref import SelfprefError

    with pytest.raises(SelfprefError, match="--cache-dir .* and --no-cache"):
        _scripted(tmp_path, TEXTS, no_cache=True, cache_dir=str(tmp_path / "c"))


def test_cache_dir_and_env(tmp_path, monkeypatch):
    from selfpref.pipelines.run import build

    monkeypatch.setenv("SELFPREF_CACHE_DIR", str(tmp_path / "shared"))
    record = build(_scripted(tmp_path, TEXTS), tmp_path / "a")
    assert record.stats["cache"] == str(tmp_path / "shared") and not (tmp_path / ".selfpref-cache").exists()
    assert json.loads((tmp_path / "a" / "selfpref.json").read_text())["parameters"].get("cache_dir") is None
    record = build(_scripted(tmp_path, TEXTS, cache_dir=str(tmp_path / "mine")), tmp_path / "b")
    assert record.stats["step_cache"]["answer_pair"] == {"computed": 5, "cached": 0}  # a new folder


def test_a_model_retrained_into_the_same_folder_is_another_step_key(tmp_path):
    import os

    from selfpref.pipelines._distilabel import Pipeline
    from selfpref.pipelines.llms import make_llm
    from selfpref.pipelines.step_cache import StepCache, step_identity
    from selfpref.pipelines.tasks import AnswerPair

    folder = tmp_path / "pi1"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"weights v1")
    with Pipeline(name="t"):
        step = AnswerPair(name="answer_pair", num_generations=2,
                          llm=make_llm("transformers", str(folder), model_id="pi1",
                                       generation={"max_new_tokens": 8, "temperature": 0.6, "top_p": 0.9}))
    cache, rows = StepCache(tmp_path), [{"prompt": "Why?"}]
    before = cache.keys(step_identity(step), rows)
    assert cache.keys(step_identity(step), rows) == before  # the same model, the same key
    (folder / "model.safetensors").write_bytes(b"weights v2, retrained")
    os.utime(folder / "model.safetensors", ns=(1, 1))
    retrained = cache.keys(step_identity(step), rows)
    assert retrained != before
    step.llm.generation_kwargs["temperature"] = 0.7  # and any generation setting
    assert cache.keys(step_identity(step), rows) not in (before, retrained)
