"""The Python API makes every check the CLI makes, with the same one line, before any work.

Each case of the CLI's error table (tests/test_cli_errors.py) that a library check catches is
run again as a Python call: the SelfprefError's message is the CLI's line (less "error: "), and
nothing is written.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import selfpref
from selfpref import SelfprefError
from tests.test_cli_errors import CASES, run_main, work  # noqa: F401  (work is a fixture)

A = selfpref  # the API as a notebook user reaches it

API_CASES = {
    "import-missing-file": lambda: A.import_data("missing.jsonl", "x"),
    "import-split-matches-nothing": lambda: A.import_data("folder", "x", split="test"),
    "import-split-on-a-file": lambda: A.import_data("pairs.jsonl", "x", split="test"),
    "import-no-layout": lambda: A.import_data("text.jsonl", "x"),
    "import-into-users-folder": lambda: A.import_data("pairs.jsonl", "userdir"),
    "import-unknown-file-type": lambda: A.import_data("pairs.txt", "x"),
    "import-unparseable-file": lambda: A.import_data("broken.jsonl", "x"),
    "import-hub-offline": lambda: A.import_data("org/name", "x"),
    "import-bad-version": lambda: A.import_data("pairs.jsonl", "x", version="1.2"),
    "import-forced-wrong-layout": lambda: A.import_data("pairs.jsonl", "x", layout="hh"),
    "inspect-missing-path": lambda: A.inspect("./nope"),
    "inspect-hub-offline": lambda: A.inspect("org/name"),
    "inspect-hub-version-offline": lambda: A.inspect("org/name@v1.0.0"),
    "inspect-not-a-dataset": lambda: A.inspect("userdir"),
    "filter-into-users-folder": lambda: A.filter("ds", "userdir", [("dedup", "exact")]),
    "filter-onto-a-dataset": lambda: A.filter("ds", "ds", [("dedup", "exact")]),
    "filter-recipe-missing": lambda: A.filter("ds", "f", recipe="missing.yaml"),
    "filter-recipe-parse-error": lambda: A.filter("ds", "f", recipe="bad.yaml"),
    "filter-recipe-not-a-mapping": lambda: A.filter("ds", "f", recipe="list.yaml"),
    "filter-recipe-unknown-key": lambda: A.filter("ds", "f", recipe="unknown.yaml"),
    "filter-recipe-bad-value": lambda: A.filter("ds", "f", recipe="typed.yaml"),
    "filter-keeps-nothing": lambda: A.filter("ds", "f", [{"min_confidence": 0.99}]),
    "filter-no-filter": lambda: A.filter("ds", "f"),
    "filter-missing-judge-model": lambda: A.filter("ds", "f", [("judge_models", ["./judge"])]),
    "filter-bad-push-target": lambda: A.filter("ds", "f", [("dedup", "exact")], push_to_hub="just-a-name"),
    "filter-empty-input": lambda: A.filter("empty", "f", [("dedup", "exact")]),
    "card-hub-id": lambda: A.card("org/name"),
    "card-empty-dataset": lambda: A.card("empty"),
    "card-not-a-dataset": lambda: A.card("userdir"),
    "push-offline": lambda: A.push("ds", "org/ds"),
    "push-bad-repo-id": lambda: A.push("ds", "not a repo"),
    "train-recipe-missing": lambda: A.train("dpo", "ds", "m", recipe="missing.yaml"),
    "train-recipe-unknown-key": lambda: A.train("dpo", "ds", "m", recipe="train-unknown.yaml"),
    "train-missing-dataset": lambda: A.train("dpo", "./nope", "m"),
    "train-no-dataset": lambda: A.train("dpo", None, "m"),
    "train-empty-dataset": lambda: A.train("dpo", "empty", "m"),
    "train-model-path-missing": lambda: A.train("dpo", "ds", "m", model="out/pi1"),
    "train-model-hub-offline": lambda: A.train("dpo", "ds", "m", model="nobody/no-such-model"),
    "train-reference-missing": lambda: A.train("dpo", "ds", "m", reference_model="./ref"),
    "train-into-users-folder": lambda: A.train("dpo", "ds", "userdir"),
    "build-unknown-method": lambda: A.build("foo", "b"),
    "build-num-prompts-zero": lambda: A.build("sao", "b", num_prompts=0),
    "build-onto-a-dataset": lambda: A.build("sao", "ds"),
    "build-model-missing": lambda: A.build("sao", "b", model="./pi1"),
    "build-recipe-parse-error": lambda: A.build("sao", "b", recipe="bad.yaml"),
    "build-judge-mode": lambda: A.build("sao", "b", judge_mode="vibes"),
    "build-judge-kind": lambda: A.build("sao", "b", judge="vibes"),
    "build-judge-model-missing": lambda: A.build("sao", "b", judge_model="./nojudge"),
    "build-judge-model-hub-offline": lambda: A.build("sao", "b", judge_model="nobody/no-judge"),
    "build-judge-rule-with-model": lambda: A.build("sao", "b", judge="length", judge_model="default"),
    "build-judge-not-sao": lambda: A.build("sso", "b", judge="random"),
    "build-judge-and-mode-disagree": lambda: A.build("sao", "b", judge="logits", judge_mode="text"),
    "build-judge-key-without-url": lambda: A.build("sao", "b", judge_api_key_env="K"),
    "build-push-offline": lambda: A.build("sao", "b", push_to_hub="org/x"),
    "build-prompts-missing": lambda: A.build("sso", "b", prompts="missing.jsonl", backend="scripted", script="list.yaml"),
    "build-prompt-column-missing": lambda: A.build("sso", "b", prompts="prompts4.jsonl", prompt_column="question", backend="scripted", script="list.yaml"),
    "build-random-prompts-with-prompts": lambda: A.build("sao", "b", prompt_mode="random", prompts="prompts4.jsonl"),
    "build-random-prompts-with-personas": lambda: A.build("sao", "b", prompt_mode="random", personas="text.jsonl"),
    "build-principles-missing": lambda: A.build("sso", "b", principles="nope.yaml"),
    "build-principles-not-sso": lambda: A.build("sao", "b", principles="one-feature.yaml"),
    "build-principles-one-feature": lambda: A.build("sso", "b", principles="one-feature.yaml"),
    "build-principles-bad-keys": lambda: A.build("sso", "b", principles="unknown.yaml"),
    "build-prompt-source-choice": lambda: A.build("sso", "b", prompt_mode="unprompted"),
    "steer-corrupt-directions": lambda: A.steer_generate("corrupt.safetensors", "hi"),
    "steer-missing-directions": lambda: A.steer_generate("none.safetensors", "hi"),
    "steer-not-directions": lambda: A.steer_generate("wrongkeys.safetensors", "hi"),
    "steer-directions-other-hidden-size": lambda: A.steer_generate("hidden64.safetensors", "hi", model="./tiny"),
    "steer-fit-missing-dataset": lambda: A.steer_fit("./nope", "d.safetensors"),
    "steer-fit-output-folder": lambda: A.steer_fit("ds", "userdir"),
    "steer-fit-model-missing": lambda: A.steer_fit("ds", "d.safetensors", model="./m"),
    "iterate-unknown-method": lambda: A.iterate("loop", method="dpo"),
    "iterate-sso-needs-prompts": lambda: A.iterate("loop", method="sso"),
    "iterate-too-few-prompts": lambda: A.iterate("loop", method="sso", prompts="prompts4.jsonl", iterations=3),
    "iterate-num-prompts-too-small": lambda: A.iterate("loop", method="sao", num_prompts=1),
    "iterate-filters-missing": lambda: A.iterate("loop", filters="missing.yaml"),
    "iterate-zero-iterations": lambda: A.iterate("loop", iterations=0),
    "iterate-model-missing": lambda: A.iterate("loop", model="out/pi1"),
    "iterate-into-users-folder": lambda: A.iterate("userdir"),
    "iterate-selfee-reference-not-selfee": lambda: A.iterate("loop", method="sao", selfee_reference="previous"),
    "iterate-selfee-reference-unknown": lambda: A.iterate("loop", method="selfee", prompts="prompts4.jsonl", selfee_reference="latest"),
    "iterate-no-prompt-column": lambda: A.iterate("loop", method="sso", prompts="text.jsonl"),
    "iterate-judge-model-missing": lambda: A.iterate("loop", method="sso", prompts="prompts12.jsonl", judge_models=["./j"]),
    "eval-model-b-missing": lambda: A.evaluate("e", model_b="./nob"),
    "eval-model-a-hub-offline": lambda: A.evaluate("e", model_a="nobody/no-a", model_b="default"),
    "eval-judge-model-missing": lambda: A.evaluate("e", model_b="default", judge_model="./noj"),
    "eval-judge-kind": lambda: A.evaluate("e", model_b="default", judge="vibes"),
    "eval-prompt-column-without-prompts": lambda: A.evaluate("e", model_b="default", prompt_column="question"),
    "eval-prompt-column-missing": lambda: A.evaluate("e", model_b="default", prompts="prompts4.jsonl", prompt_column="question"),
}
ARGV = {case_id: argv for case_id, argv, _ in CASES}


def test_every_api_case_is_a_case_of_the_cli_table():
    assert set(API_CASES) <= set(ARGV), sorted(set(API_CASES) - set(ARGV))
    # every command with library checks is covered
    commands = {ARGV[c][0] for c in API_CASES}
    assert commands == {"import", "inspect", "filter", "card", "push", "train", "build", "steer",
                        "iterate", "eval"}


@pytest.mark.parametrize("case_id", sorted(API_CASES))
def test_api_refuses_with_the_cli_line(work, monkeypatch, capfd, tmp_path, case_id):  # noqa: F811
    monkeypatch.chdir(work)
    monkeypatch.setenv("SELFPREF_CACHE", str(tmp_path))
    code, _out, err = run_main(ARGV[case_id], capfd)
    cli_line = [line for line in err.splitlines() if line.strip()][0]
    assert code == 2 and cli_line.startswith("error: ")
    before = sorted(p.name for p in work.iterdir())
    with pytest.raises(SelfprefError) as info:
        API_CASES[case_id]()
    message = " ".join(part.strip() for part in str(info.value).splitlines() if part.strip())
    assert f"error: {message}" == cli_line
    assert sorted(p.name for p in work.iterdir()) == before  # nothing written


def test_import_selfpref_is_cheap_and_lazy():
    code = ("import sys, selfpref; heavy = [m for m in ('torch', 'trl', 'transformers', 'datasets', "
            "'selfpref.api') if m in sys.modules]; print(heavy); "
            "f = selfpref.build; print(f.__module__, 'selfpref.api' in sys.modules, "
            "'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=True).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "selfpref.api.build True False"  # resolving the API still imports no torch


def test_the_api_names_are_the_documented_ones():
    import selfpref.api as api

    assert sorted(selfpref.__all__) == sorted(["SelfprefError", "__version__", *api.__all__])
    for name in api.__all__:
        assert getattr(selfpref, name) is getattr(api, name)
    with pytest.raises(AttributeError):
        selfpref.no_such_function  # noqa: B018


def test_build_filter_load_on_the_scripted_backend(tmp_path):
    """A notebook's round trip without a model: build, load, filter; handles give polars and
    datasets views of the same rows."""
    from tests.build_files import prompts_file, script_file

    script = script_file(tmp_path, answer_pair=["first answer", "second, longer answer"],
                         self_judge=["A", "B"])
    prompts = prompts_file(tmp_path, [f"Question {i}?" for i in range(4)])
    ds = selfpref.build("sao", tmp_path / "b", backend="scripted", script=str(script),
                        prompts=str(prompts), notify=None, separability=False)
    assert len(ds) == ds.polars().height == ds.datasets().num_rows > 0
    loaded = selfpref.load(tmp_path / "b")
    assert loaded.record.fingerprint == ds.record.fingerprint
    assert "selfpref.build('sao'" in loaded.record.command
    kept = selfpref.filter(tmp_path / "b", tmp_path / "f", [("dedup", "exact")], notify=None,
                           separability=False)
    assert kept.record.parent["fingerprint"] == ds.record.fingerprint
    assert selfpref.inspect(tmp_path / "f")["rows"] == len(kept)


def test_judge_check_from_python(work, monkeypatch, tmp_path):  # noqa: F811
    """The length rule (shorter wins) on pairs whose chosen answer is the shorter one: 100%."""
    import json

    monkeypatch.chdir(work)
    pairs = [{"prompt": f"q{i}", "chosen": "yes", "rejected": "a much longer answer " * (i + 1)}
             for i in range(6)]
    (tmp_path / "labelled.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    result = selfpref.judge_check(str(tmp_path / "labelled.jsonl"), tmp_path / "check",
                                  judge="length", notify=None, bootstrap=0)
    assert result.accuracy == 100.0 or result.accuracy == 1.0
    assert (tmp_path / "check" / "judge_check.json").is_file()
    with pytest.raises(SelfprefError, match="--judge-model ./nojudge"):
        selfpref.judge_check(str(tmp_path / "labelled.jsonl"), tmp_path / "check2", judge="logits",
                             judge_model="./nojudge", notify=None)
    assert not (tmp_path / "check2").exists()


def test_cli_help_is_the_api_help():
    """One text per option: a flag's --help is its API argument's (or config field's) help."""
    import typer

    from selfpref.api import data, steer
    from selfpref.api.help import arg_help
    from selfpref.api.train import train as api_train
    from selfpref.cli import app

    root = typer.main.get_command(app)
    commands = {("import",): (data.import_data, {"dataset_version": "version"}),
                ("card",): (data.card, {}), ("push",): (data.push, {"dataset_version": "version"}),
                ("steer", "fit"): (steer.steer_fit, {}),
                ("steer", "generate"): (steer.steer_generate, {"prompt": "prompts"}),
                ("train",): (api_train, {"config": "recipe"})}
    checked = 0
    for path, (func, names) in commands.items():
        command = root
        for part in path:
            command = command.commands[part]
        for param in command.params:
            name = names.get(param.name, param.name)
            try:
                expected = arg_help(func, name)
            except KeyError:
                continue
            assert param.help == expected, (path, param.name)
            checked += 1
    assert checked >= 30


@pytest.mark.parametrize("path, config, names", [
    (("build",), "selfpref.pipelines.config.BuildConfig", {"prompt_source": "prompt_mode"}),
    (("eval",), "selfpref.eval.run.EvalConfig", {}),
    (("iterate",), "selfpref.loop.iterate.IterateConfig",
     {"train_config": "train_recipe", "seed_train_config": "seed_train_recipe"}),
])
def test_cli_flags_take_their_config_fields_help(path, config, names):
    import dataclasses
    import importlib

    import typer

    from selfpref.api.help import field_help
    from selfpref.cli import app

    module, _, name = config.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    fields = {f.name for f in dataclasses.fields(cls)}
    command = typer.main.get_command(app)
    for part in path:
        command = command.commands[part]
    shared = [p for p in command.params if names.get(p.name, p.name) in fields]
    assert len(shared) >= 15
    for param in shared:
        assert param.help == field_help(cls, names.get(param.name, param.name)), param.name
