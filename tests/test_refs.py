"""One reference parser and one YAML reader: every command answers a bad reference or file the same way."""

from pathlib import Path

import pytest

from selfpref import SelfprefError
from selfpref.data.recipes import load_yaml_mapping
from selfpref.data.refs import is_hub_id, looks_like_path, parse_ref
from selfpref.models import resolve_model


def test_parse_ref_forms(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    assert parse_ref("out").path == Path("out")
    hub = parse_ref("org/name@v1.2.0")
    assert (hub.repo, hub.revision, hub.is_local) == ("org/name", "v1.2.0", False)
    assert is_hub_id("org/name") and not looks_like_path("org/name")
    # out/ exists, so out/pi1 is a path that is missing, never a Hub id
    assert looks_like_path("out/pi1") and not is_hub_id("out/pi1")
    with pytest.raises(SelfprefError, match="out/pi1: no such dataset folder"):
        parse_ref("out/pi1")
    for text in ("./missing", "/nowhere/at/all", "~/no-such-selfpref-thing"):
        with pytest.raises(SelfprefError, match="no such dataset folder"):
            parse_ref(text)
    with pytest.raises(SelfprefError, match="not a Hub id"):
        parse_ref("just words here")


def test_missing_model_folder_fails_before_any_request(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # would reach for the Hub if taken for an id
    with pytest.raises(SelfprefError, match=r"--reference-model out/pi0: no such model folder"):
        resolve_model("out/pi0", flag="--reference-model")
    with pytest.raises(SelfprefError, match="take no @revision"):
        resolve_model("org/model@main")


def test_yaml_reader_names_file_line_and_key(tmp_path):
    path = tmp_path / "r.yaml"
    with pytest.raises(SelfprefError, match="r.yaml: no such recipe file"):
        load_yaml_mapping(path)
    path.write_text("a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(SelfprefError, match=r"not valid YAML at line \d+"):
        load_yaml_mapping(path)
    path.write_text("- a\n- b\n")
    with pytest.raises(SelfprefError, match="holds a list"):
        load_yaml_mapping(path, what="build recipe", flag="--config")
    path.write_text("a: 1\nzz: 2\n")
    with pytest.raises(SelfprefError, match="--config .*unknown key 'zz'"):
        load_yaml_mapping(path, allowed=["a"], flag="--config")
    assert load_yaml_mapping(path, allowed=["a", "zz"]) == {"a": 1, "zz": 2}
    path.write_text("")
    assert load_yaml_mapping(path) == {}


def test_build_fingerprint_notices_a_model_retrained_into_the_same_folder(tmp_path):
    # A rebuild after `train ... --output-dir out/pi1` again once resumed the old model's parts
    # (the fingerprint keyed on the path only): every SELFEE pair came out a tie.
    import os

    from selfpref.pipelines.config import BuildConfig

    model = tmp_path / "pi1"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"weights")
    config = BuildConfig(method="selfee", model=str(model), prompts="p.jsonl")
    first = config.fingerprint(["q"])
    assert config.fingerprint(["q"]) == first  # unchanged folder: the parts resume
    (model / "model.safetensors").write_bytes(b"retrained")
    os.utime(model / "model.safetensors", ns=(1, 1))
    assert config.fingerprint(["q"]) != first
    scripted = BuildConfig(method="selfee", backend="scripted", script="s.yaml", model=str(model),
                           prompts="p.jsonl")
    assert scripted.fingerprint(["q"]) == scripted.fingerprint(["q"])
