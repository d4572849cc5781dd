"""Each trainer runs a few steps on the tiny model: finite loss, every parameter changes."""

import json
import math
from pathlib import Path

import pytest
import torch

from selfpref import SelfprefError
from selfpref.data.store import BuildRecord, write_dataset
from tests.conftest import make_rows


@pytest.fixture(scope="module")
def sso_folder(tmp_path_factory):
    n = 4
    rows = make_rows(n, method="sso",
                     feature=["Helpfulness"] * n,
                     principle_chosen=["Be helpful and specific."] * n,
                     principle_rejected=["Be vague and unhelpful."] * n,
                     original=[f"Plain answer {i}." for i in range(n)])
    out = tmp_path_factory.mktemp("data") / "sso"
    write_dataset(rows, out, BuildRecord(name="sso", method="sso"))
    return out


def _params(model_dir):
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


RUNS = {"dpo": ("dpo", {}), "ipo": ("ipo", {}), "simpo": ("simpo", {}), "orpo": ("orpo", {}),
        "sso": ("sso", {}), "selfee": ("selfee", {}),
        "sso-eq6": ("sso", {"sso_weight": "eq6"}),  # SSO Eq. 6: one more sequence, y° given x+
        "sso-dpo-no-w-no-g": ("sso", {"sso_base": "dpo", "sso_weight": "none", "sso_theta": 0.0})}
# Every card states these (item 6 of the fidelity issue), whoever set them.
STATED = ("learning_rate", "lr_scheduler_type", "warmup_steps", "warmup_steps_resolved", "num_train_epochs",
          "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "processes",
          "effective_batch_size", "optim", "weight_decay", "max_grad_norm", "seed", "beta",
          "max_length")


@pytest.mark.parametrize("run", list(RUNS))
def test_trainer_steps_change_every_parameter(run, sso_folder, tiny_model_path, tmp_path, monkeypatch):
    from selfpref.trainers.run import train

    method, options = RUNS[run]
    out = tmp_path / run
    if method in ("simpo", "orpo"):  # the command itself, checked for trl.experimental on the way
        summary = _train_command_without_trl_experimental(
            method, ["--dataset", str(sso_folder), "--model", str(tiny_model_path), "-o", str(out),
                     "--max-steps", "2", "--batch-size", "2", "--grad-accum", "1",
                     "--learning-rate", "1e-2", "--max-length", "64", "--seed", "0"], tmp_path, monkeypatch)
    else:
        summary = train(method, str(sso_folder), out, model=str(tiny_model_path), max_steps=2,
                        per_device_train_batch_size=2, gradient_accumulation_steps=1, learning_rate=1e-2,
                        max_length=64, seed=0, **options)
    assert summary["steps"] == 2 and len(summary["losses"]) == 2
    assert all(math.isfinite(x) for x in summary["losses"])
    before, after = _params(tiny_model_path), _params(out)
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert unchanged == []
    card = (out / "README.md").read_text()
    assert str(sso_folder) in card and method in card
    saved = json.loads((out / "selfpref_train.json").read_text())
    assert saved["dataset"]["fingerprint"] and saved["dropped"] == {}
    hp, sources = saved["hyperparameters"], saved["hyperparameter_sources"]
    assert set(STATED) <= set(hp) and set(hp) == set(sources)
    for key in STATED:
        assert f"| {key} | {hp[key]} | {sources[key]} |" in card
    assert hp["effective_batch_size"] == 2 and sources["learning_rate"] == "flag"
    assert sources["num_train_epochs"] != "TRL default"  # selfpref's default, with its source
    for key, value in options.items():
        assert hp[key] == value and sources[key] == "flag"


def test_sso_precompute_matches_online(sso_folder, tiny_model_path, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from selfpref.data.refs import read_dataset
    from selfpref.trainers.configs import build_config
    from selfpref.trainers.data import to_conversational
    from selfpref.trainers.sso import SSOTrainer

    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    df, _ = read_dataset(sso_folder)
    ds = Dataset.from_list(to_conversational(df, "sso"))

    def trainer(precompute):
        cfg = build_config("sso", str(tmp_path / str(precompute)), precompute_ref_log_probs=precompute,
                           per_device_train_batch_size=4)
        m = AutoModelForCausalLM.from_pretrained(tiny_model_path)
        r = AutoModelForCausalLM.from_pretrained(tiny_model_path)
        return SSOTrainer(m, r, args=cfg, train_dataset=ds, processing_class=tok)

    pre, online = trainer(True), trainer(False)
    batch_pre = pre.data_collator([pre.train_dataset[i] for i in range(4)])
    batch_online = online.data_collator([online.train_dataset[i] for i in range(4)])
    assert "ref_sso_logps" in batch_pre and "ref_sso_logps" not in batch_online
    loss_pre = pre.compute_loss(pre.model, batch_pre)
    loss_online = online.compute_loss(online.model, batch_online)
    assert loss_pre.item() == pytest.approx(loss_online.item(), rel=1e-4)
    # batch size does not change per-example values (SSO's released collator needed batch 1)
    one = pre.data_collator([pre.train_dataset[0]])
    assert pre._reference_logps(one).view(6, -1)[:, 0].tolist() == pytest.approx(
        batch_pre["ref_sso_logps"][0].tolist(), rel=1e-4)


def test_selfee_marks_least_confident_after_warmup():
    from selfpref.trainers.selfee import NoiseDetector

    detector = NoiseDetector(k=10, window=50)
    warm = torch.linspace(0.5, 1.0, 40)
    assert not detector(warm, active=False).any()
    conf = torch.tensor([0.99, 0.2, 0.95, 0.9, 0.1, 0.97, 0.93, 0.96, 0.94, 0.98])
    noisy = detector(conf, active=True)
    window = torch.cat([warm, conf]).double()
    tau = torch.quantile(window, 0.10)
    assert noisy.tolist() == (conf.double() < tau).tolist()
    assert noisy.tolist() == [False, True, False, False, True, False, False, False, False, False]


def test_rm_separates_toy_pairs(tiny_model_path, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from selfpref.trainers.run import train

    rows = []
    from selfpref.data.schema import make_row

    for i in range(16):
        rows.append(make_row(f"Say something {i}", "yes yes yes yes", f"no {i}", method="import",
                             generator="toy", labeler="human"))
    write_dataset(rows, tmp_path / "toy", BuildRecord(name="toy", method="import"))
    train("rm", str(tmp_path / "toy"), tmp_path / "rm", model=str(tiny_model_path), max_steps=30,
          per_device_train_batch_size=8, learning_rate=5e-3, seed=0)
    tok = AutoTokenizer.from_pretrained(tmp_path / "rm")
    rm = AutoModelForSequenceClassification.from_pretrained(tmp_path / "rm").eval()

    def score(prompt, answer):
        text = tok.apply_chat_template([{"role": "user", "content": prompt},
                                        {"role": "assistant", "content": answer}], tokenize=False)
        with torch.no_grad():
            return rm(**tok(text, return_tensors="pt")).logits[0, 0].item()

    correct = sum(score(r["prompt"], r["chosen"]) > score(r["prompt"], r["rejected"]) for r in rows)
    assert correct / len(rows) >= 0.9


def test_sso_needs_its_columns(tmp_path, tiny_model_path):
    from selfpref.trainers.run import train

    write_dataset(make_rows(3), tmp_path / "plain", BuildRecord(name="plain", method="sao"))
    with pytest.raises(SelfprefError, match="needs column 'original'.*selfpref build sso"):
        train("sso", str(tmp_path / "plain"), tmp_path / "o", model=str(tiny_model_path), max_steps=1)


def test_unknown_recipe_key_is_an_error(tmp_path):
    from selfpref.trainers.configs import load_recipe

    (tmp_path / "r.yaml").write_text("beta: 0.2\nlearning_rat: 1e-6\n")
    with pytest.raises(SelfprefError, match="unknown key 'learning_rat'"):
        load_recipe(tmp_path / "r.yaml", "dpo")


def test_train_maps_a_dataset_selfpref_did_not_make(tmp_path, tiny_model_path):
    import polars as pl

    from selfpref.trainers.run import train

    (tmp_path / "trl").mkdir()
    pl.DataFrame({"prompt": ["a?", "b?"], "chosen": ["yes", "sure"], "rejected": ["no", "nope"]}
                 ).write_parquet(tmp_path / "trl" / "train.parquet")
    summary = train("dpo", str(tmp_path / "trl"), tmp_path / "m", model=str(tiny_model_path),
                    max_steps=1, per_device_train_batch_size=2)
    assert summary["steps"] == 1 and summary["dataset"]["rows"] == 2


def test_grouped_logps_equal_one_padded_forward(tiny_model_path):
    """Per-kind forwards (SSO's memory saving) give the log-probs of one padded forward."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    from selfpref.models.padding import pad
    from selfpref.trainers.logps import completion_logps, completion_logps_by_group

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path).eval()
    add_fused_lm_head(model)  # as DPOTrainer does for the models it trains
    seqs = [[5, 6, 7, 8], [5, 6, 9], [1, 2, 3, 4, 5, 6, 7], [1, 2, 3, 4]]  # two kinds, different lengths
    prompt_len = [2, 2, 4, 4]
    ids, att = pad(seqs, 0)
    comp = pad([[0] * n + [1] * (len(s) - n) for s, n in zip(seqs, prompt_len)], 0)[0]
    with torch.no_grad():
        whole, n_whole = completion_logps(model, ids, att, comp)
        grouped, n_grouped = completion_logps_by_group(model, ids, att, comp, groups=2)
    assert torch.allclose(whole, grouped, atol=1e-5)
    assert n_whole.tolist() == n_grouped.tolist() == [2, 1, 3, 0]


# --- issue 19 item 7: SimPO and ORPO run on TRL's stable DPOTrainer, not on trl.experimental

def _train_command_without_trl_experimental(method, flags, tmp_path, monkeypatch):
    """`selfpref train METHOD FLAGS` with every warning recorded; asserts no TRLExperimentalWarning
    and that TRL's experimental CPO/ORPO modules were never imported, and returns the run summary.

    (TRL's own stable code loads trl.experimental.utils, silenced; what is checked is what selfpref
    adds.) Modules an earlier test imported are taken out of sys.modules first, so an import here
    would run them, and their warning, again.
    """
    import sys
    import warnings

    from selfpref.cli import run

    monkeypatch.delenv("TRL_EXPERIMENTAL_SILENCE", raising=False)
    watched = ("trl.experimental", "trl.experimental.cpo", "trl.experimental.orpo")
    for name in [m for m in sys.modules if m.startswith(watched[1:])] + [watched[0]]:
        if name in sys.modules:
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setenv("SELFPREF_CACHE", str(tmp_path / "cache"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert run(["train", method, *flags]) == 0
    assert [w for w in caught if type(w.message).__name__ == "TRLExperimentalWarning"] == []
    assert [m for m in sys.modules if m.startswith(watched[1:])] == []
    return json.loads((Path(flags[flags.index("-o") + 1]) / "selfpref_train.json").read_text())


def test_selfpref_source_imports_no_trl_experimental():
    import ast

    import selfpref

    offenders = []
    for path in Path(selfpref.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            names += [node.args[0].value] if (isinstance(node, ast.Call) and node.args
                                              and isinstance(node.args[0], ast.Constant)
                                              and getattr(node.func, "attr", getattr(node.func, "id", ""))
                                              == "import_module") else []
            offenders += [f"{path.name}: {n}" for n in names if str(n).startswith("trl.experimental")]
    assert offenders == []


def test_reference_free_methods_refuse_a_reference_model_and_dpo_only_options(tmp_path):
    from selfpref.trainers.configs import build_config
    from selfpref.trainers.run import train

    with pytest.raises(SelfprefError, match="--reference-model ref.*`train simpo` uses no reference"):
        train("simpo", "data", tmp_path / "o", reference_model="ref")
    with pytest.raises(SelfprefError, match="loss_type=.*'ipo'.*`train orpo` has no reference model"):
        build_config("orpo", str(tmp_path), {"loss_type": ["ipo"]})
    with pytest.raises(SelfprefError, match="precompute_ref_log_probs=True.*`train simpo`"):
        build_config("simpo", str(tmp_path), precompute_ref_log_probs=True)
    with pytest.raises(SelfprefError, match="label_smoothing=0.2: ORPO has no label smoothing"):
        build_config("orpo", str(tmp_path), label_smoothing=0.2)
