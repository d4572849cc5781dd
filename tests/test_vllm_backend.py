"""`--backend vllm` without a GPU: the adapter against a fake engine that records the calls and
answers in vLLM's shapes (RequestOutput.outputs[k].text, prompt_logprobs with None first,
{token id: Logprob} dicts). What these tests cannot show is that a real vLLM accepts the calls;
README says so."""

import json
import math
import types
from pathlib import Path

import polars as pl
import pytest

import selfpref.models.vllm_backend as backend
from selfpref.data.refs import read_dataset
from selfpref.models.scoring import answer_token_ids
from selfpref.models.vllm_backend import VLLMModel
from selfpref.pipelines.config import BuildConfig
from selfpref.pipelines.run import build


class Logprob:
    def __init__(self, logprob):
        self.logprob = logprob


class SamplingParams:
    """vLLM < 0.33's surface: no logprob_token_ids. Like vLLM, greedy sampling with n > 1 is
    refused (sampling_params.py, _verify_greedy_sampling)."""

    def __init__(self, **kwargs):
        if kwargs.get("temperature", 1.0) < 1e-5 and kwargs.get("n", 1) > 1:
            raise ValueError(f"n must be 1 when using greedy sampling, got {kwargs['n']}.")
        self.kwargs = kwargs
        SamplingParams.made.append(kwargs)

    made: list = []


class SamplingParamsWithIds(SamplingParams):
    """vLLM >= 0.33: a msgspec Struct whose fields include logprob_token_ids."""

    __struct_fields__ = ("n", "temperature", "top_p", "seed", "max_tokens", "logprobs",
                         "prompt_logprobs", "logprob_token_ids", "allowed_token_ids")


class EngineCore:
    def __init__(self):
        self.shut_down = 0

    def shutdown(self, timeout=None):
        self.shut_down += 1


FORCED = {"tokenizer_mode": "hf", "logprobs_mode": "raw_logprobs"}  # what every engine gets


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
        self.exact = {"A": 0.5, "B": 0.1}  # P(label) returned for logprob_token_ids
        self.calls = []
        self.llm_engine = types.SimpleNamespace(engine_core=EngineCore())
        FakeLLM.instances.append(self)

    methods: list = []  # (LLM method, keyword arguments it was given), every instance
    prompt_keys: set = set()

    def get_tokenizer(self):
        self.methods.append(("get_tokenizer", set()))
        return self.tokenizer

    def chat(self, messages, sampling_params=None, use_tqdm=True):
        self.calls.append(("chat", messages, [p.kwargs for p in sampling_params]))
        self.methods.append(("chat", {"sampling_params", "use_tqdm"}))
        return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text=f" answer {k} to {m[-1]['content']} ")
                                               for k in range(p.kwargs["n"])])
                for m, p in zip(messages, sampling_params)]

    def generate(self, prompts, params, use_tqdm=True):
        self.calls.append(("generate", [p["prompt_token_ids"] for p in prompts], params.kwargs))
        self.methods.append(("generate", {"use_tqdm"}))
        self.prompt_keys |= {k for p in prompts for k in p}
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
                if "logprob_token_ids" in params.kwargs:  # exactly the asked tokens (+ the sampled one)
                    top = {t: Logprob(math.log(self.exact[self.tokenizer.decode([t])]))
                           for t in params.kwargs["logprob_token_ids"]}
                top[1] = Logprob(-0.01)  # the raw distribution's best token, not an option
                outs.append(types.SimpleNamespace(outputs=[types.SimpleNamespace(
                    text=labels[0], logprobs=[top])], prompt_logprobs=None))
        return outs


@pytest.fixture
def engine(tiny_model_path):
    FakeLLM.instances, FakeLLM.methods, SamplingParams.made = [], [], []
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

    FakeLLM.instances, FakeLLM.methods, SamplingParams.made = [], [], []

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
    assert llm.model == str(tiny_model_path) and llm.options == {"gpu_memory_utilization": 0.9, **FORCED}
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
    assert policy.options == reference.options == {"gpu_memory_utilization": 0.45, **FORCED}
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


def test_greedy_with_several_generations_is_one_request_repeated(engine):
    """vLLM refuses temperature 0 with n > 1; n greedy answers are one answer n times."""
    model = VLLMModel("m", engine=engine, sampling_params=SamplingParams)
    texts = model.generate([[{"role": "user", "content": "q1"}]], num_generations=2, temperature=0.0,
                           max_new_tokens=5, seeds=[3])
    assert texts == [["answer 0 to q1", "answer 0 to q1"]]
    [(_, _, [params])] = engine.calls
    assert params["n"] == 1 and params["temperature"] == 0.0


def test_the_engine_gets_raw_logprobs_and_the_hf_tokenizer(fake_vllm, tiny_model_path):
    from selfpref import SelfprefError

    VLLMModel(str(tiny_model_path), gpu_memory_utilization=0.5).load()
    VLLMModel(str(tiny_model_path), tokenizer_mode="mistral").load()  # the user's choice is kept
    first, second = FakeLLM.instances
    assert first.options == {"gpu_memory_utilization": 0.5, **FORCED}
    assert second.options == {**FORCED, "tokenizer_mode": "mistral"}
    with pytest.raises(SelfprefError, match="logprobs_mode 'processed_logprobs'.*raw_logprobs"):
        VLLMModel("m", logprobs_mode="processed_logprobs")


def test_close_shuts_the_engine_core_down_and_frees_cuda_memory(fake_vllm, monkeypatch, tiny_model_path):
    import gc

    import torch

    freed = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: freed.append("cache"))
    collect = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *a: freed.append("gc") or collect(*a))
    model = VLLMModel(str(tiny_model_path)).load()
    core = model.engine.llm_engine.engine_core
    model.close()
    assert core.shut_down == 1 and model.engine is None and freed == ["gc", "cache"]
    model.close()  # closing twice shuts nothing down twice
    assert core.shut_down == 1


def test_close_prefers_the_llms_own_shutdown_where_vllm_has_one(fake_vllm, tiny_model_path):
    model = VLLMModel(str(tiny_model_path)).load()
    calls = []
    model.engine.shutdown = lambda: calls.append("LLM.shutdown")
    core = model.engine.llm_engine.engine_core
    model.close()
    assert calls == ["LLM.shutdown"] and core.shut_down == 0


def test_forced_choice_with_logprob_token_ids_is_one_exact_pass(engine):
    """vLLM >= 0.33: the option labels' own raw log-probs, whether or not they are in a top 20."""
    engine.top = {"A": 0.6}  # "B" outside the top 20 would need a second pass on the old path
    model = VLLMModel("m", engine=engine, sampling_params=SamplingParamsWithIds)
    [[p_a, p_b]] = model.option_probabilities([[{"role": "user", "content": "A or B?"}]], ("A", "B"))
    assert (p_a, p_b) == (pytest.approx(0.5 / 0.6), pytest.approx(0.1 / 0.6))
    [(kind, _, params)] = engine.calls  # no prompt-logprob fallback
    ids = [engine.tokenizer.encode(x, add_special_tokens=False)[0] for x in ("A", "B")]
    assert params == dict(max_tokens=1, temperature=0.0, allowed_token_ids=ids, logprob_token_ids=ids)


def test_iterate_frees_accelerator_memory_after_each_training(tmp_path, monkeypatch):
    """build, train, build in one process: the trainer's cached CUDA memory must go before the
    next vLLM engine checks for free memory."""
    import selfpref.loop.stages as stages
    import selfpref.trainers.run as run

    events = []

    def train(method, dataset, out, **kwargs):
        Path(out).mkdir(parents=True)
        events.append("train")
        return {"train_loss": 0.1}

    monkeypatch.setattr(run, "train", train)
    monkeypatch.setattr(stages, "release_memory", lambda: events.append("release"))
    cfg = types.SimpleNamespace(train={})
    stages.train_atomic("dpo", "data", tmp_path / "model", None, cfg, {}, None)
    assert events == ["train", "release"] and (tmp_path / "model" / "selfpref_train.json").exists()


SNAPSHOT = json.loads((Path(__file__).parent / "data" / "vllm_api_snapshot.json").read_text())


def test_the_vllm_pin_is_the_range_the_snapshot_checked():
    """Moving the pin without re-running `make vllm-snapshot` fails here."""
    import tomllib
    from packaging.requirements import Requirement
    from packaging.version import Version

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    [pin] = [Requirement(r) for r in project["optional-dependencies"]["vllm"]]
    checked = sorted(Version(v) for v in SNAPSHOT["versions"])
    assert pin.name == "vllm" and all(v in pin.specifier for v in checked)
    lowest = min(s.version for s in pin.specifier if s.operator == ">=")
    assert Version(lowest) == checked[0]  # the oldest release the pin allows was read


@pytest.mark.parametrize("version", sorted(SNAPSHOT["versions"]))
def test_the_adapters_calls_exist_in_vllms_source(version, engine, fake_vllm, tiny_model_path):
    """Every keyword the adapter gives SamplingParams and LLM, every LLM method it calls, the
    prompt and output fields it uses, and the shutdown path: names in vLLM's own source."""
    api = SNAPSHOT["versions"][version]
    chats = [[{"role": "user", "content": "A or B?"}]]
    for params in (SamplingParams, SamplingParamsWithIds):
        model = VLLMModel("m", engine=FakeLLM(tokenizer_path=str(tiny_model_path), top={"A": 0.6}),
                          sampling_params=params)
        model.generate(chats, num_generations=2, temperature=0.7)
        model.generate(chats, num_generations=2, temperature=0.0)
        model.answer_logps(chats, ["A"])
        model.option_probabilities(chats, ("A", "B"))
    loaded = VLLMModel(str(tiny_model_path), gpu_memory_utilization=0.45).load()
    llm = loaded.engine

    fields = set(api["SamplingParams"]["fields"])
    used = {k for kwargs in SamplingParams.made for k in kwargs}
    assert {"logprob_token_ids", "allowed_token_ids", "prompt_logprobs"} <= used
    assert used <= fields, used - fields
    assert api["SamplingParams"]["greedy_requires_n_1"]  # why greedy n > 1 is sent as n = 1
    assert api["SamplingParams"]["MAX_LOGPROB_TOKEN_IDS"] == backend.MAX_LOGPROB_TOKEN_IDS

    init = api["LLM"]["methods"]["__init__"]
    accepted = set(init["parameters"]) | (set(api["EngineArgs"]["fields"]) if init["var_keyword"] else set())
    given = {"model", "seed", *llm.options}
    assert given <= accepted, given - accepted
    assert llm.options["tokenizer_mode"] in api["TokenizerMode"]
    assert llm.options["logprobs_mode"] in api["LogprobsMode"] and api["default_logprobs_mode"] == "raw_logprobs"
    for method, kwargs in FakeLLM.methods:
        assert method in api["LLM"]["methods"]
        assert kwargs <= set(api["LLM"]["methods"][method]["parameters"]), (method, kwargs)
    assert {m for m, _ in FakeLLM.methods} == {"chat", "generate", "get_tokenizer"}
    assert FakeLLM.prompt_keys == {"prompt_token_ids"} and FakeLLM.prompt_keys <= set(api["TokensPrompt"])
    assert {"outputs", "prompt_logprobs"} <= set(api["RequestOutput"])
    assert {"text", "logprobs"} <= set(api["CompletionOutput"])
    # close(): LLM.llm_engine.engine_core.shutdown(), or LLM.shutdown() where a release has it
    assert api["LLM"]["assigns_llm_engine"] and api["engine_core"]["LLMEngine_assigns_engine_core"]
    assert api["engine_core"]["EngineCoreClient_has_shutdown"] or api["LLM"]["has_shutdown"]
