"""Trainers against the papers and TRL: the fidelity issue's items, each on the tiny model."""

import json
import math
import re

import pytest
import torch

from selfpref.data.refs import read_dataset
from selfpref.data.store import BuildRecord, write_dataset
from tests.conftest import make_rows

METHODS = ("dpo", "ipo", "simpo", "orpo", "sso", "selfee", "rm")


def sso_rows(n=4, principle_chosen="Be helpful and specific."):
    return make_rows(n, method="sso", feature=["Helpfulness"] * n,
                     principle_chosen=[principle_chosen] * n,
                     principle_rejected=["Be vague and unhelpful."] * n,
                     original=[f"Plain answer {i}." for i in range(n)])


@pytest.fixture(scope="module")
def sso_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "sso"
    write_dataset(sso_rows(), out, BuildRecord(name="sso", method="sso"))
    return out


def _examples(folder, method):
    from selfpref.trainers.data import to_conversational

    df, _ = read_dataset(folder)
    return to_conversational(df, method)


def _trainer(method, folder, model_path, out, reference=None, **overrides):
    from datasets import Dataset

    from selfpref.trainers.configs import build_config
    from selfpref.trainers.run import load_tokenizer, make_trainer

    config = build_config(method, str(out), **overrides)
    tokenizer = load_tokenizer(str(model_path))
    ds = Dataset.from_list(_examples(folder, method))
    return make_trainer(method, config, ds, str(model_path), tokenizer, reference)


@pytest.fixture(scope="module")
def shifted_reference(tiny_model_path, tmp_path_factory):
    """The tiny model with every weight moved a little: a reference that differs from the policy."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    out = tmp_path_factory.mktemp("shifted-ref")
    model.save_pretrained(out)
    return out


# --- item 1: SSO with a DPO base is vanilla DPO (SSO A.1.2)

def test_sso_dpo_base_theta0_w1_is_trls_dpo_loss(sso_folder, tiny_model_path, shifted_reference, tmp_path):
    """theta 0 and W = 1 leave L_base; with the DPO base that is TRL's DPO sigmoid loss, summed
    log-probs and all (SSO's released trainer sums too; averages were ~1/|y| of DPO's gradient)."""
    common = {"beta": 0.2, "per_device_train_batch_size": 4, "max_length": 128}
    dpo = _trainer("dpo", sso_folder, tiny_model_path, tmp_path / "dpo", str(shifted_reference), **common)
    sso = _trainer("sso", sso_folder, tiny_model_path, tmp_path / "sso", str(shifted_reference),
                   sso_base="dpo", sso_theta=0.0, sso_weight="none", **common)
    rows = range(4)
    dpo_batch = dpo.data_collator([dpo.train_dataset[i] for i in rows])
    sso_batch = sso.data_collator([sso.train_dataset[i] for i in rows])
    with torch.no_grad():
        dpo_loss = dpo.compute_loss(dpo.model, dpo_batch).item()
        sso_loss = sso.compute_loss(sso.model, sso_batch).item()
    assert abs(dpo_loss - math.log(2)) > 1e-3  # policy and reference differ: a real margin
    assert sso_loss == pytest.approx(dpo_loss, rel=1e-5)


# --- item 8: one end-of-turn at the end of every trainer's answers

def _answer_texts(method, trainer, tokenizer):
    row = trainer.train_dataset[0]
    if method in ("simpo", "orpo"):
        out = {}
        for side in ("chosen", "rejected"):
            ids = [i for i, lab in zip(row[f"{side}_input_ids"], row[f"{side}_labels"]) if lab != -100]
            out[side] = tokenizer.decode(ids)
        return out
    if method == "rm":  # whole conversations: the answer is the last assistant turn
        return {side: tokenizer.decode(row[f"{side}_ids"]).split("<|im_start|>assistant\n")[-1]
                for side in ("chosen", "rejected")}
    out = {side: tokenizer.decode(row[f"{side}_ids"]) for side in ("chosen", "rejected")}
    if method == "sso":
        out["original"] = tokenizer.decode(row["original_ids"])
    return out


@pytest.mark.parametrize("method", METHODS)
def test_one_end_of_turn_per_answer(method, sso_folder, tiny_model_path, tmp_path):
    """ChatML ends an assistant turn with "<|im_end|>\\n"; every trainer trains on exactly that turn
    end (TRL's CPO/ORPO appended a second <|im_end|>). The template's trailing "\\n" stays."""
    from selfpref.trainers.run import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_path))
    assert tokenizer.eos_token == "<|im_end|>"
    trainer = _trainer(method, sso_folder, tiny_model_path, tmp_path, max_length=256)
    texts = _answer_texts(method, trainer, tokenizer)
    df, _ = read_dataset(sso_folder)
    assert texts["chosen"] == df["chosen"][0] + "<|im_end|>\n"
    assert texts["rejected"] == df["rejected"][0] + "<|im_end|>\n"
    for side, text in texts.items():
        assert text.count("<|im_end|>") == 1 and text.endswith("<|im_end|>\n"), (side, text)


# --- item 9: only training batches enter SELFEE's confidence window (Eq. 9/11)

def test_selfee_eval_batches_stay_out_of_the_window(sso_folder, tiny_model_path, tmp_path):
    trainer = _trainer("selfee", sso_folder, tiny_model_path, tmp_path, max_length=128)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    trainer.model.eval()
    with torch.no_grad():
        trainer.compute_loss(trainer.model, batch)
    assert len(trainer.noise.recent) == 0
    trainer.model.train()
    trainer.compute_loss(trainer.model, batch)
    assert len(trainer.noise.recent) == 2


# --- item 10: SSO's precomputed reference log-probs run where the reference model lives

def test_sso_precompute_moves_batches_to_the_reference_device(sso_folder, tiny_model_path, tmp_path,
                                                              monkeypatch):
    trainer = _trainer("sso", sso_folder, tiny_model_path, tmp_path, max_length=128)
    elsewhere = torch.device("cuda", 7)  # stands for the accelerator's device; never touched
    moved, real_to = [], torch.Tensor.to

    def recording_to(self, *args, **kwargs):
        if args and args[0] == elsewhere:
            moved.append(tuple(self.shape))
            return self  # on this CPU-only machine the tensor stays; the call is what is checked
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(type(trainer.accelerator), "device", property(lambda self: elsewhere))
    monkeypatch.setattr(torch.Tensor, "to", recording_to)
    out = trainer.precompute_reference(trainer.train_dataset, batch_size=3)
    rows = len(trainer.kinds)
    # two batches (3 + 1 examples), each with input_ids, attention_mask, completion_mask moved
    assert sorted(shape[0] for shape in moved) == [rows] * 3 + [3 * rows] * 3
    assert len(out["ref_sso_logps"]) == 4


# --- item 12: rows whose answers lose every token to truncation are dropped, counted

def test_prompts_that_fill_max_length_are_dropped_and_counted(tiny_model_path, tmp_path):
    from selfpref.data.schema import prompt_id
    from selfpref.trainers.run import train

    rows = sso_rows(4) + sso_rows(2, principle_chosen="Be helpful. " * 40)  # x+ fills 64 tokens
    for i, row in enumerate(rows):
        row["prompt"] = f"Question {i}?"
        row["prompt_id"] = prompt_id(row["prompt"])
    write_dataset(rows, tmp_path / "data", BuildRecord(name="sso", method="sso"))
    summary = train("sso", str(tmp_path / "data"), tmp_path / "m", model=str(tiny_model_path),
                    max_steps=1, per_device_train_batch_size=2, gradient_accumulation_steps=1,
                    max_length=64)
    assert summary["dropped"] == {"no_answer_tokens_after_truncation": 2}
    assert summary["rows_trained"] == 4 and summary["dataset"]["rows"] == 6
    saved = json.loads((tmp_path / "m" / "selfpref_train.json").read_text())
    assert saved["dropped"] == {"no_answer_tokens_after_truncation": 2}
    assert "no_answer_tokens_after_truncation: 2" in (tmp_path / "m" / "README.md").read_text()


def test_drop_untrainable_per_method(tiny_model_path):
    from types import SimpleNamespace

    import polars as pl

    from selfpref.trainers.data import drop_untrainable, to_conversational
    from selfpref.trainers.run import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_path))
    df = pl.DataFrame(make_rows(3))
    long = df.with_columns(prompt=pl.lit("word " * 200))
    examples = to_conversational(pl.concat([df, long.head(1)]), "dpo")
    config = SimpleNamespace(max_length=64, truncation_mode="keep_start")
    for method in ("dpo", "simpo", "orpo", "selfee"):
        kept, dropped = drop_untrainable(examples, tokenizer, method, config)
        assert len(kept) == 3 and dropped == {"no_answer_tokens_after_truncation": 1}
    kept, dropped = drop_untrainable(examples, tokenizer, "rm", config)
    assert len(kept) == 3 and dropped == {"longer_than_max_length": 1}
    keep_end = SimpleNamespace(max_length=64, truncation_mode="keep_end")
    assert drop_untrainable(examples, tokenizer, "dpo", keep_end) == (examples, {})


def test_sso_collator_refuses_an_answer_without_tokens():
    from selfpref.trainers.sso import SSOCollator

    example = {"prompt_ids": [1, 2], "pos_prompt_ids": [1, 2, 3, 4], "neg_prompt_ids": [1, 2],
               "chosen_ids": [5, 6], "rejected_ids": [7], "original_ids": [8]}
    with pytest.raises(ValueError, match=r"pos_chosen.*no answer tokens.*max_length=4"):
        SSOCollator(0, max_length=4)([example])


# --- item 13: Eq. 6 and the Table 12 ablations select the sequences they need

def test_sso_sequence_kinds_per_setting():
    from selfpref.trainers.sso import sequence_kinds

    six = ("chosen", "rejected", "pos_chosen", "pos_rejected", "neg_original", "neg_chosen")
    assert sequence_kinds(0.1, "eq5") == (six, six)
    assert sequence_kinds(0.1, "eq6") == (six + ("pos_original",), six)
    assert sequence_kinds(0.0, "none") == (("chosen", "rejected"), ("chosen", "rejected"))
    assert sequence_kinds(0.0, "eq6") == (("chosen", "rejected", "pos_original", "neg_original"),
                                          ("chosen", "rejected"))


def test_bad_sso_weight_names_the_field(tmp_path):
    from selfpref import SelfprefError
    from selfpref.trainers.configs import build_config

    with pytest.raises(SelfprefError, match="sso_weight='eq7'"):
        build_config("sso", str(tmp_path), sso_weight="eq7")


# --- item 6: the papers' training settings are the defaults, and the card states them

PAPER_DEFAULTS = {
    "dpo": {"beta": 0.1, "learning_rate": 1e-6, "optim": "rmsprop", "lr_scheduler_type": "constant_with_warmup",
                "warmup_steps": 150, "num_train_epochs": 1},
    "ipo": {"beta": 0.2, "learning_rate": 5e-7, "lr_scheduler_type": "cosine", "warmup_steps": 0.1,
                "num_train_epochs": 1},
    "simpo": {"beta": 10.0, "simpo_gamma": 3.0, "cpo_alpha": 0.0, "learning_rate": 1e-6,
                  "lr_scheduler_type": "cosine", "warmup_steps": 0.1, "num_train_epochs": 1},
    "orpo": {"beta": 0.1, "learning_rate": 5e-6, "lr_scheduler_type": "inverse_sqrt", "warmup_steps": 200,
                 "num_train_epochs": 1},
    "sso": {"beta": 0.2, "learning_rate": 5e-7, "sso_alpha": 0.66, "sso_theta": 0.1, "sso_base": "ipo",
                "sso_weight": "eq5", "lr_scheduler_type": "cosine", "warmup_steps": 0.1, "num_train_epochs": 1},
    "selfee": {"beta": 0.1, "learning_rate": 5e-7, "optim": "adamw_torch", "lr_scheduler_type": "cosine",
                   "warmup_steps": 0.1, "num_train_epochs": 1, "selfee_alpha": 0.1, "selfee_k": 10.0,
                   "selfee_window": 50, "selfee_warmup": 0.2, "selfee_lambda": 0.5},
    "rm": {"learning_rate": 9e-6, "lr_scheduler_type": "cosine", "num_train_epochs": 1},
}


@pytest.mark.parametrize("method", METHODS)
def test_defaults_are_the_papers_settings(method, tmp_path):
    from enum import Enum

    from selfpref.trainers.configs import METHODS as DEFAULTS
    from selfpref.trainers.configs import build_config

    config = build_config(method, str(tmp_path))
    for key, value in PAPER_DEFAULTS[method].items():
        got = getattr(config, key)
        assert (got.value if isinstance(got, Enum) else got) == value, key
    # CPU-sized batch: 8 pairs per optimizer step; the paper's batch is in the method's recipe
    assert config.per_device_train_batch_size * config.gradient_accumulation_steps == 8
    assert all(source for _, source in DEFAULTS[method][1].values())


@pytest.mark.parametrize("method", METHODS)
def test_train_method_help_states_the_methods_defaults_with_sources(method):
    from typer.testing import CliRunner

    from selfpref.cli import app
    from selfpref.trainers.defaults import DEFAULTS

    result = CliRunner().invoke(app, ["train", method, "--help"])
    assert result.exit_code == 0, result.output
    table = result.output.split(f"Defaults of `train {method}`", 1)[1]
    lines = table.splitlines()
    for key, (_, source) in DEFAULTS[method].items():
        assert any(line.lstrip().startswith(key) and line.rstrip().endswith(source) for line in lines), key
    if method == "simpo":  # SAO §4.1: lr 1e-6, beta 10, gamma 3, cosine, 10% warm-up, one epoch
        assert re.search(r"learning_rate \(--learning-rate\)\s+1e-06\s+SAO §4\.1", table)
        assert re.search(r"beta \(--beta\)\s+10\s+SAO §4\.1", table)
        assert re.search(r"warmup_steps\s+0\.1 \(ratio\)\s+SAO §4\.1", table)


def test_train_help_without_a_method_points_to_the_per_method_help():
    from typer.testing import CliRunner

    from selfpref.cli import app

    result = CliRunner().invoke(app, ["train", "--help"])
    assert result.exit_code == 0 and "selfpref train METHOD --help" in result.output
    assert "Defaults of" not in result.output
