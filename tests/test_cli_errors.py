"""Every user mistake through `selfpref.cli.main`: a non-zero exit, one line on stderr that names
the flag, column, file or value, and no traceback. No case runs a model: each error comes before
any work (the whole table takes seconds once the libraries are imported); only the steer file fit
on another hidden size loads the tiny model, whose size is the mismatch.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from selfpref.cli import EXIT_INTERNAL, EXIT_USER, main
from selfpref.data.store import BuildRecord, write_dataset
from tests.conftest import make_rows


@pytest.fixture(scope="module")
def work(tmp_path_factory, tiny_model_path) -> Path:
    """A folder with the things the cases point at; each case runs with it as the current folder."""
    root = tmp_path_factory.mktemp("cli-errors")
    write_dataset(make_rows(6), root / "ds", BuildRecord(name="ds", method="sao"))
    write_dataset(pl.DataFrame(make_rows(1)).head(0), root / "empty", BuildRecord(name="empty", method="sao"))
    (root / "userdir").mkdir()
    (root / "userdir" / "notes.txt").write_text("the user's own file\n")
    (root / "out").mkdir()  # so out/pi1 looks like a path
    (root / "bad.yaml").write_text("filters: [\n  - {dedup: minhash\n")
    (root / "list.yaml").write_text("- dedup: minhash\n")
    (root / "unknown.yaml").write_text("filters: [{dedup: exact}]\nfrobnicate: 1\n")
    (root / "one-feature.yaml").write_text("features: [{name: Wit, good: witty, bad: dull, meaning: m, "
                                           "good_principle: Be witty., bad_principle: Be dull.}]\n")
    (root / "typed.yaml").write_text("filters: [{max_length_diff: lots}]\n")
    (root / "train-unknown.yaml").write_text("learning_rate: 1.0e-5\nfrobnicate: 1\n")
    (root / "corrupt.safetensors").write_bytes(b"this is not a safetensors file")
    import torch
    from safetensors.torch import save_file

    save_file({"something": torch.zeros(2)}, str(root / "wrongkeys.safetensors"))
    from selfpref.steer.directions import Directions

    (root / "tiny").symlink_to(tiny_model_path)  # 2 layers, hidden size 32
    Directions(theta_help=torch.ones(2, 64), theta_harm=torch.ones(2, 64), scores=[0.1, 0.2],
               layers=[0]).save(root / "hidden64.safetensors")  # as if fit on a model of hidden size 64
    pairs = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(3)]
    (root / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    (root / "pairs.txt").write_text("not a table\n")
    (root / "broken.jsonl").write_text('{"prompt": "a", "chosen": \n')
    (root / "text.jsonl").write_text('{"text": "a"}\n{"text": "b"}\n')
    (root / "folder").mkdir()
    (root / "folder" / "train.jsonl").write_text((root / "pairs.jsonl").read_text())
    (root / "prompts4.jsonl").write_text("".join(json.dumps({"prompt": f"Question {i}?"}) + "\n" for i in range(4)))
    (root / "prompts12.jsonl").write_text("".join(json.dumps({"prompt": f"Question {i}?"}) + "\n" for i in range(12)))
    (root / "questions.jsonl").write_text('{"question_id": 1, "turns": ["Hi?", "More?"]}\n')
    return root


# (id, argv, substrings the one line must contain). Every case exits with EXIT_USER.
CASES = [
    # import
    ("import-missing-file", ["import", "missing.jsonl", "-o", "x"], ["missing.jsonl"]),
    ("import-split-matches-nothing", ["import", "folder", "--split", "test", "-o", "x"], ["--split", "test"]),
    ("import-split-on-a-file", ["import", "pairs.jsonl", "--split", "test", "-o", "x"], ["--split"]),
    ("import-no-layout", ["import", "text.jsonl", "-o", "x"], ["'chosen'", "text"]),
    ("import-into-users-folder", ["import", "pairs.jsonl", "-o", "userdir"], ["--output userdir", "--overwrite"]),
    ("import-unknown-file-type", ["import", "pairs.txt", "-o", "x"], ["pairs.txt", ".txt"]),
    ("import-unparseable-file", ["import", "broken.jsonl", "-o", "x"], ["broken.jsonl"]),
    ("import-hub-offline", ["import", "org/name", "-o", "x"], ["org/name", "HF_HUB_OFFLINE"]),
    ("import-bad-version", ["import", "pairs.jsonl", "-o", "x", "--version", "1.2"], ["'1.2'", "semver"]),
    ("import-bad-layout", ["import", "pairs.jsonl", "-o", "x", "--layout", "csvish"], ["--layout", "csvish"]),
    ("import-forced-wrong-layout", ["import", "pairs.jsonl", "-o", "x", "--layout", "hh"], ["hh"]),
    # inspect
    ("inspect-missing-path", ["inspect", "./nope"], ["./nope"]),
    ("inspect-hub-offline", ["inspect", "org/name"], ["org/name", "HF_HUB_OFFLINE"]),
    ("inspect-hub-version-offline", ["inspect", "org/name@v1.0.0"], ["org/name"]),
    ("inspect-not-a-dataset", ["inspect", "userdir"], ["userdir", "selfpref.json"]),
    # filter
    ("filter-threshold-range", ["filter", "ds", "-o", "f", "--dedup", "minhash", "--threshold", "1.5"], ["--threshold", "1.5"]),
    ("filter-min-confidence-range", ["filter", "ds", "-o", "f", "--min-confidence", "1.5"], ["--min-confidence", "1.5"]),
    ("filter-dedup-field-choice", ["filter", "ds", "-o", "f", "--dedup", "exact", "--dedup-field", "pairs"], ["--dedup-field", "pairs"]),
    ("filter-ngram-zero", ["filter", "ds", "-o", "f", "--dedup", "minhash", "--ngram", "0"], ["--ngram", "0"]),
    ("filter-negative-length-diff", ["filter", "ds", "-o", "f", "--max-length-diff", "-5"], ["--max-length-diff", "-5"]),
    ("filter-dedup-choice", ["filter", "ds", "-o", "f", "--dedup", "fuzzy"], ["--dedup", "fuzzy"]),
    ("filter-into-users-folder", ["filter", "ds", "-o", "userdir", "--dedup", "exact"], ["--output userdir"]),
    ("filter-onto-a-dataset", ["filter", "ds", "-o", "ds", "--dedup", "exact"], ["--output ds", "--overwrite"]),
    ("filter-recipe-missing", ["filter", "ds", "-o", "f", "--config", "missing.yaml"], ["--config missing.yaml"]),
    ("filter-recipe-parse-error", ["filter", "ds", "-o", "f", "--config", "bad.yaml"], ["bad.yaml", "line"]),
    ("filter-recipe-not-a-mapping", ["filter", "ds", "-o", "f", "--config", "list.yaml"], ["list.yaml", "mapping"]),
    ("filter-recipe-unknown-key", ["filter", "ds", "-o", "f", "--config", "unknown.yaml"], ["frobnicate"]),
    ("filter-recipe-bad-value", ["filter", "ds", "-o", "f", "--config", "typed.yaml"], ["--max-length-diff", "lots"]),
    ("filter-keeps-nothing", ["filter", "ds", "-o", "f", "--min-confidence", "0.99"], ["min_confidence", "--allow-empty"]),
    ("filter-no-filter", ["filter", "ds", "-o", "f"], ["no filter given"]),
    ("filter-missing-judge-model", ["filter", "ds", "-o", "f", "--judge-models", "./judge"], ["--judge-models", "./judge"]),
    ("filter-bad-push-target", ["filter", "ds", "-o", "f", "--dedup", "exact", "--push-to-hub", "just-a-name"], ["--push-to-hub", "just-a-name"]),
    ("filter-missing-output", ["filter", "ds", "--dedup", "exact"], ["--output"]),
    ("filter-empty-input", ["filter", "empty", "-o", "f", "--dedup", "exact"], ["empty", "0 rows"]),
    # card
    ("card-hub-id", ["card", "org/name"], ["org/name", "local folder"]),
    ("card-empty-dataset", ["card", "empty"], ["empty", "0 rows"]),
    ("card-not-a-dataset", ["card", "userdir"], ["userdir", "selfpref.json"]),
    # push
    ("push-offline", ["push", "ds", "org/ds"], ["org/ds", "HF_HUB_OFFLINE"]),
    ("push-bad-repo-id", ["push", "ds", "not a repo"], ["not a repo", "org/name"]),
    # train
    ("train-unknown-method", ["train", "foo", "--dataset", "ds", "-o", "m"], ["'foo'", "dpo"]),
    ("train-recipe-missing", ["train", "dpo", "--dataset", "ds", "-o", "m", "--config", "missing.yaml"], ["missing.yaml"]),
    ("train-recipe-unknown-key", ["train", "dpo", "--dataset", "ds", "-o", "m", "--config", "train-unknown.yaml"], ["frobnicate"]),
    ("train-missing-dataset", ["train", "dpo", "--dataset", "./nope", "-o", "m"], ["--dataset ./nope"]),
    ("train-no-dataset", ["train", "dpo", "-o", "m"], ["--dataset"]),
    ("train-empty-dataset", ["train", "dpo", "--dataset", "empty", "-o", "m"], ["empty", "0 rows"]),
    ("train-model-path-missing", ["train", "dpo", "--dataset", "ds", "--model", "out/pi1", "-o", "m"], ["--model out/pi1"]),
    ("train-model-hub-offline", ["train", "dpo", "--dataset", "ds", "--model", "nobody/no-such-model", "-o", "m"], ["--model nobody/no-such-model", "HF_HUB_OFFLINE"]),
    ("train-reference-missing", ["train", "dpo", "--dataset", "ds", "--reference-model", "./ref", "-o", "m"], ["--reference-model ./ref"]),
    ("train-into-users-folder", ["train", "dpo", "--dataset", "ds", "-o", "userdir"], ["--output-dir userdir"]),
    # build
    ("build-unknown-method", ["build", "foo", "-o", "b"], ["'foo'"]),
    ("build-num-prompts-zero", ["build", "sao", "--num-prompts", "0", "-o", "b"], ["--num-prompts"]),
    ("build-onto-a-dataset", ["build", "sao", "-o", "ds"], ["--output ds", "--overwrite"]),
    ("build-model-missing", ["build", "sao", "--model", "./pi1", "-o", "b"], ["--model ./pi1"]),
    ("build-recipe-parse-error", ["build", "sao", "--config", "bad.yaml", "-o", "b"], ["bad.yaml", "line"]),
    ("build-judge-mode", ["build", "sao", "--judge-mode", "vibes", "-o", "b"], ["--judge-mode", "vibes"]),
    ("build-judge-kind", ["build", "sao", "--judge", "vibes", "-o", "b"], ["--judge 'vibes'", "length", "random"]),
    ("build-judge-model-missing", ["build", "sao", "--judge-model", "./nojudge", "-o", "b"], ["--judge-model ./nojudge"]),
    ("build-judge-model-hub-offline", ["build", "sao", "--judge-model", "nobody/no-judge", "-o", "b"], ["--judge-model nobody/no-judge", "HF_HUB_OFFLINE"]),
    ("build-judge-rule-with-model", ["build", "sao", "--judge", "length", "--judge-model", "default", "-o", "b"], ["--judge-model", "--judge length is a rule"]),
    ("build-judge-not-sao", ["build", "sso", "--judge", "random", "-o", "b"], ["--judge random", "only sao"]),
    ("build-judge-and-mode-disagree", ["build", "sao", "--judge", "logits", "--judge-mode", "text", "-o", "b"], ["--judge logits", "--judge-mode text"]),
    ("build-judge-key-without-url", ["build", "sao", "--judge-api-key-env", "K", "-o", "b"], ["--judge-api-key-env", "--judge-base-url"]),
    ("build-push-offline", ["build", "sao", "-o", "b", "--push-to-hub", "org/x"], ["org/x", "HF_HUB_OFFLINE"]),
    ("build-prompts-missing", ["build", "sso", "--prompts", "missing.jsonl", "-o", "b", "--backend", "scripted", "--script", "list.yaml"], ["missing.jsonl"]),
    ("build-prompt-column-missing", ["build", "sso", "--prompts", "prompts4.jsonl", "--prompt-column", "question", "-o", "b", "--backend", "scripted", "--script", "list.yaml"], ["--prompt-column question"]),
    ("build-random-prompts-with-prompts", ["build", "sao", "--prompt-source", "random", "--prompts", "prompts4.jsonl", "-o", "b"], ["--prompt-source random", "drop --prompts"]),
    ("build-random-prompts-with-personas", ["build", "sao", "--prompt-source", "random", "--personas", "text.jsonl", "-o", "b"], ["--prompt-source random", "drop --personas"]),
    ("build-principles-missing", ["build", "sso", "--principles", "nope.yaml", "-o", "b"], ["--principles nope.yaml", "no such principles file"]),
    ("build-principles-not-sso", ["build", "sao", "--principles", "one-feature.yaml", "-o", "b"], ["--principles", "only sso"]),
    ("build-principles-one-feature", ["build", "sso", "--principles", "one-feature.yaml", "-o", "b"], ["--principles one-feature.yaml", "at least 2 features"]),
    ("build-principles-bad-keys", ["build", "sso", "--principles", "unknown.yaml", "-o", "b"], ["--principles unknown.yaml", "unknown key"]),
    ("build-prompt-source-choice", ["build", "sso", "--prompt-source", "unprompted", "-o", "b"], ["--prompt-source 'unprompted'", "'random'"]),
    # steer
    ("steer-corrupt-directions", ["steer", "generate", "--directions", "corrupt.safetensors", "--prompt", "hi"], ["corrupt.safetensors"]),
    ("steer-missing-directions", ["steer", "generate", "--directions", "none.safetensors", "--prompt", "hi"], ["none.safetensors"]),
    ("steer-not-directions", ["steer", "generate", "--directions", "wrongkeys.safetensors", "--prompt", "hi"], ["wrongkeys.safetensors", "theta_help"]),
    ("steer-bad-layers", ["steer", "generate", "--directions", "corrupt.safetensors", "--prompt", "hi", "--layers", "a,b"], ["--layers"]),
    ("steer-directions-other-hidden-size", ["steer", "generate", "--directions", "hidden64.safetensors", "--model", "./tiny", "--prompt", "hi"], ["--directions hidden64.safetensors", "hidden size 64", "this model has 32", "steer fit --model"]),
    ("steer-fit-missing-dataset", ["steer", "fit", "--dataset", "./nope", "-o", "d.safetensors"], ["./nope"]),
    ("steer-fit-output-folder", ["steer", "fit", "--dataset", "ds", "-o", "userdir"], ["--output userdir"]),
    ("steer-fit-model-missing", ["steer", "fit", "--dataset", "ds", "-o", "d.safetensors", "--model", "./m"], ["--model ./m"]),
    # iterate
    ("iterate-unknown-method", ["iterate", "--method", "dpo", "-o", "loop"], ["--method", "dpo"]),
    ("iterate-sso-needs-prompts", ["iterate", "--method", "sso", "-o", "loop"], ["--prompts"]),
    ("iterate-too-few-prompts", ["iterate", "--method", "sso", "--prompts", "prompts4.jsonl", "--iterations", "3", "-o", "loop"], ["--prompts", "6 prompts"]),
    ("iterate-num-prompts-too-small", ["iterate", "--method", "sao", "--num-prompts", "1", "-o", "loop"], ["--num-prompts 1"]),
    ("iterate-filters-missing", ["iterate", "--filters", "missing.yaml", "-o", "loop"], ["--filters missing.yaml"]),
    ("iterate-zero-iterations", ["iterate", "--iterations", "0", "-o", "loop"], ["--iterations", "0"]),
    ("iterate-model-missing", ["iterate", "--model", "out/pi1", "-o", "loop"], ["--model out/pi1"]),
    ("iterate-into-users-folder", ["iterate", "-o", "userdir"], ["--output userdir"]),
    ("iterate-selfee-reference-not-selfee", ["iterate", "--method", "sao", "--selfee-reference", "previous", "-o", "loop"], ["--selfee-reference", "--method selfee"]),
    ("iterate-selfee-reference-unknown", ["iterate", "--method", "selfee", "--prompts", "prompts4.jsonl", "--selfee-reference", "latest", "-o", "loop"], ["--selfee-reference 'latest'", "initial, previous, none"]),
    ("iterate-no-prompt-column", ["iterate", "--method", "sso", "--prompts", "text.jsonl", "-o", "loop"], ["text.jsonl", "--prompt-column"]),
    ("iterate-bad-lambdas", ["iterate", "--method", "selfee", "--prompts", "prompts12.jsonl", "--lambdas", "a,b", "-o", "loop"], ["--lambdas"]),
    ("iterate-judge-model-missing", ["iterate", "--method", "sso", "--prompts", "prompts12.jsonl", "--judge-models", "./j", "-o", "loop"], ["--judge-models ./j"]),
    # eval
    ("eval-model-b-missing", ["eval", "--model-b", "./nob", "-o", "e"], ["--model-b ./nob"]),
    ("eval-model-a-hub-offline", ["eval", "--model-a", "nobody/no-a", "--model-b", "default", "-o", "e"], ["--model-a nobody/no-a", "HF_HUB_OFFLINE"]),
    ("eval-judge-model-missing", ["eval", "--model-b", "default", "--judge-model", "./noj", "-o", "e"], ["--judge-model ./noj"]),
    ("eval-judge-kind", ["eval", "--model-b", "default", "--judge", "vibes", "-o", "e"], ["--judge 'vibes'"]),
    ("eval-prompt-column-without-prompts", ["eval", "--model-b", "default", "--prompt-column", "question", "-o", "e"], ["--prompt-column question", "--prompts"]),
    ("eval-prompt-column-missing", ["eval", "--model-b", "default", "--prompts", "prompts4.jsonl", "--prompt-column", "question", "-o", "e"], ["--prompt-column question"]),
    # the app itself
    ("unknown-command", ["biuld", "sao"], ["biuld"]),
    ("unknown-flag", ["inspect", "ds", "--jsn"], ["--jsn"]),
]


def run_main(argv: list[str], capfd) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capfd.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.mark.parametrize("argv, expected", [pytest.param(a, e, id=i) for i, a, e in CASES])
def test_user_mistake_is_one_line(work, monkeypatch, capfd, tmp_path, argv, expected):
    monkeypatch.chdir(work)
    monkeypatch.setenv("SELFPREF_CACHE", str(tmp_path))  # the logs of the failed commands
    before = sorted(p.name for p in work.iterdir())
    code, _out, err = run_main(argv, capfd)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == EXIT_USER, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("error: "), lines[0]
    for text in expected:
        assert text in lines[0], lines[0]
    after = sorted(p.name for p in work.iterdir())
    assert after == before, f"the failed command left {set(after) ^ set(before)}"  # nothing written
    assert (work / "userdir" / "notes.txt").read_text() == "the user's own file\n"


def test_the_table_is_big_and_covers_every_command():
    assert len(CASES) >= 40
    commands = {argv[0] if argv[0] != "steer" else "steer" for _, argv, _ in CASES}
    assert {"import", "inspect", "filter", "card", "push", "train", "build", "steer", "iterate",
            "eval"} <= commands


def test_an_unforeseen_error_is_one_line_with_exit_1(work, monkeypatch, capfd):
    import selfpref.data.stats as stats

    def broken(_frame):
        raise KeyError("lengths")

    monkeypatch.chdir(work)
    monkeypatch.setattr(stats, "summarize", broken)
    code, _out, err = run_main(["inspect", "ds"], capfd)
    assert code == EXIT_INTERNAL
    assert err.strip() == ("internal error: KeyError: 'lengths' (set SELFPREF_DEBUG=1 for the "
                           "traceback)")


def test_other_libraries_output_goes_to_the_log(work, monkeypatch, capfd, tmp_path):
    """Quiet by default: a library's print and warning land in the log, selfpref's line on stdout."""
    import os
    import sys

    import selfpref.data.stats as stats

    real = stats.summarize

    def noisy(frame):
        print("[RANK 0] a library's chatter")
        print("FutureWarning: a library's deprecation", file=sys.stderr)
        os.write(2, b"a C extension's own line\n")
        return real(frame)

    monkeypatch.chdir(work)
    monkeypatch.setenv("SELFPREF_CACHE", str(tmp_path))
    monkeypatch.setattr(stats, "summarize", noisy)
    code, out, err = run_main(["inspect", "ds", "--json"], capfd)
    assert code == 0 and err == ""
    assert json.loads(out)["rows"] == 6 and "RANK" not in out
    log = (tmp_path / "logs" / "selfpref-inspect.log").read_text()
    assert "[RANK 0] a library's chatter" in log and "a library's deprecation" in log
    assert "a C extension's own line" in log

    code, out, err = run_main(["inspect", "ds", "--json", "--verbose"], capfd)
    assert code == 0 and "[RANK 0] a library's chatter" in err


def test_help_and_version_exit_0(capfd):
    code, out, _ = run_main(["version"], capfd)
    assert code == 0 and out.strip()
    code, out, _ = run_main(["--help"], capfd)
    assert code == 0 and "build" in out


def test_train_methods_match_the_trainers():
    from selfpref.cli.train import Method
    from selfpref.trainers.configs import METHODS

    assert [m.value for m in Method] == list(METHODS)


def test_a_closed_stdout_exits_141_without_a_line(work, monkeypatch, capfd):
    """`selfpref inspect ds | head -1`: the reader went away; exit as a shell reports SIGPIPE."""
    import selfpref.data.stats as stats
    from selfpref.cli import EXIT_BROKEN_PIPE

    def closed(_frame):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.chdir(work)
    monkeypatch.setattr(stats, "summarize", closed)
    code, _out, err = run_main(["inspect", "ds"], capfd)
    assert code == EXIT_BROKEN_PIPE == 141 and err == ""


def test_ctrl_c_inside_a_command_exits_130_with_its_line(work, monkeypatch, capfd):
    """typer turns a KeyboardInterrupt inside a command into a returned 130; the line still comes."""
    import selfpref.data.stats as stats
    from selfpref.cli import EXIT_INTERRUPTED

    def interrupted(_frame):
        raise KeyboardInterrupt

    monkeypatch.chdir(work)
    monkeypatch.setattr(stats, "summarize", interrupted)
    code, _out, err = run_main(["inspect", "ds"], capfd)
    assert code == EXIT_INTERRUPTED == 130
    assert err.strip() == ("interrupted: finished chunks, parts and datasets are kept; rerun the "
                           "same command to resume")
