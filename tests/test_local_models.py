"""Which judge runs on local weights (one predicate for every command), and the one model pool."""

import pytest

from selfpref import SelfprefError
from selfpref.judges.factory import BACKENDS, JUDGE_KINDS, judge_backend, local_judge_backend
from selfpref.models.pool import ModelPool

URL = "http://127.0.0.1:9/v1"


def _by_hand(kind, backend, base_url):
    """The rule, written out: a model judge (logits, text, rm) without an endpoint runs on the
    backend named (transformers when none is named); vllm is local too; openai never is."""
    if kind not in ("logits", "text", "rm") or base_url:
        return None
    if kind == "rm":  # a reward model (sequence classifier) runs on transformers only
        return "transformers" if backend in (None, "transformers") else None
    return {None: "transformers", "transformers": "transformers", "vllm": "vllm"}.get(backend)


@pytest.mark.parametrize("base_url", [None, URL])
@pytest.mark.parametrize("backend", [None, *BACKENDS])
@pytest.mark.parametrize("kind", JUDGE_KINDS)
def test_local_judge_backend_over_every_kind_backend_and_endpoint(kind, backend, base_url, monkeypatch):
    monkeypatch.setenv("SELFPREF_TEST_KEY", "k")
    local = local_judge_backend(kind, base_url=base_url, backend=backend)
    assert local == _by_hand(kind, backend, base_url)
    if kind not in ("logits", "text"):
        return
    # and it names the backend the factory really builds (nothing is loaded)
    try:
        model, _ = judge_backend("org/judge", base_url=base_url, backend=backend,
                                 api_key_env="SELFPREF_TEST_KEY")
    except SelfprefError:
        assert local is None  # a spec the factory refuses (an endpoint flag on a local backend)
        return
    built = type(model).__name__
    assert built == {"transformers": "LocalModel", "vllm": "VLLMModel", None: "OpenAICompatModel"}[local]


def test_one_pool_names_a_local_model_by_what_it_loads(tmp_path, tiny_model_path, default_model_path,
                                                       monkeypatch):
    pool = ModelPool(batch_size=2)
    default = pool.key("transformers", None)
    assert default == pool.key("transformers", "default") == pool.key("transformers", str(default_model_path))
    monkeypatch.chdir(tiny_model_path.parent)
    relative = f"./{tiny_model_path.name}"
    assert pool.key("transformers", relative) == pool.key("transformers", str(tiny_model_path))
    assert pool.key("vllm", relative) != pool.key("transformers", relative)
    assert pool.key("scripted", "m", step="a") != pool.key("scripted", "m", step="b")
    model = pool.get("transformers", relative)
    assert pool.get("transformers", str(tiny_model_path)) is model  # one object, one load
    assert model.ref == str(relative)
    assert pool.get("transformers", None).ref == str(default_model_path)  # never the Hub id "None"
    pool.drop("transformers", str(tiny_model_path))
    assert pool.get("transformers", relative) is not model
    assert model.model is None  # nothing above loaded weights
