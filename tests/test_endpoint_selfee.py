"""SELFEE's answer log-probs from an endpoint's prompt log-probs, against the fake server whose
numbers come from a real (tiny) model: vLLM's ``prompt_logprobs`` and OpenAI's legacy ``echo``
layouts, compared with local scoring of the same model; a server with neither is refused.
(transformers serve has neither: its completions endpoint answers 422 to both fields.)
"""

from __future__ import annotations

import pytest

from selfpref import SelfprefError
from selfpref.models.openai_compat import OpenAICompatModel
from tests.openai_server import SECRET, serve

PROMPTS = [[{"role": "user", "content": "Why is the sky blue?"}],
           [{"role": "user", "content": "Name a prime number."}]]
ANSWERS = ["Because air scatters blue light more than red light.", "Seven."]


@pytest.fixture(scope="module")
def scorer(tiny_model_path):
    """log p(ids[i] | ids[:i]) by the tiny model: what a vLLM server with it would return."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path).eval()

    def score(ids):
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([ids])).logits[0].double()
        logps = torch.log_softmax(logits, dim=-1)
        return [0.0] + [float(logps[i - 1, t]) for i, t in enumerate(ids) if i > 0]

    return score


@pytest.mark.parametrize("style", ["prompt_logprobs", "echo"])
def test_endpoint_answer_logps_equal_local_scoring(tiny_model_path, scorer, monkeypatch, style):
    from selfpref.models.local import LocalModel

    monkeypatch.setenv("FAKE_KEY", SECRET)
    local_sums, local_counts = LocalModel(str(tiny_model_path)).answer_logps(PROMPTS, ANSWERS)
    with serve() as (server, url):
        server.scorer, server.prompt_logprobs = scorer, style
        model = OpenAICompatModel(url, str(tiny_model_path), api_key_env="FAKE_KEY")
        sums, counts = model.answer_logps(PROMPTS, ANSWERS)
        bodies = [b for _, b in server.requests]
    assert counts == local_counts and all(c > 1 for c in counts)
    for remote, local, n in zip(sums, local_sums, counts):
        assert abs(remote - local) <= 1e-3 * n  # within 1e-3 per token
    assert model.capabilities["prompt_logprobs"] == style
    assert all(isinstance(b["prompt"], list) for b in bodies)  # token ids, rendered here


def test_a_server_without_prompt_logprobs_is_refused_in_one_line(tiny_model_path, monkeypatch):
    monkeypatch.setenv("FAKE_KEY", SECRET)
    with serve() as (server, url):
        model = OpenAICompatModel(url, str(tiny_model_path), api_key_env="FAKE_KEY")
        with pytest.raises(SelfprefError, match="returns no log-probs of the prompt's tokens .*vllm serve"):
            model.answer_logps(PROMPTS, ANSWERS)
        assert len(server.requests) == 2  # one probe per layout, nothing else


def test_build_selfee_scores_through_the_endpoint(tiny_model_path, scorer, monkeypatch, tmp_path):
    import json

    from selfpref.data.refs import read_dataset
    from selfpref.models.local import LocalModel
    from selfpref.pipelines.config import BuildConfig
    from selfpref.pipelines.run import build

    monkeypatch.setenv("FAKE_KEY", SECRET)
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p[0]["content"]}) + "\n" for p in PROMPTS))
    with serve() as (server, url):
        server.scorer, server.prompt_logprobs = scorer, "prompt_logprobs"
        server.samplers.add(str(tiny_model_path))
        build(BuildConfig(method="selfee", backend="openai", base_url=url, api_key_env="FAKE_KEY",
                          model=str(tiny_model_path), prompts=str(prompts), no_cache=True), tmp_path / "out")
        scored = [b for _, b in server.requests if "prompt" in b]
    df, record = read_dataset(tmp_path / "out")
    assert df.height == 2 and len(scored) == 1 + 2 * 2  # the probe, then both answers of each pair
    local = LocalModel(str(tiny_model_path))
    for row in df.iter_rows(named=True):
        chat = [{"role": "user", "content": row["prompt"]}]
        sums, _ = local.answer_logps([chat, chat], [row["chosen"], row["rejected"]])
        assert row["logp_policy_chosen"] == pytest.approx(sums[0], abs=1e-2)
        assert row["logp_policy_rejected"] == pytest.approx(sums[1], abs=1e-2)
