"""`make demo`'s last step: trained vs base and steered vs base through selfpref.eval (tiny models)."""

from pathlib import Path


def test_demo_evaluation_prints_b_figures_and_the_judge_caveat(tmp_path, tiny_model_path, monkeypatch, capsys):
    import shutil

    import torch

    import selfpref.loop.demo as demo
    from selfpref.steer import Directions

    monkeypatch.setattr(demo, "OUT", tmp_path)
    monkeypatch.setattr(demo, "EVAL_PROMPTS", 3)
    monkeypatch.setattr(demo, "EVAL_NEW_TOKENS", 4)
    trained = Path(shutil.copytree(tiny_model_path, tmp_path / "simpo"))
    g = torch.Generator().manual_seed(3)
    Directions(torch.randn(2, 32, generator=g), torch.randn(2, 32, generator=g), torch.zeros(2),
               [1]).save(tmp_path / "dirs.safetensors")
    demo._evaluate(trained, tmp_path / "dirs.safetensors", base=str(tiny_model_path))
    out = capsys.readouterr().out
    assert "on 3 held-out prompts (writing, roleplay, reasoning)" in out
    lines = [line for line in out.splitlines() if line.startswith(("trained (SimPO)", "steered (AlignEZ)"))]
    assert len(lines) == 2 and all(line.split()[4] == "3" for line in lines)
    assert "The judge is the 135M base model itself. The judge picked the same answer" in out
    for name in ("eval-trained", "eval-steered"):
        assert (tmp_path / name / "eval.json").is_file() and (tmp_path / name / "README.md").is_file()
