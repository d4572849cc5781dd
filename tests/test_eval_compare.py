"""AlignEZ §3's Relative Improvement% headline over the five aspects, computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from selfpref.cli import app
from selfpref.eval.compare import compare

ASPECTS = ("engagement", "helpfulness", "factuality", "depth", "clarity")


def _eval_folder(path: Path, model_b: str, net_win_b: float, aspects_b: dict[str, float] | None) -> Path:
    """An eval.json as `selfpref eval` writes it; net wins there are A's (the base's), so -B's."""
    path.mkdir()
    summary = {"models": {"a": {"label": "base", "decoding": {"max_new_tokens": 64},
                                "answers_fingerprint": "f" * 64},
                          "b": {"label": model_b}},
               "prompts": {"id": "p", "fingerprint": "e" * 64}, "judge": {"label": "j"}, "n": 10,
               "net_win": -net_win_b}
    if aspects_b is not None:
        summary["aspects"] = {k: {"net_win": -v} for k, v in aspects_b.items()}
    (path / "eval.json").write_text(json.dumps(summary))
    return path


def test_relative_improvement_headline_is_the_mean_over_the_five_aspects(tmp_path):
    # Net Win% of B over the base (E, H, F, D, C) and overall:
    #   ours     10  20  -5  15  10   overall 12
    #   aligned  20  40  10  30  50   overall 30
    # per aspect RI% = ours / aligned x 100:  50  50  -50  50  20
    # headline = (50 + 50 - 50 + 50 + 20) / 5 = 120 / 5 = 24
    # overall RI% = 12 / 30 x 100 = 40
    # mean Net Win% (Table 1's Avg.): ours 50 / 5 = 10, aligned 150 / 5 = 30 -> RI% of the means 33.33
    ours = _eval_folder(tmp_path / "ours", "ours", 12, dict(zip(ASPECTS, (10, 20, -5, 15, 10))))
    aligned = _eval_folder(tmp_path / "aligned", "aligned", 30, dict(zip(ASPECTS, (20, 40, 10, 30, 50))))
    r = compare(ours, aligned)
    assert [r["aspects"][a]["relative_improvement"] for a in ASPECTS] == \
        pytest.approx([50.0, 50.0, -50.0, 50.0, 20.0])
    assert r["headline_relative_improvement"] == pytest.approx(24.0)
    assert r["headline"].startswith("mean of the 5 aspects")
    assert r["relative_improvement"] == pytest.approx(40.0)  # the overall one, kept beside it
    mean = r["aspect_mean"]
    assert (mean["net_win_ours"], mean["net_win_aligned"]) == pytest.approx((10.0, 30.0))
    assert mean["relative_improvement_of_mean_net_win"] == pytest.approx(100 / 3)
    table = CliRunner().invoke(app, ["eval", "compare", str(ours), str(aligned)])
    assert table.exit_code == 0, table.output
    assert "mean of the aspects" in table.output and "Relative Improvement%: 24.0" in table.output

    # one aspect where the aligned model nets 0: its RI% is undefined, so is their mean;
    # the ratio of the means (ours 10, aligned (20+40+0+30+50)/5 = 28 -> 35.71) still exists
    zero = _eval_folder(tmp_path / "zero", "aligned", 30, dict(zip(ASPECTS, (20, 40, 0, 30, 50))))
    r = compare(ours, zero)
    assert r["headline_relative_improvement"] is None
    assert r["aspect_mean"]["relative_improvement_of_mean_net_win"] == pytest.approx(100 * 10 / 28)

    # without aspects the headline is the overall judgment's: 12 / 30 x 100
    plain_ours = _eval_folder(tmp_path / "po", "ours", 12, None)
    plain_aligned = _eval_folder(tmp_path / "pa", "aligned", 30, None)
    r = compare(plain_ours, plain_aligned)
    assert r["headline_relative_improvement"] == pytest.approx(40.0) and "aspect_mean" not in r
    assert r["headline"].startswith("overall")


def test_eval_readme_has_the_aspects_mean_row():
    from selfpref.eval.report import _readme

    rates = lambda w, lo, t: {"win_rate": w, "lose_rate": lo, "tie_rate": t, "net_win": w - lo}  # noqa: E731
    # depth 60/30/10 (net 30), clarity 40/40/20 (net 0): means 50, 35, 15, net 15
    text = _readme({"n": 10, "aspects": {"depth": rates(60.0, 30.0, 10.0),
                                         "clarity": rates(40.0, 40.0, 20.0)}}, "t")
    assert "| mean of the 2 aspects (AlignEZ Table 1's Avg.) | 50.0 | 35.0 | 15.0 | 15.0 |" in text
