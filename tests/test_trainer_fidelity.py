"""Trainers against the papers and TRL: the fidelity issue's items, each on the tiny model."""

import functools
import json
import math
import re
from pathlib import Path

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
    end (TRL's experimental CPO/ORPO appended a second <|im_end|>; SimPO and ORPO now tokenize as
    DPOTrainer does). The template's trailing "\\n" stays."""
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


# --- item 6: the papers' training settings, read from the trainer selfpref builds, against the papers

SEEDS = Path("/work/shared/seeds")
SEED_FILE = {"SSO": "001_*.txt", "SELFEE": "002_*.txt", "SAO": "004_*.txt"}
# method -> {field: (the paper's value, the section defaults.py must cite for it, the paper's words)}.
# SAO, SSO and SELFEE are in the seeds: their words are checked against that section's text below.
# DPO, ORPO and InstructGPT are not: their words are quoted here from the papers.
PAPER = {
    "dpo": {  # DPO App. B: "we use a β = 0.1, batch size of 64 and the RMSprop optimizer with a learning
              # rate of 1e-6 ... We linearly warmup the learning rate from 0 to 1e-6 over 150 steps."
        "beta": (0.1, "DPO App. B", None), "learning_rate": (1e-6, "DPO App. B", None),
        "optim": ("rmsprop", "DPO App. B", None), "warmup_steps": (150, "DPO App. B", None),
        "lr_scheduler_type": ("constant_with_warmup", "DPO App. B", None),
        "loss_type": (["sigmoid"], "DPO Eq. 7", None)},
    "ipo": {  # no LLM settings in Azar et al.: SSO's IPO (SSO §3.1)
        "beta": (0.2, "SSO §3.1", "was 0.2"), "learning_rate": (5e-7, "SSO §3.1", "5E-7"),
        "loss_type": (["ipo"], "IPO Eq. 17", None)},
    "simpo": {
        "beta": (10.0, "SAO §4.1", r"$\beta = 10$"), "simpo_gamma": (3.0, "SAO §4.1", r"$\gamma = 3$"),
        "learning_rate": (1e-6, "SAO §4.1", r"$1 \times 10^{-6}$"),
        "lr_scheduler_type": ("cosine", "SAO §4.1", "cosine decay scheduler"),
        "warmup_steps": (0.1, "SAO §4.1", "warmup ratio of 0.1"),
        "num_train_epochs": (1, "SAO §4.1", "over a single epoch")},
    "orpo": {  # xfactlab/orpo scripts/run_mistral_orpo_beta.sh: --lr 5e-6 --lr_scheduler_type
               # inverse_sqrt --alpha 0.1 --warmup_steps 200, no --disable_prompt_loss
        "beta": (0.1, "Mistral-ORPO-beta script", None),
        "learning_rate": (5e-6, "Mistral-ORPO-beta script", None),
        "lr_scheduler_type": ("inverse_sqrt", "Mistral-ORPO-beta script", None),
        "warmup_steps": (200, "Mistral-ORPO-beta script", None),
        "orpo_prompt_loss": (True, "Mistral-ORPO-beta script", None)},
    "sso": {
        "beta": (0.2, "SSO §3.1", "was 0.2"), "learning_rate": (5e-7, "SSO §3.1", "5E-7"),
        "sso_alpha": (0.66, "SSO Eq. 5, §2.4", "we set it to 0.66"),
        "sso_theta": (0.1, "SSO §3.1", "the weight of the G function was 0.1"),
        "sso_base": ("ipo", "SSO §3.1", "We chose IPO"), "sso_weight": ("eq5", "SSO Eq. 5", None)},
    "selfee": {
        "beta": (0.1, "SELFEE §5.1", r"$\beta = 0.1$"),
        "learning_rate": (5e-7, "SELFEE §5.1", r"$5 \times 10^{-7}$"),
        "optim": ("adamw_torch", "SELFEE §5.1", r"adamw\_torch optimizer"),
        "lr_scheduler_type": ("cosine", "SELFEE §5.1", "cosine learning rate scheduler"),
        "warmup_steps": (0.1, "SELFEE §5.1", "10% of the total training steps"),
        "num_train_epochs": (1, "SELFEE §5.1", "carried out for 1 epoch"),
        "selfee_alpha": (0.1, "SELFEE §5.1", r"$\alpha = 0.1$"), "selfee_k": (10.0, "SELFEE §5.1", "K = 10"),
        "selfee_warmup": (0.2, "SELFEE §5.1", "after 20% of the total training steps"),
        "selfee_lambda": (0.5, "SELFEE §5.1", "1/2, 1/4, and 1/8"),
        "selfee_window": (50, "SELFEE B.3", "the most recent 50 samples")},
    "rm": {  # InstructGPT App. C.2: "a single epoch ... learning rate of lr = 9e-6, a cosine learning
             # rate schedule ... and a batch size of 64"
        "learning_rate": (9e-6, "InstructGPT App. C.2", None),
        "lr_scheduler_type": ("cosine", "InstructGPT App. C.2", None),
        "num_train_epochs": (1, "InstructGPT App. C.2", None)},
}
# the optimizer each paper names, as the trainer actually builds it
PAPER_OPTIMIZER = {"dpo": torch.optim.RMSprop, "selfee": torch.optim.AdamW}
# sections of the papers that are not in the seeds, from the papers
OTHER_SECTIONS = {"DPO": {"Eq. 7", "App. B"}, "IPO": {"Eq. 17"}, "InstructGPT": {"App. C.2"},
                  "ORPO": {"Fig. 1", "Eq. 6", "Eq. 7"}}
_HEADING = re.compile(r"^#*\s*(?:<span[^>]*></span>)?\s*(?:\*\*[\d ]+\*\*\s*)?"
                      r"(\d+(?:\.\d+)*|[A-Z](?:\.\d+)*)\s+[A-Z]", re.M)
_PAPER_NAME = re.compile(r"\b(SAO|SSO|SELFEE|DPO|IPO|ORPO|InstructGPT)\b")
_REF = re.compile(r"§\s?(\d+(?:\.\d+)*)|Eq\. (\d+)|App\. ([A-Z](?:\.\d+)*)|\b([A-Z]\.\d+(?:\.\d+)*)\b"
                  r"|Table (\d+)|Fig\. (\d+)")


@functools.lru_cache
def _seed(paper):
    return next(SEEDS.glob(SEED_FILE[paper])).read_text()


def _section_text(paper, number):
    """The text from the heading numbered ``number`` to the next heading (None: no such heading)."""
    text = _seed(paper)
    heads = list(_HEADING.finditer(text))
    for i, head in enumerate(heads):
        if head.group(1) == number:
            return text[head.end():heads[i + 1].start() if i + 1 < len(heads) else len(text)]
    return None


def _exists(paper, kind, number):
    if paper not in SEED_FILE:
        label = {"eq": "Eq. ", "app": "App. ", "table": "Table ", "fig": "Fig. "}.get(kind, "§")
        return f"{label}{number}" in OTHER_SECTIONS.get(paper, set())
    text = _seed(paper)
    if kind == "eq":  # the equation's tag, as the seeds write it: \tag{5}, "\quad (5)$$" or "$$\n(5)"
        return bool(re.search(rf"\\tag\{{{number}\}}|\\quad \({number}\)\s*\$\$|\$\$\s*\n\({number}\)", text))
    if kind == "table":
        return f"Table {number}" in text
    if kind == "fig":
        return f"Figure {number}" in text
    return _section_text(paper, number) is not None


def cited_sections(source):
    """[(paper, kind, number)] for each reference in a source string; a reference belongs to the
    paper named last before it ("SSO Eq. 5, §2.4" -> SSO Eq. 5 and SSO §2.4)."""
    out, paper = [], None
    for m in re.finditer(f"{_PAPER_NAME.pattern}|{_REF.pattern}", source):
        if m.group(1):
            paper = m.group(1)
            continue
        kind, number = next((k, v) for k, v in zip(("sec", "eq", "app", "app", "table", "fig"), m.groups()[1:])
                            if v)
        out.append((paper, kind, number))
    return out


def test_cited_sections_parses_and_checks_references():
    assert cited_sections("SSO Eq. 5, §2.4") == [("SSO", "eq", "5"), ("SSO", "sec", "2.4")]
    assert cited_sections("ORPO Fig. 1: a single epoch; SAO §4.1: one epoch") == [
        ("ORPO", "fig", "1"), ("SAO", "sec", "4.1")]
    assert _exists("SAO", "sec", "3.5") and _exists("SAO", "eq", "7") and _exists("SELFEE", "app", "B.3")
    assert _exists("SSO", "eq", "5") and _exists("SSO", "app", "A.1.2")
    assert not _exists("SAO", "sec", "4.9") and not _exists("SSO", "eq", "42") and not _exists("DPO", "app", "C")
    assert "Preference Optimization" not in (_section_text("SAO", "4.1") or "")  # stops at the next heading


def _built_trainer(method, folder, model_path, out, monkeypatch):
    """The trainer `selfpref train METHOD` builds, with its real arguments; stopped before training."""
    import selfpref.trainers.run as run

    built, real = [], run.make_trainer

    def keep(*args, **kwargs):
        built.append(real(*args, **kwargs))
        raise _Stop

    monkeypatch.setattr(run, "make_trainer", keep)
    with pytest.raises(_Stop):
        run.train(method, str(folder), out, model=str(model_path), max_length=128)
    return built[0]


class _Stop(Exception):
    pass


@pytest.mark.parametrize("method", METHODS)
def test_trainer_args_are_the_papers_settings(method, sso_folder, tiny_model_path, tmp_path, monkeypatch):
    """Each value the papers state, in the args of the trainer `selfpref train METHOD` builds, with
    the paper's section as its source; for SAO/SSO/SELFEE the paper's words are in that section."""
    from enum import Enum

    from selfpref.trainers.defaults import DEFAULTS

    trainer = _built_trainer(method, sso_folder, tiny_model_path, tmp_path / method, monkeypatch)
    for key, (value, section, words) in PAPER[method].items():
        got = getattr(trainer.args, key)
        assert (got.value if isinstance(got, Enum) else got) == value, key
        assert section in DEFAULTS[method][key][1], (key, DEFAULTS[method][key][1])
        if words is not None:
            (paper, kind, number), *_ = cited_sections(section)
            text = _section_text(paper, number) if kind in ("sec", "app") else _seed(paper)
            assert words in text, (key, section, words)
    if method in PAPER_OPTIMIZER:
        assert type(trainer.create_optimizer()) is PAPER_OPTIMIZER[method]
    # CPU-sized batch: 8 pairs per optimizer step; the paper's batch is in the method's recipe
    assert trainer.args.per_device_train_batch_size * trainer.args.gradient_accumulation_steps == 8


@pytest.mark.parametrize("method", METHODS)
def test_each_default_cites_a_real_section_or_says_it_is_selfprefs(method):
    """Every source names paper sections that exist (a seed's heading, equation tag, table or
    figure; the other papers' from OTHER_SECTIONS), the authors' script, or says it is selfpref's."""
    from selfpref.trainers.defaults import CPU_BATCH_SOURCE, DEFAULTS

    for key, (_, source) in DEFAULTS[method].items():
        refs = cited_sections(source)
        for paper, kind, number in refs:
            assert paper is not None and _exists(paper, kind, number), (key, source, kind, number)
        assert refs or "selfpref" in source or source == CPU_BATCH_SOURCE \
            or "Mistral-ORPO-beta script" in source, (key, source)
        if source.startswith("not stated in"):
            assert "; selfpref:" in source, (key, source)


# --- issue 23 item 1: SELFEE's pi_0 (the seed stage) trains with AdamW and cosine (SELFEE §5.1)

def test_selfee_seed_stage_builds_adamw_with_cosine(sso_folder, tiny_model_path, tmp_path, monkeypatch):
    """The TrainingArguments the seed stage of `iterate --method selfee` builds, not only `train selfee`'s:
    DPO's default optimizer is RMSprop (DPO App. B), SELFEE §5.1 trains pi_0 with adamw_torch."""
    import polars as pl

    import selfpref.trainers.run as run
    from selfpref.loop.iterate import IterateConfig, iterate

    built, real = [], run.make_trainer

    def keep(method, config, *args, **kwargs):
        built.append((method, real(method, config, *args, **kwargs)))
        raise _Stop

    monkeypatch.setattr(run, "make_trainer", keep)
    prompts = tmp_path / "prompts.jsonl"
    pl.DataFrame({"prompt": [f"How do I do task {i}?" for i in range(4)]}).write_ndjson(prompts)
    cfg = IterateConfig(method="selfee", iterations=1, output=str(tmp_path / "loop"),
                        model=str(tiny_model_path), prompts=str(prompts), seed_data=str(sso_folder),
                        train={"max_length": 128})
    with pytest.raises(_Stop):
        iterate(cfg, notify=lambda _m: None)
    method, trainer = built[0]
    assert method == "dpo"  # SELFEE Alg. 1: pi_0 is DPO on the seed data
    assert type(trainer.create_optimizer()) is torch.optim.AdamW
    assert trainer.args.optim.value == "adamw_torch"
    assert trainer.args.lr_scheduler_type.value == "cosine" and trainer.args.warmup_steps == 0.1
    assert (trainer.args.beta, trainer.args.learning_rate, trainer.args.num_train_epochs) == (0.1, 5e-7, 3)


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


# --- issue 19 item 7: selfpref's SimPO and ORPO equal TRL's experimental CPO (simpo) and ORPO

def _trl_experimental_trainer(method, folder, model_path, out):
    """TRL's experimental trainer for ``method`` with the one-end-of-turn fix selfpref used to
    ship on it: the tokens it trains on are then the ones DPOTrainer's tokenization gives."""
    from datasets import Dataset

    from selfpref.trainers.run import _load_causal, load_tokenizer

    common = {"max_length": 128, "report_to": "none", "use_cpu": not torch.cuda.is_available(),
              "bf16": False}
    if method == "simpo":
        cpo = pytest.importorskip("trl.experimental.cpo", reason="TRL no longer ships CPO")
        base = cpo.CPOTrainer
        args = cpo.CPOConfig(str(out), loss_type="simpo", cpo_alpha=0.0, beta=10.0, simpo_gamma=3.0, **common)
    else:
        orpo = pytest.importorskip("trl.experimental.orpo", reason="TRL no longer ships ORPO")
        base = orpo.ORPOTrainer
        args = orpo.ORPOConfig(str(out), beta=0.1, **common)

    class OneTurnEnd(base):
        def tokenize_row(self, feature, model=None):
            batch = super().tokenize_row(feature, model)
            eos = self.processing_class.eos_token_id
            for side in ("chosen", "rejected"):
                rendered = self.build_tokenized_answer(feature["prompt"], feature[side])["input_ids"]
                answer = sum(1 for label in batch[f"{side}_labels"] if label != -100)
                if answer == len(rendered) + 1 and eos in rendered and batch[f"{side}_input_ids"][-1] == eos:
                    for key in ("input_ids", "attention_mask", "labels"):
                        batch[f"{side}_{key}"] = batch[f"{side}_{key}"][:-1]
            return batch

    return OneTurnEnd(model=_load_causal(str(model_path)), args=args,
                      train_dataset=Dataset.from_list(_examples(folder, method)),
                      processing_class=load_tokenizer(str(model_path)))


@pytest.mark.parametrize("method", ["simpo", "orpo"])
def test_reference_free_trainers_equal_trls_experimental(method, sso_folder, tiny_model_path, tmp_path):
    """Same tiny model, same four pairs: equal loss and equal gradient on every parameter, at the
    paper defaults (SimPO beta 10, gamma 3; ORPO lambda 0.1, NLL over prompt and answer)."""
    ours = _trainer(method, sso_folder, tiny_model_path, tmp_path / "ours", max_length=128)
    assert ours.ref_model is None
    theirs = _trl_experimental_trainer(method, sso_folder, tiny_model_path, tmp_path / "trl")
    losses, grads = [], []
    for trainer in (ours, theirs):
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
        loss = trainer.compute_loss(trainer.model, batch)
        loss.backward()
        losses.append(loss.item())
        grads.append({name: p.grad for name, p in trainer.model.named_parameters()})
    # float32, summed in different orders (fused LM head vs full logits): equal to ~1e-6
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    assert losses[0] > 0.1  # a real loss, not a trivially equal 0
    assert grads[0].keys() == grads[1].keys()
    for name, grad in grads[0].items():
        assert grad.abs().sum() > 0, name
        assert torch.allclose(grad, grads[1][name], rtol=1e-4, atol=1e-4 * grad.abs().max().item()), name
