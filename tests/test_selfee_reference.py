"""SELFEE Table 5's judgment variants in `selfpref iterate --selfee-reference`."""

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from selfpref import SelfprefError
from selfpref.cli import app
from selfpref.data.refs import read_dataset
from selfpref.loop.iterate import IterateConfig, _plan, iterate, labelling_reference
from selfpref.loop.reference import selfee_reference


def _model_folder(path: Path) -> str:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text("{}")
    return str(path)


# (variant, start) -> the reference at t = 1, 2, 3. start: "seed" (--seed-data: pi_init = --model,
# pi_0 = seed-model), "ref" (--reference-model org/base is pi_init, pi_0 = --model), "plain"
# (neither: pi_0 = pi_init = --model). Names: SFT = --model, BASE = --reference-model,
# SEED = out/seed-model, IT1 = out/iter-1/model.
EXPECTED = {
    ("initial", "seed"): [("SFT", "pi_init"), ("SFT", "pi_init"), ("SFT", "pi_init")],
    ("initial", "ref"): [("BASE", "pi_init"), ("BASE", "pi_init"), ("BASE", "pi_init")],
    ("initial", "plain"): [(None, "none"), ("SFT", "pi_init"), ("SFT", "pi_init")],
    # previous at t = 1 is the model before pi_0, pi_init: the same as initial (so Table 5
    # compares them from iteration 2 on); then pi_{t-2}
    ("previous", "seed"): [("SFT", "pi_init"), ("SEED", "pi_0"), ("IT1", "pi_1")],
    ("previous", "ref"): [("BASE", "pi_init"), ("SFT", "pi_0"), ("IT1", "pi_1")],
    ("previous", "plain"): [(None, "none"), ("SFT", "pi_0"), ("IT1", "pi_1")],
    ("none", "seed"): [(None, "none")] * 3,
    ("none", "plain"): [(None, "none")] * 3,
}


@pytest.mark.parametrize("variant,start", list(EXPECTED))
def test_reference_at_each_iteration(tmp_path, variant, start):
    out = tmp_path / "loop"
    names = {"SFT": "org/sft", "BASE": "org/base", "SEED": _model_folder(out / "seed-model"),
             "IT1": _model_folder(out / "iter-1" / "model"), None: None}
    cfg = IterateConfig(method="selfee", iterations=3, output=str(out), model="org/sft",
                        prompts="p.jsonl", selfee_reference=None if variant == "initial" else variant,
                        seed_data="seed.jsonl" if start == "seed" else None,
                        reference_model="org/base" if start == "ref" else None)
    got = [labelling_reference(cfg, out, t) for t in (1, 2, 3)]
    assert got == [(names[m], role) for m, role in EXPECTED[(variant, start)]]


def test_reference_never_equals_the_generating_policy(tmp_path):
    """A reference equal to pi_{t-1} gives every pair a zero margin (Eq. 7): never chosen."""
    out = tmp_path / "loop"
    for folder in ("seed-model", "iter-1/model", "iter-2/model"):
        _model_folder(out / folder)
    for variant in ("initial", "previous"):
        for seeded, ref in ((True, None), (False, "org/base"), (False, None)):
            for t in (1, 2, 3):
                policy = str(out / "seed-model") if (t == 1 and seeded) else (
                    "org/sft" if t == 1 else str(out / f"iter-{t - 1}" / "model"))
                model, _ = selfee_reference(variant, t, out, "org/sft", ref, seeded)
                assert model != policy, (variant, seeded, ref, t)


def test_selfee_reference_errors_are_one_line(tmp_path):
    with pytest.raises(SelfprefError, match="--selfee-reference 'latest': choose one of initial, previous, none"):
        IterateConfig(method="selfee", iterations=1, output=str(tmp_path), prompts="p", selfee_reference="latest")
    with pytest.raises(SelfprefError, match="--selfee-reference.*needs --method selfee, not sso"):
        IterateConfig(method="sso", iterations=1, output=str(tmp_path), prompts="p", selfee_reference="previous")
    with pytest.raises(SelfprefError, match="--reference-model.*--selfee-reference none"):
        IterateConfig(method="selfee", iterations=1, output=str(tmp_path), prompts="p",
                      selfee_reference="none", reference_model="org/base")
    assert IterateConfig(method="selfee", iterations=1, output=str(tmp_path), prompts="p").selfee_reference == "initial"
    assert IterateConfig(method="sao", iterations=1, output=str(tmp_path)).selfee_reference is None
    result = CliRunner().invoke(app, ["iterate", "--method", "sao", "--selfee-reference", "none",
                                      "--output", str(tmp_path / "x")])
    assert isinstance(result.exception, SelfprefError) and "needs --method selfee" in str(result.exception)
    assert not (tmp_path / "x").exists()


def test_resume_refuses_a_changed_selfee_reference(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    pl.DataFrame({"prompt": [f"q{i}" for i in range(8)]}).write_ndjson(prompts)
    out = tmp_path / "loop"

    def cfg(variant):
        return IterateConfig(method="selfee", iterations=2, output=str(out), prompts=str(prompts),
                             selfee_reference=variant)

    plan = _plan(cfg(None), out)
    assert plan["config"]["selfee_reference"] == "initial"
    assert _plan(cfg("initial"), out) == plan  # the default, spelled out, is the same loop
    for variant in ("previous", "none"):
        with pytest.raises(SelfprefError, match="started with other arguments"):
            _plan(cfg(variant), out)
    # a loop started before the option existed (its fingerprint never saw it) still resumes
    old = {k: v for k, v in cfg(None).plan_config().items()
           if k not in ("push_to_hub", "prompt_column", "selfee_reference", "prompts_per_iteration")}
    assert cfg(None).fingerprint() == hashlib.sha256(
        json.dumps(old, sort_keys=True, default=str).encode()).hexdigest()[:16]


def test_previous_reference_loop_records_each_iterations_reference(tmp_path, tiny_model_path):
    """Three real iterations (tiny model, scripted answers) under Table 5's 'previous model'."""
    from selfpref.cli.iterate import summary_table

    script = tmp_path / "script.yaml"
    script.write_text(yaml.safe_dump({"answer_pair": [
        "Short.", "A longer answer with several more words in it.", "Yes, here it is.", "No."]}))
    prompts = tmp_path / "prompts.jsonl"
    pl.DataFrame({"prompt": [f"How do I do task {i}?" for i in range(6)]}).write_ndjson(prompts)
    loop = tmp_path / "loop"
    cfg = IterateConfig(method="selfee", iterations=3, output=str(loop), model=str(tiny_model_path),
                        prompts=str(prompts), selfee_reference="previous",
                        build={"backend": "scripted", "script": str(script)},
                        train={"max_steps": 1, "per_device_train_batch_size": 2, "max_length": 64,
                               "warmup_steps": 0})
    log: list[str] = []
    rows = iterate(cfg, notify=log.append)
    expected = [("none", None), ("pi_0", str(tiny_model_path)), ("pi_1", str(loop / "iter-1" / "model"))]
    assert [(r["reference"], r["reference_model"]) for r in rows] == expected
    assert all(r["selfee_reference"] == "previous" for r in rows)
    records = [read_dataset(loop / f"iter-{t}" / "raw")[1] for t in (1, 2, 3)]
    assert records[0].models["reference"].startswith("reference-free")
    assert [r.models["reference"] for r in records[1:]] == [m for _, m in expected[1:]]
    assert [r.stats["iteration"]["reference"] for r in records] == ["none", "pi_0", "pi_1"]
    assert records[2].stats["iteration"]["selfee_reference"] == "previous"
    assert any("labelled against pi_1" in line for line in log)
    assert "Eq. 7" in summary_table(rows) and "pi_1" in summary_table(rows)
    assert json.loads((loop / "iterate.json").read_text())["config"]["selfee_reference"] == "previous"
