"""Filters: planted clusters, reasons and counts, determinism, the funnel in the derived record."""

import json
import random

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from selfpref.cli import app
from selfpref.data.refs import read_dataset
from selfpref.data.schema import make_row
from selfpref.data.store import BuildRecord, write_dataset
from selfpref.filters import (
    ExactDedup,
    JudgeDispute,
    LengthBalance,
    MaxLengthDiff,
    MinConfidence,
    MinHashDedup,
    OnePerPrompt,
    RequireConsistentJudge,
    apply_filters,
)
from selfpref.filters.minhash import lean_minhash, shingle_hashes, signatures
from selfpref.filters.onpolicy import onpolicy_reasons

WORDS = [f"w{i}" for i in range(2000)]


def doc(rng, n=120):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def edit(rng, text, k):
    words = text.split()
    for i in rng.sample(range(len(words)), k):
        words[i] = rng.choice(WORDS)
    return " ".join(words)


def rows_from_prompts(prompts, **kw):
    return [make_row(p, f"chosen {i}" + " x" * (i % 7), f"rejected {i}", method="sao",
                     generator="g", labeler="human", confidence=0.5, **{k: v[i] for k, v in kw.items()})
            for i, p in enumerate(prompts)]


def test_signature_equals_datasketch_and_is_lean():
    from datasketch import MinHash

    texts = pl.Series(["one two three four five six seven", "short text", "a b c d e f g h i j"])
    sig = signatures(texts, ngram=5, num_perm=128, seed=1)
    hashes, counts = shingle_hashes(texts, 5)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    for d in range(len(texts)):
        m = MinHash(num_perm=128, seed=1, hashfunc=lambda x: x)
        m.update_batch(hashes[offsets[d] : offsets[d + 1]].tolist())
        assert np.array_equal(m.hashvalues, sig[d])
    assert counts.tolist() == [3, 1, 6]
    # the permutation parameters and pre-mix written out in selfpref equal datasketch's own
    from datasketch.minhash import _fmix as datasketch_fmix

    from selfpref.filters.minhash import _fmix, permutations
    for seed in (1, 7):
        a, b = MinHash(num_perm=128, seed=seed).permutations
        ours = permutations(128, seed)
        assert np.array_equal(ours[0], a) and np.array_equal(ours[1], b)
    sample = np.arange(0, 2**32, 2**20, dtype=np.uint32)
    assert np.array_equal(_fmix(sample), datasketch_fmix(sample, 32))


def test_lean_minhash_estimates_the_jaccard_of_two_documents():
    """The LeanMinHash handed to datasketch's MinHashLSH (cross-dataset dedup) carries the
    signature: its Jaccard with another document's is the share of equal slots, near the exact
    5-gram Jaccard counted by hand, and the LSH finds the near-duplicate, not the stranger."""
    from datasketch import MinHashLSH

    rng = random.Random(3)
    a = doc(rng, 200)
    b, stranger = edit(rng, a, 6), doc(rng, 200)

    def grams(text):
        words = text.split()
        return {tuple(words[i : i + 5]) for i in range(len(words) - 4)}

    exact = len(grams(a) & grams(b)) / len(grams(a) | grams(b))
    assert 0.6 < exact < 0.9
    sig = signatures(pl.Series([a, b, stranger]), ngram=5, num_perm=128, seed=1)
    la, lb, ls = (lean_minhash(s) for s in sig)
    assert la.jaccard(lb) == (sig[0] == sig[1]).mean()
    assert abs(la.jaccard(lb) - exact) < 0.15  # ~4 standard errors at 128 permutations
    assert la.jaccard(ls) < 0.1
    lsh = MinHashLSH(threshold=0.5, num_perm=128)
    lsh.insert("a", la)
    assert lsh.query(lb) == ["a"] and lsh.query(ls) == []


def test_minhash_removes_exactly_the_planted_copies():
    rng = random.Random(0)
    originals = [doc(rng) for _ in range(40)]
    prompts = list(originals)
    planted = {}
    for k, src in enumerate([3, 3, 10, 25]):  # a cluster of three (3 and two copies), two pairs
        planted[len(prompts)] = src
        prompts.append(edit(rng, originals[src], 1 + k % 2))
    df = pl.DataFrame(rows_from_prompts(prompts))
    kept, [report], dropped = apply_filters(df, [MinHashDedup(threshold=0.8)])
    assert sorted(dropped["prompt"].to_list()) == sorted(prompts[i] for i in planted)
    assert report.dropped == {"near_duplicate": 4} and report.kept == 40
    assert set(dropped["filter_reason"]) == {"near_duplicate"}
    assert report.parameters["bands"] * report.parameters["rows"] <= 128


def test_exact_dedup_normalises_and_keeps_first():
    prompts = ["Hello  World", "hello world", "Other", "HELLO WORLD "]
    kept, [report], _ = apply_filters(pl.DataFrame(rows_from_prompts(prompts)), [ExactDedup()])
    assert kept["prompt"].to_list() == ["Hello  World", "Other"]
    assert report.dropped == {"exact_duplicate": 2}


def test_length_filters_counts_and_determinism():
    rows = []
    for i in range(10):
        longer = i < 7  # 7 chosen-longer, 3 chosen-shorter
        rows.append(make_row(f"p{i}", "long answer " * (3 if longer else 1), "mid answer " * 2,
                             method="sao", generator="g", labeler="human"))
    rows.append(make_row("p0", "x" * 5000, "y", method="sao", generator="g", labeler="human"))
    df = pl.DataFrame(rows, schema_overrides={"confidence": pl.Float64})
    kept, reports, dropped = apply_filters(df, [MaxLengthDiff(3000), LengthBalance(seed=1)])
    assert reports[0].dropped == {"length_difference": 1}
    assert reports[1].dropped == {"length_imbalance": 4}
    lc, lr = kept["chosen"].str.len_chars(), kept["rejected"].str.len_chars()
    assert (lc > lr).sum() == (lc < lr).sum() == 3
    again, _, _ = apply_filters(df, [MaxLengthDiff(3000), LengthBalance(seed=1)])
    assert again.equals(kept)
    other, _, _ = apply_filters(df, [MaxLengthDiff(3000), LengthBalance(seed=2)])
    assert not other.equals(kept)


def test_one_per_prompt_consistency_confidence():
    rows = rows_from_prompts(["a", "a", "b", "c"], judge_consistent=[True, True, False, True])
    rows[3]["confidence"] = None
    df = pl.DataFrame(rows)
    kept, reports, _ = apply_filters(df, [OnePerPrompt(), RequireConsistentJudge(), MinConfidence(0.4)])
    assert [r.dropped for r in reports] == [{"extra_pair_for_prompt": 1}, {"judge_inconsistent": 1},
                                            {"no_confidence": 1}]
    assert kept["prompt"].to_list() == ["a"]


def test_judge_dispute_with_scripted_judges():
    from selfpref.pipelines.llms import ScriptedLLM

    df = pl.DataFrame(rows_from_prompts(["q1", "q2"]))
    agree = ScriptedLLM(option_probs=[0.9, 0.1, 0.9, 0.1])
    agree.load()
    # second judge prefers the rejected answer of q2 in both orders
    dispute = ScriptedLLM(option_probs=[0.8, 0.2, 0.1, 0.9])
    dispute.load()
    kept, [report], _ = apply_filters(df, [JudgeDispute(["a", "b"], llms=[agree, dispute])])
    assert kept["prompt"].to_list() == ["q1"] and report.dropped == {"judge_disputes": 1}


def test_judge_dispute_takes_the_text_kind_through_the_judges_layer():
    import pytest

    from selfpref import SelfprefError
    from selfpref.filters.apply import make_filter
    from selfpref.models.scripted import ScriptedModel

    df = pl.DataFrame(rows_from_prompts(["q1", "q2"]))
    # per pair: chosen shown first, then second. q1: "A" then "B" -> chosen both times;
    # q2: "B" then "A" -> rejected both times: a dispute
    judge = ScriptedModel(["Response A is better.", "B", "Response B is better.", "A"])
    kept, [report], _ = apply_filters(df, [JudgeDispute(["j"], llms=[judge], kind="text")])
    assert kept["prompt"].to_list() == ["q1"] and report.dropped == {"judge_disputes": 1}
    assert report.parameters["judge"] == "text" and judge.calls == [("generate", 4)]
    assert make_filter("judge_models", ["m"], {"judge": "text"}).kind == "text"
    with pytest.raises(SelfprefError, match="--judge 'length': the dispute filter's judges are models"):
        JudgeDispute(["m"], kind="length")


def test_onpolicy_stages_by_hand():
    lp = {k: np.array(v) for k, v in {
        "p_c": [-1.0, -1.0, -1.0, -0.5], "o_c": [-2.0, -2.0, -3.0, -1.5], "n_c": [-3.0, -1.5, -4.0, -3.5],
        "n_r": [-1.0, -1.0, -1.0, -0.5], "o_r": [-2.0, -2.0, -3.0, -1.5], "p_r": [-3.0, -3.0, -4.0, -3.5]}.items()}
    # row 1 breaks o_c > n_c; means over rows 0,2,3: o_c -2.1667 -> row 2 (-3) too unlikely;
    # gaps over rows 0,3: p_c-n_c = 2, 3 (mean 2.5) -> row 0 gap too small.
    assert onpolicy_reasons(lp) == ["onpolicy_small_gap", "onpolicy_order",
                                    "onpolicy_low_likelihood", None]


def _mean_logp_by_hand(model, tok, messages, answer):
    """log p(answer | messages) per answer token: one plain forward over the whole chat (the
    LM head on the answer positions only: SmolLM2's 49k-wide head dominates the cost)."""
    import torch

    prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    full = tok.apply_chat_template(messages + [{"role": "assistant", "content": answer}], tokenize=False)
    assert full.startswith(prompt)
    ids = tok(full, add_special_tokens=False, return_tensors="pt").input_ids
    n = len(tok(prompt, add_special_tokens=False).input_ids)
    with torch.no_grad():
        hidden = model.model(ids).last_hidden_state[0, n - 1 : -1]
        logps = torch.log_softmax(model.lm_head(hidden).double(), -1)
    return float(logps.gather(-1, ids[0, n:, None]).mean())


def test_onpolicy_filter_scores_each_answer_under_each_principle(tiny_model_path, monkeypatch):
    """SSO's on-policy filter feeds its three stages p (good principle), o (plain query), n (bad
    principle) x chosen, rejected mean per-token log-probs, each checked against a plain forward
    of the tiny model: a swapped principle, a sum for a mean or a swapped answer fails here."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import selfpref.filters.onpolicy as onpolicy
    from selfpref.filters import SSOOnPolicy

    n = 4
    rows = rows_from_prompts([f"Question {i}?" for i in range(n)],
                             principle_chosen=[f"Be good {i}." for i in range(n)],
                             principle_rejected=["Be bad and long-winded."] * n)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    seen = []
    monkeypatch.setattr(onpolicy, "onpolicy_reasons", lambda lp: seen.append(lp) or onpolicy_reasons(lp))
    kept, [report], dropped = apply_filters(pl.DataFrame(rows), [SSOOnPolicy(loaded=(model, tok))])
    [lp] = seen
    for i, row in enumerate(rows):
        contexts = {"o": [], "p": [{"role": "system", "content": row["principle_chosen"]}],
                    "n": [{"role": "system", "content": row["principle_rejected"]}]}
        for ctx, system in contexts.items():
            for side, col in (("c", "chosen"), ("r", "rejected")):
                expected = _mean_logp_by_hand(model, tok, system + [{"role": "user", "content": row["prompt"]}],
                                              row[col])
                assert lp[f"{ctx}_{side}"][i] == pytest.approx(expected, abs=1e-4), (i, ctx, side)
    reasons = onpolicy_reasons(lp)
    assert kept["prompt"].to_list() == [r["prompt"] for r, why in zip(rows, reasons) if why is None]
    assert dropped["filter_reason"].to_list() == [why for why in reasons if why is not None]


def test_filter_against_drops_a_near_duplicate_planted_in_another_dataset(tmp_path):
    """`filter --against`: a prompt of dataset B that near-duplicates one of dataset A (one word
    added: Jaccard 0.94, not an exact copy) goes as near_duplicate_of_earlier; without
    --against, B alone has no duplicate and keeps it."""
    rng = random.Random(5)
    first = [doc(rng, 40) for _ in range(6)]
    planted = first[2] + " please"
    second = [doc(rng, 40) for _ in range(4)] + [planted]
    write_dataset(rows_from_prompts(first), tmp_path / "a", BuildRecord(name="a", method="sao"))
    write_dataset(rows_from_prompts(second), tmp_path / "b", BuildRecord(name="b", method="sao"))
    from selfpref.filters.apply import filter_dataset

    _, _, alone, _ = filter_dataset(tmp_path / "b", tmp_path / "alone", [("dedup", "minhash")])
    assert alone == 5
    result = CliRunner().invoke(app, ["filter", str(tmp_path / "b"), "-o", str(tmp_path / "f"), "--dedup",
                                 "minhash", "--against", str(tmp_path / "a"),
                                 "--exclusions", str(tmp_path / "ex.parquet")])
    assert result.exit_code == 0, result.output
    assert "minhash_dedup: 5 -> 4 (near_duplicate_of_earlier 1)" in result.output
    df, record = read_dataset(tmp_path / "f")
    assert planted not in df["prompt"].to_list() and df.height == 4
    assert record.funnel[-1]["dropped"] == {"near_duplicate_of_earlier": 1}
    assert record.funnel[-1]["parameters"]["against_rows"] == 6
    excluded = pl.read_parquet(tmp_path / "ex.parquet")
    assert excluded["prompt"].to_list() == [planted]
    assert excluded["filter_reason"].to_list() == ["near_duplicate_of_earlier"]


def test_an_sao_loop_drops_in_iteration_2_a_near_duplicate_of_an_iteration_1_prompt(
        tmp_path, tiny_model_path, monkeypatch):
    """The loop's cross-dataset dedup (SAO: iterations see disjoint prompts): iteration 2's
    prompt set holds a near-copy of one of iteration 1's; iteration 2's filter drops it against
    iter-1/data. The minhash filter is passed explicitly, whatever the method's default."""
    import selfpref.trainers.run as run
    from selfpref.loop.iterate import IterateConfig, iterate, split_prompts
    from tests.build_files import prompts_file, script_file

    rng = random.Random(11)
    texts = [doc(rng, 20) for _ in range(6)]
    # split_prompts shuffles positions (not contents): find where each position lands
    first, second = ([int(p[1:]) for p in part]
                     for part in split_prompts([f"p{i}" for i in range(6)], 2, None, seed=0))
    planted = texts[second[0]] = texts[first[0]] + " please"
    script = script_file(tmp_path, answer_pair=["Short.", "A much longer answer."])
    cfg = IterateConfig(method="sao", iterations=2, output=str(tmp_path / "loop"),
                        model=str(tiny_model_path), prompts=prompts_file(tmp_path, texts),
                        filters=[("dedup", "minhash")],
                        build={"backend": "scripted", "script": script, "judge": "length"},
                        train={"max_steps": 1, "per_device_train_batch_size": 2,
                               "max_length": 256, "warmup_steps": 0})
    real_train, trained = run.train, []

    def train_once(method, dataset, output_dir, **kwargs):
        trained.append(dataset)
        if len(trained) == 2:  # iteration 2 is filtered by now; its training is not under test
            raise KeyboardInterrupt("stop before iteration 2's training")
        return real_train(method, dataset, output_dir, **kwargs)

    monkeypatch.setattr(run, "train", train_once)
    monkeypatch.setattr("selfpref.datacards.card_writer", lambda *a, **k: None)  # short cards: faster
    with pytest.raises(KeyboardInterrupt):
        iterate(cfg, notify=lambda _m: None)
    loop = tmp_path / "loop"
    splits = json.loads((loop / "iterate.json").read_text())["splits"]
    assert texts[first[0]] in splits[0] and planted in splits[1]
    raw2, _ = read_dataset(loop / "iter-2" / "raw")
    data2, record2 = read_dataset(loop / "iter-2" / "data")
    assert planted in raw2["prompt"].to_list() and raw2.height == 3
    assert planted not in data2["prompt"].to_list() and data2.height == 2
    assert record2.funnel[-1]["step"] == "minhash_dedup"
    assert record2.funnel[-1]["dropped"] == {"near_duplicate_of_earlier": 1}
    assert trained == [str(loop / "iter-1" / "data"), str(loop / "iter-2" / "data")]


def test_cli_filter_writes_derived_folder_with_funnel(tmp_path):
    rng = random.Random(1)
    base = [doc(rng, 120) for _ in range(20)]
    prompts = base + [base[0], edit(rng, base[1], 1)]
    rows = rows_from_prompts(prompts)
    rows[5]["chosen"] = "z" * 4000
    parent = write_dataset(rows, tmp_path / "p", BuildRecord(name="p", method="sao", version="0.3.0"))
    result = CliRunner().invoke(app, ["filter", str(tmp_path / "p"), "--output", str(tmp_path / "f"),
                                      "--max-length-diff", "3000", "--dedup", "minhash",
                                      "--exclusions", str(tmp_path / "ex.parquet")])
    assert result.exit_code == 0, result.output
    df, record = read_dataset(tmp_path / "f")
    assert record.version == "0.4.0"
    assert record.parent == {"id": str(tmp_path / "p"), "version": "0.3.0", "fingerprint": parent.fingerprint}
    steps = [s["step"] for s in record.funnel]
    assert steps == ["length_difference", "minhash_dedup"]  # the order given on the command line
    assert record.funnel[0]["input"] == 22
    for step in record.funnel:
        assert step["input"] == step["kept"] + sum(step["dropped"].values())
    assert df.height == record.funnel[-1]["kept"] == 19
    excluded = pl.read_parquet(tmp_path / "ex.parquet")
    assert excluded.height == 3 and excluded["filter_reason"].to_list().count("near_duplicate") == 2


def _pair(prompt, chosen_len, rejected_len, tag=""):
    return make_row(prompt, "c" * chosen_len + tag, "r" * rejected_len + tag, method="sso",
                    generator="g", labeler="principle:g")


def test_length_balance_keeps_balance_and_one_pair_per_prompt():
    # SSO A.1.4 step 3: three chosen-longer pairs on prompt 1, three chosen-shorter on prompts 2-3.
    rows = [_pair("p1", 50, 10, str(i)) for i in range(3)]
    rows += [_pair("p2", 10, 50, str(i)) for i in range(2)] + [_pair("p3", 10, 50)]
    df = pl.DataFrame(rows, schema_overrides={"confidence": pl.Float64})
    kept, [report], _ = apply_filters(df, [LengthBalance(seed=0)])
    lc, lr = kept["chosen"].str.len_chars(), kept["rejected"].str.len_chars()
    assert (lc > lr).sum() == (lc < lr).sum() == 1  # the old filter kept 1 longer vs 2 shorter
    assert kept["prompt_id"].n_unique() == kept.height == 2 and "p1" in kept["prompt"].to_list()
    # p1 keeps one of its three; one of p2 (two pairs) / p3 (one pair) is cut to balance
    cut = 2 if "p3" in kept["prompt"].to_list() else 1
    assert report.dropped == {"extra_pair_for_prompt": 2 + (2 - cut), "length_imbalance": cut}


def test_length_balance_random_sets_are_balanced_one_per_prompt_and_maximal():
    rng = random.Random(7)
    for trial in range(30):
        rows = []
        for p in range(rng.randint(1, 25)):
            for k in range(rng.randint(1, 4)):
                a, b = rng.randint(5, 60), rng.randint(5, 60)
                rows.append(_pair(f"q{p}", a, b, f"-{k}"))
        df = pl.DataFrame(rows, schema_overrides={"confidence": pl.Float64})
        kept, [report], _ = apply_filters(df, [LengthBalance(seed=trial)])
        lc, lr = kept["chosen"].str.len_chars(), kept["rejected"].str.len_chars()
        assert (lc > lr).sum() == (lc < lr).sum()
        assert kept["prompt_id"].n_unique() == kept.height
        # the most a balanced one-per-prompt selection can keep, counted independently:
        kinds = {}
        for r in rows:
            d = len(r["chosen"]) - len(r["rejected"])
            kinds.setdefault(r["prompt"], set()).add((d > 0) - (d < 0))
        equal = sum(0 in k for k in kinds.values())
        only_l = sum(k == {1} for k in kinds.values())
        only_s = sum(k == {-1} for k in kinds.values())
        both = sum(k == {1, -1} for k in kinds.values())
        side = min(only_l + both, only_s + both, (only_l + only_s + both) // 2)
        assert kept.height == equal + 2 * side, trial


def _main(argv, capfd):
    import pytest

    from selfpref.cli import main

    with pytest.raises(SystemExit) as code:
        main(argv)
    out = capfd.readouterr()
    return code.value.code, out.out, out.err


def test_a_filter_that_keeps_nothing_writes_nothing_and_prints_the_funnel(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("SELFPREF_CACHE", str(tmp_path / "cache"))
    write_dataset(rows_from_prompts([f"p{i}" for i in range(5)]), tmp_path / "p",
                  BuildRecord(name="p", method="sao"))
    code, _, err = _main(["filter", str(tmp_path / "p"), "-o", str(tmp_path / "f"), "--dedup", "exact",
                          "--min-confidence", "0.9", "--exclusions", str(tmp_path / "ex.parquet")], capfd)
    assert code == 2 and not (tmp_path / "f").exists()
    assert err.count("\n") == 1
    assert "exact_dedup: 5 -> 5; min_confidence: 5 -> 0 (low_confidence 5)" in err
    assert pl.read_parquet(tmp_path / "ex.parquet").height == 5  # asked-for exclusions still written

    code, out, err = _main(["filter", str(tmp_path / "p"), "-o", str(tmp_path / "f"),
                            "--min-confidence", "0.9", "--allow-empty"], capfd)
    assert code == 0 and "0 of 5 rows" in out
    df, record = read_dataset(tmp_path / "f")
    assert df.height == 0 and record.funnel[-1]["kept"] == 0
    code, out, err = _main(["inspect", str(tmp_path / "f")], capfd)
    assert code == 0 and out.count("\n") == 1 and "0 rows" in out
    assert "min_confidence: 5 -> 0 (low_confidence 5)" in out  # data.funnel's text, as the error's
    code, out, err = _main(["inspect", str(tmp_path / "f"), "--json"], capfd)
    summary = json.loads(out)  # strict JSON: no NaN
    assert summary["rows"] == 0 and summary["chosen_longer_share"] is None
    for command in (["card", str(tmp_path / "f")],
                    ["train", "dpo", "--dataset", str(tmp_path / "f"), "-o", str(tmp_path / "m")]):
        code, _, err = _main(command, capfd)
        assert code == 2 and err.count("\n") == 1 and "0 rows" in err, err


def test_output_that_is_not_a_dataset_is_refused_then_replaced_with_overwrite(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("SELFPREF_CACHE", str(tmp_path / "cache"))
    write_dataset(rows_from_prompts([f"p{i}" for i in range(4)]), tmp_path / "p",
                  BuildRecord(name="p", method="sao"))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    code, _, err = _main(["filter", str(tmp_path / "p"), "-o", str(mine), "--dedup", "exact"], capfd)
    assert code == 2 and "--overwrite" in err
    assert (mine / "thesis.tex").read_text() == "years of work"
    code, _, err = _main(["filter", str(tmp_path / "p"), "-o", str(tmp_path / "f"), "--dedup", "exact"], capfd)
    assert code == 0
    code, _, err = _main(["filter", str(tmp_path / "p"), "-o", str(tmp_path / "f"), "--dedup", "exact"], capfd)
    assert code == 2 and "a dataset folder is already there" in err
    code, _, err = _main(["filter", str(tmp_path / "p"), "-o", str(mine), "--dedup", "exact",
                          "--overwrite"], capfd)
    assert code == 0 and not (mine / "thesis.tex").exists() and read_dataset(mine)[0].height == 4
    assert (tmp_path / "f.log").is_file()  # the log of a successful command sits beside its output
