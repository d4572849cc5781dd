"""The separability probe: a deterministic bounded sample, an interval, cached embeddings, the flag.

The embedder is replaced by a counting fake (a vector from the text's hash, shifted for answers
that say "correct"), so these tests check what is embedded and reused, not MiniLM itself
(test_datacards.py runs the real one).
"""

import hashlib
import random

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

import selfpref.datacards.separability as S
from selfpref.cli import app
from selfpref.data.refs import read_dataset
from selfpref.data.schema import make_row
from selfpref.data.store import BuildRecord, write_dataset
from selfpref.datacards import card_writer
from selfpref.filters.apply import filter_dataset


def _rows(n, seed=0):
    rng = random.Random(seed)
    return [make_row(f"Question {i}?", f"A correct answer {i} " + "ok " * rng.randint(0, 40),
                     f"A wrong answer {i} " + "hm " * rng.randint(0, 40), method="sao",
                     generator="g", labeler="human") for i in range(n)]


@pytest.fixture
def embedded(monkeypatch, tmp_path):
    """Every text the probe embeds, in call order; the embedder is a deterministic fake."""
    calls: list[str] = []

    def fake_embed(texts, path, batch_size=32):
        calls.extend(texts)
        out = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "big")
            v = np.random.default_rng(seed).normal(size=16)
            v[0] += 1.5 if "correct" in t else -1.5
            out.append(v / np.linalg.norm(v))
        return np.array(out, dtype=np.float32)

    monkeypatch.setattr(S, "embed", fake_embed)
    monkeypatch.setattr(S, "embedder_path", lambda: tmp_path)
    return calls


def _keys(sample):
    return [S.pair_key(c, r) for c, r in zip(sample.chosen, sample.rejected)]


def test_sample_is_deterministic_bounded_and_streams(monkeypatch):
    df = pl.DataFrame(_rows(1000)).select("chosen", "rejected")
    dup = pl.concat([df, df.head(50)])  # duplicate pairs count once
    a = S.bottom_k(dup, 120)
    monkeypatch.setattr(S, "_BATCH_ROWS", 97)  # many batches, a shuffled order, a lazy frame
    b = S.bottom_k(dup.sample(fraction=1.0, shuffle=True, seed=3).lazy(), 120)
    assert (a.chosen, a.rejected) == (b.chosen, b.rejected)
    assert len(a.chosen) == 120 and len(set(zip(a.chosen, a.rejected))) == 120
    assert a.population == b.population == 1050
    every = sorted({S.pair_key(c, r) for c, r in zip(df["chosen"], df["rejected"])})
    assert _keys(a) == every[:120]  # the pairs of smallest sha256, in that order
    small = S.bottom_k(df.head(30), 120)
    assert len(small.chosen) == 30


def test_child_sample_is_the_parents_minus_what_was_dropped():
    df = pl.DataFrame(_rows(1000)).select("chosen", "rejected")
    parent = S.bottom_k(df, 450)
    child_rows = df.filter(pl.int_range(pl.len()) % 7 != 0)  # drop one row in seven
    child = S.bottom_k(child_rows, 300)
    assert set(_keys(child)) <= set(_keys(parent))  # everything it needs is in the parent's spare


def test_interval_contains_the_estimate_and_narrows_with_pairs():
    for correct, n in [(0, 10), (10, 10), (7, 10), (300, 600), (451, 600), (599, 600)]:
        low, high = S.wilson(correct, n)
        assert 0 <= low <= correct / n <= high <= 1
    assert S.wilson(450, 600)[1] - S.wilson(450, 600)[0] < S.wilson(75, 100)[1] - S.wilson(75, 100)[0]
    # the sample size's justification: at 300 pairs (600 held-out answers) at most +-4 points
    low, high = S.wilson(300, 600)
    assert high - low < 0.081
    rng = np.random.default_rng(0)
    chosen, rejected = rng.normal(0.3, 1, (300, 8)), rng.normal(-0.3, 1, (300, 8))
    result = S.probe(chosen, rejected, seed=0)
    assert result["pairs"] == 300 and result["folds"] == 5
    assert result["ci95"][0] <= result["accuracy"] <= result["ci95"][1]
    assert 0.55 < result["accuracy"] < 0.95


def test_child_embeds_only_texts_missing_from_the_parents_cache(tmp_path, embedded):
    write_dataset(_rows(1000), tmp_path / "p", BuildRecord(name="p", method="sao"), card=card_writer())
    parent_sep = read_dataset(tmp_path / "p")[1].stats["separability"]
    # the parent embeds its sample and the spare pairs once, each distinct text once
    assert len(embedded) == len(set(embedded)) == parent_sep["embedded"] == 2 * S.SPARE_PAIRS
    assert parent_sep["reused"] == 0 and parent_sep["pairs"] == S.SAMPLE_PAIRS
    assert parent_sep["of"] == 1000 and (tmp_path / "p" / S.CACHE_FILE).is_file()
    cached = set(S.load_cache(tmp_path / "p"))
    assert len(cached) == 2 * S.SPARE_PAIRS

    # a light filter: the child's sample is all in the parent's cache; the embedder is not called
    embedded.clear()
    filter_dataset(tmp_path / "p", tmp_path / "c1", [("max_length_diff", 60)], card=card_writer())
    child_df, child = read_dataset(tmp_path / "c1")
    assert 700 < child_df.height < 1000
    sep = child.stats["separability"]
    assert embedded == [] and sep["embedded"] == 0 and sep["reused"] == 2 * S.SAMPLE_PAIRS
    assert sep["of"] == child_df.height

    # a heavy filter: only texts not in the parent's cache are embedded
    embedded.clear()
    filter_dataset(tmp_path / "p", tmp_path / "c2", [("max_length_diff", 10)], card=card_writer())
    child_df, child = read_dataset(tmp_path / "c2")
    sep = child.stats["separability"]
    assert child_df.height < 600 and 0 < len(embedded) == sep["embedded"]
    assert not {S.text_key(t) for t in embedded} & cached
    assert sep["reused"] > 0 and sep["ci95"][0] <= sep["accuracy"] <= sep["ci95"][1]
    texts = set(child_df["chosen"]) | set(child_df["rejected"])
    assert set(embedded) <= texts

    # rewriting a card in place reuses the folder's own cache: nothing embedded, same result
    embedded.clear()
    result = CliRunner().invoke(app, ["card", str(tmp_path / "c2")])
    assert result.exit_code == 0, result.output
    again = read_dataset(tmp_path / "c2")[1].stats["separability"]
    assert embedded == [] and again["accuracy"] == sep["accuracy"] and again["ci95"] == sep["ci95"]


def test_cached_and_fresh_embeddings_give_the_same_accuracy(tmp_path, embedded):
    write_dataset(_rows(200), tmp_path / "a", BuildRecord(name="a", method="sao"), card=card_writer())
    fresh = read_dataset(tmp_path / "a")[1].stats["separability"]
    result = CliRunner().invoke(app, ["card", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    cached = read_dataset(tmp_path / "a")[1].stats["separability"]
    assert fresh["embedded"] > 0 and cached["embedded"] == 0
    assert (fresh["accuracy"], fresh["ci95"]) == (cached["accuracy"], cached["ci95"])


def test_card_text_shows_the_interval(tmp_path, embedded):
    write_dataset(_rows(400), tmp_path / "d", BuildRecord(name="d", method="sao"), card=card_writer())
    text = (tmp_path / "d" / "README.md").read_text()
    sep = read_dataset(tmp_path / "d")[1].stats["separability"]
    low, high = sep["ci95"]
    assert f"**{sep['accuracy']:.1%}** accuracy, **95% interval {low:.1%} to {high:.1%}**" in text
    assert "sample of 300 of 400 pairs" in text and "a small sample makes it wide" in text


def test_no_separability_skips_the_probe(tmp_path, monkeypatch):
    def forbidden(*a, **k):
        raise AssertionError("the probe ran")

    monkeypatch.setattr(S, "embed", forbidden)
    monkeypatch.setattr(S, "bottom_k", forbidden)
    write_dataset(_rows(50), tmp_path / "p", BuildRecord(name="p", method="sao"))
    result = CliRunner().invoke(app, ["filter", str(tmp_path / "p"), "--output", str(tmp_path / "f"),
                                      "--max-length-diff", "3000", "--no-separability"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["card", str(tmp_path / "p"), "--no-separability"])
    assert result.exit_code == 0, result.output
    for name in ("f", "p"):
        record = read_dataset(tmp_path / name)[1]
        assert record.stats["separability"] == {"skipped": "--no-separability"}
        assert "Not computed: --no-separability." in (tmp_path / name / "README.md").read_text()
        assert not (tmp_path / name / S.CACHE_FILE).exists()


def test_cache_round_trip_keeps_every_key(tmp_path):
    keys = [bytes(31) + b"\x01", b"\x01" + bytes(31), bytes(32)]  # trailing NUL bytes included
    vectors = {k: np.full(4, i, np.float16) for i, k in enumerate(keys)}
    S.save_cache(tmp_path, vectors)
    loaded = S.load_cache(tmp_path)
    assert set(loaded) == set(keys) and all((loaded[k] == vectors[k]).all() for k in keys)
    (tmp_path / S.CACHE_FILE).write_bytes(b"not a zip")  # a damaged cache is ignored
    assert S.load_cache(tmp_path) == {}


def test_logistic_fit_matches_scikit_learn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    for d, shift in [(16, 0.4), (384, 0.05), (8, 3.0)]:  # weak, high-dimensional, separable
        x = np.r_[rng.normal(shift, 1, (240, d)), rng.normal(-shift, 1, (240, d))]
        y = np.r_[np.ones(240), np.zeros(240)]
        w = S.fit_logistic(x, y)
        ref = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(x, y)
        assert np.allclose(w[:-1], ref.coef_[0], atol=1e-4) and abs(w[-1] - ref.intercept_[0]) < 1e-4
        test = rng.normal(0, 1, (500, d))
        assert ((test @ w[:-1] + w[-1] > 0) == ref.predict(test).astype(bool)).mean() > 0.998


def test_parent_found_locally_or_in_the_hub_cache_never_downloaded(tmp_path, monkeypatch):
    import huggingface_hub.constants

    from selfpref.datacards import parent_folder

    snapshot = tmp_path / "hub" / "datasets--org--ds" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    S.save_cache(snapshot, {bytes(32): np.zeros(4, np.float16)})
    (tmp_path / "hub" / "datasets--org--ds" / "refs").mkdir()
    (tmp_path / "hub" / "datasets--org--ds" / "refs" / "v0.2.0").write_text("a" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    def record(ref, version="0.2.0"):
        return BuildRecord(name="c", method="sao", parent={"id": ref, "version": version, "fingerprint": ""})

    assert parent_folder(record("org/ds@v0.2.0")) == snapshot
    assert parent_folder(record("org/ds")) == snapshot  # the parent's version names the tag
    assert parent_folder(record("org/ds", "0.3.0")) is None  # not downloaded: no network call
    assert parent_folder(record(str(tmp_path))) == tmp_path
    assert parent_folder(BuildRecord(name="c", method="sao")) is None
