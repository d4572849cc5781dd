"""`--backend vllm` without a GPU: the adapter against a fake engine that records the calls and
answers in vLLM's shapes (RequestOutput.outputs[k].text, prompt_logprobs with None first,
{token id: Logprob} dicts). What these tests cannot show is that a real vLLM accepts the calls;
README says so."""

import math
import types

import polars as pl
import pytest

from selfpref.data.refs import read_dataset
from selfpref.models.scoring import answer_token_ids
from selfpref.models.vllm_backend import VLLMModel
from selfpref.pipelines.config import BuildConfig
from selfpref.pipelines.run import build


class Logprob:
    def __init__(self, logprob):
        self.logprob = logprob


class SamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


def fake_logprob(position):
    return -0.1 * (position % 7 + 1)


class FakeLLM:
    """vllm.LLM's surface: chat, generate (token-id prompts), get_tokenizer."""

    instances: list = []

    def __init__(self, model=None, seed=0, tokenizer_path=None, top=None, **options):
        from transformers import AutoTokenizer

        self.model, self.seed, self.options = model, seed, options
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_path or model)
        self.top = top  # option label -> P(label) of the generated token; a missing label is outside the top 20
        self.calls = []
        FakeLLM.instances.append(self)

    def get_tokenizer(self):
        return self.tokenizer

    def chat(self, messages, sampling_params=None, use_tqdm=True):
        self.calls.append(("chat", messages, [p.kwargs for p in sampling_params]))
        return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text=f" answer {k} to {m[-1]['content']} ")
                                               for k in range(p.kwargs["n"])])
                for m, p in zip(messages, sampling_params)]

    def generate(self, prompts, params, use_tqdm=True):
        self.calls.append(("generate", [p["prompt_token_ids"] for p in prompts], params.kwargs))
        outs = []
        for p in prompts:
            ids = p["prompt_token_ids"]
            if params.kwargs.get("prompt_logprobs") == 0:
                scored = [None] + [{tid: Logprob(fake_logprob(t))} for t, tid in enumerate(ids) if t]
                outs.append(types.SimpleNamespace(prompt_logprobs=scored, outputs=[]))
            else:
                allowed = params.kwargs["allowed_token_ids"]
                labels = [self.tokenizer.decode([t]) for t in allowed]
                probs = self.top(self.tokenizer.decode(ids)) if callable(self.top) else self.top
                top = {t: Logprob(math.log(probs[label])) for t, label in zip(allowed, labels)
                       if label in probs}
                top[1] = Logprob(-0.01)  # the raw distribution's best token, not an option
                outs.append(types.SimpleNamespace(outputs=[types.SimpleNamespace(
                    text=labels[0], logprobs=[top])], prompt_logprobs=None))
        return outs


@pytest.fixture
def engine(tiny_model_path):
    FakeLLM.instances = []
    return FakeLLM(tokenizer_path=str(tiny_model_path), top={"A": 0.6, "B": 0.2})


def test_generate_is_one_chat_call_with_sampling_params_per_conversation(engine):
    model = VLLMModel("m", engine=engine, sampling_params=SamplingParams)
    chats = [[{"role": "user", "content": "q1"}], [{"role": "user", "content": "q2"}]]
    texts = model.generate(chats, num_generations=2, max_new_tokens=5, temperature=0.7, top_p=0.9,
                           seeds=[11, 12])
    assert texts == [["answer 0 to q1", "answer 1 to q1"], ["answer 0 to q2", "answer 1 to q2"]]
    [(kind, messages, params)] = engine.calls
    assert kind == "chat" and messages == chats
    assert params == [dict(n=2, temperature=0.7, top_p=0.9, max_tokens=5, seed=s) for s in (11, 12)]


def test_answer_logps_sum_the_prompt_logprobs_of_the_answer_tokens(engine, tiny_model_path):
    model = VLLMModel("m", engine=engine, sampling_params=SamplingParams)
    prompts = [[{"role": "user", "content": "Hi"}], [{"role": "user", "content": "Longer question?"}]]
    answers = ["Hello!", "A longer answer here."]
    sums, counts = model.answer_logps(prompts, answers)
    [(kind, sequences, params)] = engine.calls
    assert kind == "generate" and params == dict(max_tokens=1, temperature=0.0, prompt_logprobs=0)
    for p, a, s, n, seq in zip(prompts, answers, sums, counts, sequences):
        full, n_prompt = answer_token_ids(engine.tokenizer, p, a)
        assert seq == full  # prompt + answer, tokenized with the chat template
        assert n == len(full) - n_prompt
        assert s == pytest.approx(sum(fake_logprob(t) for t in range(n_prompt, len(full))))


def test_forced_choice_from_the_logprobs_of_one_generated_token(engine):
    model = VLLMModel("m", engine=engine, sampling_params=SamplingParams)
    chats = [[{"role": "user", "content": "A or B?"}]]
    [[p_a, p_b]] = model.option_probabilities(chats, ("A", "B"))
    assert (p_a, p_b) == (pytest.approx(0.75), pytest.approx(0.25))  # 0.6 / (0.6 + 0.2)
    [(kind, _, params)] = engine.calls
    tok = engine.tokenizer
    assert params == dict(max_tokens=1, temperature=0.0, logprobs=20,
                          allowed_token_ids=[tok.encode("A", add_special_tokens=False)[0],
                                             tok.encode("B", add_special_tokens=False)[0]])


def test_an_option_outside_the_top_logprobs_is_scored_from_the_prompt(engine):
    engine.top = {"A": 0.6}  # "B" not among the returned top-20
    model = VLLMModel("m", engine=engine, sampling_params=SamplingParams)
    [[p_a, p_b]] = model.option_probabilities([[{"role": "user", "content": "A or B?"}]], ("A", "B"))
    (_, [prompt], _), (kind, [scored], params) = engine.calls
    b = engine.tokenizer.encode("B", add_special_tokens=False)[0]
    assert kind == "generate" and params["prompt_logprobs"] == 0 and scored == prompt + [b]
    logp_b = fake_logprob(len(scored) - 1)
    assert p_a == pytest.approx(0.6 / (0.6 + math.exp(logp_b)))


@pytest.fixture
def fake_vllm(monkeypatch):
    import selfpref.models.vllm_backend as backend

    FakeLLM.instances = []
    def judge(prompt):  # prefers "answer 0" in either position
        first_is_0 = "[Response A]\nanswer 0" in prompt
        return {"A": 0.7, "B": 0.3} if first_is_0 else {"A": 0.3, "B": 0.7}

    module = types.SimpleNamespace(LLM=lambda **kw: FakeLLM(top=judge, **kw),
                                   SamplingParams=SamplingParams)
    monkeypatch.setattr(backend, "_vllm", lambda: module)
    return module


def test_a_vllm_sao_build_makes_one_engine_for_all_steps_and_chunks(tmp_path, tiny_model_path, fake_vllm):
    build(BuildConfig(method="sao", backend="vllm", model=str(tiny_model_path), judge_mode="logits",
                      num_prompts=3, chunk_size=1, truncated_prompts="keep"),  # the fake echoes past the cap
          tmp_path / "out")
    [llm] = FakeLLM.instances
    assert llm.model == str(tiny_model_path) and llm.options == {"gpu_memory_utilization": 0.9}
    kinds = [c[0] for c in llm.calls]
    # personas, prompts, answers: the 3 one-prompt chunks fill less than a batch, so they run together
    assert kinds.count("chat") == 3 and kinds.count("generate") == 1  # + the forced-choice judge
    df, record = read_dataset(tmp_path / "out")
    assert df.height == 3 and record.parameters["backend"] == "vllm"
    assert df["chosen"].str.starts_with("answer 0").all() and df["judge_consistent"].all()
    assert df["confidence"].to_list() == pytest.approx([0.7] * 3)


def test_a_vllm_selfee_build_scores_with_prompt_logprobs_on_two_engines(tmp_path, tiny_model_path, fake_vllm):
    import shutil

    shutil.copytree(tiny_model_path, tmp_path / "ref")
    prompts = tmp_path / "p.jsonl"
    pl.DataFrame({"prompt": ["q1", "q2"]}).write_ndjson(prompts)
    with pytest.raises(Exception, match="kept no pair"):  # the fake scores both models alike: ties
        build(BuildConfig(method="selfee", backend="vllm", model=str(tiny_model_path),
                          reference_model=str(tmp_path / "ref"), prompts=str(prompts)), tmp_path / "out")
    policy, reference = FakeLLM.instances
    assert (policy.model, reference.model) == (str(tiny_model_path), str(tmp_path / "ref"))
    assert policy.options == reference.options == {"gpu_memory_utilization": 0.45}
    assert [c[0] for c in policy.calls] == ["chat", "generate"]  # answers, then policy log-probs
    assert [c[0] for c in reference.calls] == ["generate"]
    assert reference.calls[0][2]["prompt_logprobs"] == 0


def test_without_vllm_the_backend_says_how_to_install_it():
    from selfpref import SelfprefError

    with pytest.raises(SelfprefError, match=r"pip install 'selfpref\[vllm\]'"):
        VLLMModel("m").load()


@pytest.mark.parametrize("judge_model", [None, "default"])
def test_eval_judge_backend_vllm_resolves_the_default_judge_to_the_embedded_folder(tmp_path, fake_vllm,
                                                                                   judge_model):
    from selfpref.eval.run import EvalConfig, run_eval
    from selfpref.models.embedded import default_model

    for side, answers in (("a", ["answer 0 here", "answer 1 here"]), ("b", ["answer 1", "answer 0"])):
        pl.DataFrame({"prompt": ["q1", "q2"], "answer": answers}).write_ndjson(tmp_path / f"{side}.jsonl")
    summary = run_eval(EvalConfig(output=str(tmp_path / "out"), answers_a=str(tmp_path / "a.jsonl"),
                                  answers_b=str(tmp_path / "b.jsonl"), judge_model=judge_model,
                                  judge_backend="vllm", bootstrap=10))
    [llm] = FakeLLM.instances
    assert llm.model == str(default_model())  # vllm.LLM gets a folder, never None or "default"
    assert summary["n"] == 2 and summary["win_rate"] == 50.0  # each side has one "answer 0"
