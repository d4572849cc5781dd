"""SAO's judge step through the judges layer: another judge model (SAO Table 8), the length and
random baselines (SAO Table 6), and builds on an OpenAI-compatible endpoint (a local fake)."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from selfpref import SelfprefError
from selfpref.data.refs import read_dataset
from selfpref.datacards import card_writer
from selfpref.pipelines.config import BuildConfig
from selfpref.pipelines.run import build
from tests.build_files import prompts_file as _prompts
from tests.build_files import script_file as _script
from tests.openai_server import SECRET, serve, work


@pytest.fixture(scope="module")
def judge_model_path(tiny_model_path, tmp_path_factory):
    """A second tiny model folder: the judge of a build whose generator is the first."""
    out = tmp_path_factory.mktemp("tiny-judge") / "judge"
    shutil.copytree(tiny_model_path, out)
    return out


def test_build_sao_judge_model_loads_each_model_once_and_names_the_judge(
        tmp_path, tiny_model_path, judge_model_path, monkeypatch):
    import selfpref.models.load as load
    from selfpref.models.local import LocalModel

    loads, real = [], load.load_causal_lm
    monkeypatch.setattr(load, "load_causal_lm", lambda ref, *a, **k: loads.append(ref) or real(ref, *a, **k))
    judged, scores = [], LocalModel.option_probabilities
    monkeypatch.setattr(LocalModel, "option_probabilities",
                        lambda self, chats, options: judged.append(self.ref) or scores(self, chats, options))
    record = build(BuildConfig(method="sao", model=str(tiny_model_path), judge="logits",
                               judge_model=str(judge_model_path), prompts=_prompts(tmp_path, ["q1?", "q2?", "q3?"]),
                               chunk_size=1, max_new_tokens=6), tmp_path / "out",
                   card=card_writer(license=None, separability=False))
    assert sorted(loads) == sorted([str(tiny_model_path), str(judge_model_path)])  # 3 chunks, 2 loads
    assert set(judged) == {str(judge_model_path)}  # the generator never judged
    df, rec = read_dataset(tmp_path / "out")
    assert df.height >= 1 and set(df["labeler"]) == {f"judge:{judge_model_path}|logits"}
    assert rec.models == {"generator": str(tiny_model_path), "judge": str(judge_model_path)}
    assert rec.parameters["judge_model"] == str(judge_model_path) and rec.parameters["judge"] == "logits"
    assert f"`{judge_model_path}`" in (tmp_path / "out" / "README.md").read_text()  # the card
    assert record.fingerprint == rec.fingerprint


def test_judge_model_equal_to_the_generator_is_the_self_judge(tmp_path):
    script = _script(tmp_path, answer_pair=["x1", "x2"], option_probs={"self_judge": [0.9, 0.2]})
    build(BuildConfig(method="sao", backend="scripted", script=script, judge_mode="logits",
                      judge_model="default", prompts=_prompts(tmp_path, ["p1"])), tmp_path / "out")
    df, rec = read_dataset(tmp_path / "out")
    assert df["labeler"].to_list() == ["self-judge:HuggingFaceTB/SmolLM2-135M-Instruct|logits"]
    assert rec.parameters["judge"] == "logits" and "judge_mode" not in rec.parameters


def test_length_judge_keeps_the_shorter_answer_and_calls_no_model(tmp_path):
    script = _script(tmp_path, answer_pair=["Short.", "A much longer answer.",  # 6 vs 21
                                            "Equal A", "Equal B",               # tie: dropped
                                            "Longer one here", "Tiny"])         # 15 vs 4
    prompts = _prompts(tmp_path, ["p1", "p2", "p3"])
    build(BuildConfig(method="sao", backend="scripted", script=script, judge="length", prompts=prompts),
          tmp_path / "out")
    df, rec = read_dataset(tmp_path / "out")
    rows = {r["prompt"]: r for r in df.to_dicts()}
    assert sorted(rows) == ["p1", "p3"] and rec.funnel[0]["dropped"] == {"judge_tie": 1}
    assert (rows["p1"]["chosen"], rows["p1"]["rejected"]) == ("Short.", "A much longer answer.")
    assert (rows["p3"]["chosen"], rows["p3"]["rejected"]) == ("Tiny", "Longer one here")
    assert rows["p1"]["judge_raw"] == ["length 6 vs 21", "length 21 vs 6"]
    assert rows["p3"]["judge_raw"] == ["length 15 vs 4", "length 4 vs 15"]
    assert all(r["judge_consistent"] and r["confidence"] == 1.0 for r in rows.values())
    assert set(df["labeler"]) == {"length-judge"}
    assert rec.models["judge"] == "length (the shorter answer wins; SAO Table 6)"
    pipeline = (tmp_path / "out" / "pipeline.yaml").read_text()
    assert "rule_judge" in pipeline and "self_judge" not in pipeline  # a rule step: no LLM at all

    build(BuildConfig(method="sao", backend="scripted", script=script, judge="length:longer",
                      prompts=prompts), tmp_path / "longer")
    longer, _ = read_dataset(tmp_path / "longer")
    assert longer.sort("prompt")["chosen"].to_list() == ["A much longer answer.", "Longer one here"]
    assert set(longer["labeler"]) == {"length-judge:longer"}


def _coin(seed: int, prompt: str, answer: str) -> str:
    """RandomJudge's draw for an answer (the judges layer's rule, written out by hand)."""
    return hashlib.sha256("\x00".join([str(seed), "", prompt, answer]).encode()).hexdigest()


def test_random_judge_is_seeded_and_does_not_depend_on_the_chunk_size(tmp_path, tiny_model_path):
    prompts = _prompts(tmp_path, [f"Question {i}?" for i in range(6)])
    frames = []
    for chunk, batch in ((1, 2), (6, 4)):
        out = tmp_path / f"out-{chunk}"
        build(BuildConfig(method="sao", model=str(tiny_model_path), judge="random", seed=7,
                          prompts=prompts, chunk_size=chunk, batch_size=batch, max_new_tokens=6), out)
        frames.append(read_dataset(out)[0].select("prompt", "chosen", "rejected", "labeler",
                                                  "confidence", "judge_consistent"))
    assert frames[0].height >= 4 and frames[0].equals(frames[1])
    for row in frames[0].to_dicts():  # the smaller seeded hash wins, whatever the order shown
        assert _coin(7, row["prompt"], row["chosen"]) < _coin(7, row["prompt"], row["rejected"])
        assert (row["labeler"], row["confidence"], row["judge_consistent"]) == ("random-judge", 0.5, True)


@pytest.mark.parametrize("options, message", [
    ({"judge": "vibes"}, "--judge 'vibes'"),
    ({"judge": "length", "judge_model": "m"}, "--judge-model: --judge length is a rule"),
    ({"judge": "logits", "judge_mode": "text"}, "--judge logits and --judge-mode text disagree"),
    ({"method": "sso", "judge": "random"}, "--judge random: only sao has a judge step"),
    ({"method": "sso", "judge_model": "m"}, "--judge-model: only sao"),
    ({"judge_api_key_env": "K"}, "--judge-api-key-env goes with --judge-base-url"),
    ({"judge_base_url": "http://127.0.0.1:9/v1"}, "--judge-base-url: also name the endpoint's model"),
])
def test_judge_options_are_checked_up_front(options, message):
    with pytest.raises(SelfprefError, match=message.replace("(", r"\(").replace("|", r"\|")):
        BuildConfig(**{"method": "sao", **options})


@pytest.mark.parametrize("judge", ["text", "logits"])
def test_build_on_an_openai_compatible_endpoint(tmp_path, monkeypatch, judge):
    monkeypatch.setenv("FAKE_KEY", SECRET)
    prompts = _prompts(tmp_path, ["How do I boil an egg?", "Why is the sea salty?"])
    with serve() as (server, url):
        build(BuildConfig(method="sao", backend="openai", base_url=url, api_key_env="FAKE_KEY",
                          model="sampler", judge=judge, prompts=prompts, chunk_size=1),
              tmp_path / "out")
        requests = [body for _, body in work(server.requests)]
    df, rec = read_dataset(tmp_path / "out")
    assert df.height == 2 and all(c.startswith("good answer") for c in df["chosen"])
    assert all(df["judge_consistent"])
    assert set(df["labeler"]) == {"self-judge:sampler" + ("|logits" if judge == "logits" else "")}
    answers = [b for b in requests if b.get("n") == 2]
    seeds = [b["seed"] for b in answers]
    assert len(answers) == 2 and len(set(seeds)) == 2  # one seed per conversation, in its request
    assert {f"good answer (seed {s})" for s in seeds} == set(df["chosen"])
    verdicts = [b for b in requests if "[Response A]" in b["messages"][-1]["content"]]
    assert len(verdicts) == 4 and all(b["temperature"] == 0.0 for b in verdicts)
    if judge == "logits":
        assert all(b["max_completion_tokens"] == 1 and b["logprobs"] for b in verdicts)
    written = "".join(p.read_text(errors="ignore") for p in (tmp_path / "out").rglob("*") if p.is_file()
                      and p.suffix in (".json", ".md", ".yaml"))
    assert SECRET not in written and rec.models["judge"] == "sampler"


def test_build_judges_on_its_own_endpoint(tmp_path, monkeypatch):
    """A local generator, an endpoint judge (SAO Table 6's GPT-4o feedback, here a fake server)."""
    monkeypatch.setenv("JUDGE_KEY", SECRET)
    script = _script(tmp_path, answer_pair=["good one", "bad one, longer", "worse one", "good two"])
    with serve() as (server, url):
        build(BuildConfig(method="sao", backend="scripted", script=script, judge="logits",
                          judge_model="sampler", judge_base_url=url.replace("://", "://user:pw@"),
                          judge_api_key_env="JUDGE_KEY", prompts=_prompts(tmp_path, ["p1", "p2"])),
              tmp_path / "out")
        verdicts = len(work(server.requests))
    df, rec = read_dataset(tmp_path / "out")
    assert df.sort("prompt")["chosen"].to_list() == ["good one", "good two"]
    masked = url.replace("://", "://***@")
    assert set(df["labeler"]) == {f"judge:sampler@{masked}|logits"}
    assert rec.models["judge"] == f"sampler@{masked}" and rec.parameters["judge_base_url"] == masked
    assert verdicts == 4  # two pairs, both orders, one request each
    written = json.dumps(rec.parameters) + (tmp_path / "out" / "pipeline.yaml").read_text()
    assert SECRET not in written and "pw@" not in written
