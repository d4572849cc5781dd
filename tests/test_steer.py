"""AlignEZ steering: the edit against hand values, hooks on the tiny model, fit, layer choice, CLI."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from selfpref.cli import app
from selfpref.steer import Directions, alignez_edit, fit_directions, select_layers, steering
from selfpref.steer.directions import ccs_losses, first_right_singular_vectors, mlp_outputs
from tests.conftest import make_rows


def test_edit_by_hand():
    # x = (1, 2, 0); harm = (1, 0, 0): rejection gives (0, 2, 0);
    # help = (0, 1, 1): <x^, help> / <help, help> = 2 / 2 = 1, so x^ + help = (0, 3, 1).
    x = torch.tensor([[1.0, 2.0, 0.0]])
    edited = alignez_edit(x, torch.tensor([0.0, 1.0, 1.0]), torch.tensor([1.0, 0.0, 0.0]))
    assert edited.tolist() == [[0.0, 3.0, 1.0]]
    # the direction's length does not matter, only its span
    assert torch.allclose(alignez_edit(x, torch.tensor([0.0, 3.0, 3.0]), torch.tensor([-2.0, 0.0, 0.0])), edited)


def test_select_layers_by_hand():
    # selfpref's rule (docs/papers/alignez-notes.md), step by step on 5 layers:
    # losses by layer      0: .10  1: .12  2: .11  3: .50  4: .52
    # sorted ascending     .10 (layer 0), .11 (2), .12 (1), .50 (3), .52 (4)
    # running means m_1..m_5 (all five layers): .10, .105, .11, .2075, .27
    # rises m_{k+1} - m_k:  .005, .005, .0975, .0625 -> the largest is the 3rd (j = 2, 0-based):
    # adding the 4th sorted layer raises the mean most, so the j + 1 = 3 before it are kept
    assert select_layers([0.10, 0.12, 0.11, 0.50, 0.52]) == [0, 1, 2]
    # 6 layers .9 .1 .8 .85 .2 .95 -> sorted .1 (1), .2 (4), .8 (2), .85 (3), .9 (0), .95 (5)
    # means .1, .15, .3667, .4875, .57, .6333; rises .05, .2167, .1208, .0825, .0633 -> j = 1
    assert select_layers([0.9, 0.1, 0.8, 0.85, 0.2, 0.95]) == [1, 4]
    assert select_layers([0.3, 0.2]) == [1]  # under 3 layers: the best one


def test_select_layers_with_the_a4_pseudocode_indices_by_hand():
    rule = "a4-pseudocode"
    # the pseudocode: running means for i in range(1, n) (m_1..m_{n-1}), then
    # layers_to_edit = sorted[:argmax(diff)]. On the 5 layers above: m_1..m_4 = .10, .105, .11,
    # .2075; rises .005, .005, .0975 -> stop_edit_idx = 2: sorted[:2] = layers 0 and 2, one
    # fewer than selfpref's rule keeps
    assert select_layers([0.10, 0.12, 0.11, 0.50, 0.52], rule) == [0, 2]
    # the full set's mean is never considered: losses .1 .3 .4 .45 .9 (layers in order)
    # all five means .1, .2, .2667, .3125, .43 -> rises .1 .0667 .0458 .1175: selfpref stops
    # before the 5th and keeps 4 layers; the pseudocode sees m_1..m_4 only, rises .1 .0667
    # .0458, argmax 0, and edits sorted[:0], no layer at all
    assert select_layers([0.1, 0.3, 0.4, 0.45, 0.9]) == [0, 1, 2, 3]
    assert select_layers([0.1, 0.3, 0.4, 0.45, 0.9], rule) == []
    # the largest rise with the second layer: .1 .5 .55 .6 -> means .1 .3 .3833 (m_1..m_3)
    # rises .2 .0833 -> argmax 0: the pseudocode edits nothing; selfpref (means .1 .3 .3833
    # .4375, rises .2 .0833 .0542, j = 0) keeps the j + 1 = 1 best layer
    assert select_layers([0.1, 0.5, 0.55, 0.6], rule) == []
    assert select_layers([0.1, 0.5, 0.55, 0.6]) == [0]
    # 6 layers above: m_1..m_5 = .1, .15, .3667, .4875, .57; rises .05, .2167, .1208, .0825
    # -> stop_edit_idx 1: sorted[:1] = layer 1
    assert select_layers([0.9, 0.1, 0.8, 0.85, 0.2, 0.95], rule) == [1]
    assert select_layers([0.3, 0.2], rule) == []
    with pytest.raises(ValueError, match="unknown layer rule"):
        select_layers([0.1, 0.2, 0.3], "mean")


def _tiny(path):
    from selfpref.models import load_causal_lm

    return load_causal_lm(str(path))


def _directions(model, help_=None, harm=None, layers=None):
    n, d = model.config.num_hidden_layers, model.config.hidden_size
    g = torch.Generator().manual_seed(1)
    return Directions(torch.randn(n, d, generator=g) if help_ is None else help_,
                      torch.randn(n, d, generator=g) if harm is None else harm,
                      torch.zeros(n), list(range(n)) if layers is None else layers)


def test_hooked_mlp_output_is_the_formula(tiny_model_path):
    model, tokenizer = _tiny(tiny_model_path)
    directions = _directions(model, layers=[1])
    mlp = model.get_decoder().layers[1].mlp
    seen = {}
    before = mlp.register_forward_hook(lambda m, i, o: seen.__setitem__("raw", o.detach().clone()))
    ids = torch.tensor([[1, 5, 9, 13, 2]])
    with steering(model, directions):
        after = mlp.register_forward_hook(lambda m, i, o: seen.__setitem__("edited", o.detach().clone()))
        with torch.no_grad():
            model(input_ids=ids)
        after.remove()
    before.remove()
    expected = alignez_edit(seen["raw"], directions.theta_help[1], directions.theta_harm[1])
    assert torch.allclose(seen["edited"], expected, atol=1e-6)
    assert not torch.allclose(seen["edited"], seen["raw"])


def test_zero_directions_leave_logits_and_hooks_are_removed(tiny_model_path):
    model, tokenizer = _tiny(tiny_model_path)
    zeros = torch.zeros(model.config.num_hidden_layers, model.config.hidden_size)
    ids = torch.tensor([[1, 5, 9, 13, 2]])
    with torch.no_grad():
        plain = model(input_ids=ids).logits
        with steering(model, _directions(model, zeros, zeros)):
            steered = model(input_ids=ids).logits
    assert torch.equal(plain, steered)
    layers = model.get_decoder().layers
    assert all(len(layer.mlp._forward_hooks) == 0 for layer in layers)
    with pytest.raises(RuntimeError):  # removed on an error inside the block too
        with steering(model, _directions(model)):
            raise RuntimeError("boom")
    assert all(len(layer.mlp._forward_hooks) == 0 for layer in layers)
    with torch.no_grad(), steering(model, _directions(model)):
        changed = model(input_ids=ids).logits
    assert not torch.allclose(plain, changed)


def test_fit_directions_are_the_first_right_singular_vectors(tiny_model_path, tmp_path):
    model, tokenizer = _tiny(tiny_model_path)
    rows = make_rows(4)
    prompts = [[{"role": "user", "content": r["prompt"]}] for r in rows]
    chosen, rejected = [r["chosen"] for r in rows], [r["rejected"] for r in rows]
    directions = fit_directions(model, tokenizer, prompts, chosen, rejected)
    help_ = mlp_outputs(model, tokenizer, prompts, chosen)
    assert help_.shape == (4, model.config.num_hidden_layers, model.config.hidden_size)
    for layer in range(model.config.num_hidden_layers):
        _, _, vh = np.linalg.svd(help_[:, layer].numpy().astype(np.float64))
        got = directions.theta_help[layer].numpy()
        assert abs(abs(float(np.dot(got, vh[0]))) - 1.0) < 1e-4  # same vector up to sign
    assert directions.layers and set(directions.layers) <= set(range(model.config.num_hidden_layers))
    # right padding inside a batch does not change a row's pooled vector
    single = mlp_outputs(model, tokenizer, prompts[:1], chosen[:1])
    assert torch.allclose(single[0], help_[0], atol=1e-5)
    path = directions.save(tmp_path / "d.safetensors")
    loaded = Directions.load(path)
    assert torch.equal(loaded.theta_harm, directions.theta_harm) and loaded.layers == directions.layers
    assert first_right_singular_vectors(help_).shape == directions.theta_help.shape


def test_ccs_loss_ranks_a_separating_layer_first():
    g = torch.Generator().manual_seed(0)
    n, d = 24, 8
    v = torch.zeros(d)
    v[0] = 3.0
    noise = lambda: torch.randn(n, d, generator=g)  # noqa: E731
    truth = torch.randint(0, 2, (n, 1), generator=g).float() * 2 - 1  # a latent sign per pair
    help_ = torch.stack([noise() + truth * v, noise()], dim=1)  # layer 0 carries the contrast
    harm = torch.stack([noise() - truth * v, noise()], dim=1)
    losses = ccs_losses(help_, harm)  # 5 held-out folds of ~5 pairs
    assert losses[0] < losses[1]


def test_steer_cli_fit_and_generate(tiny_model_path, tmp_path):
    from selfpref.data.store import BuildRecord, write_dataset

    write_dataset(make_rows(5), tmp_path / "ds", BuildRecord(name="ds", method="alignez"))
    runner = CliRunner()
    out = tmp_path / "dirs.safetensors"
    fit = runner.invoke(app, ["steer", "fit", "--dataset", str(tmp_path / "ds"), "--model",
                              str(tiny_model_path), "--output", str(out)])
    assert fit.exit_code == 0, fit.output
    assert "editing layers" in fit.output and out.exists()
    capped = runner.invoke(app, ["steer", "fit", "--dataset", str(tmp_path / "ds"), "--model",
                                 str(tiny_model_path), "--output", str(tmp_path / "one.safetensors"),
                                 "--max-layers", "1"])
    one = Directions.load(tmp_path / "one.safetensors")
    assert capped.exit_code == 0 and len(one.layers) == 1
    assert one.metadata["max_layers"] == 1 and one.metadata["dataset"] == str(tmp_path / "ds")
    gen = runner.invoke(app, ["steer", "generate", "--directions", str(out), "--model",
                              str(tiny_model_path), "--prompt", "Hi?", "--compare",
                              "--max-new-tokens", "4"])
    assert gen.exit_code == 0, gen.output
    assert "unsteered:" in gen.output and "steered:" in gen.output
    bad = runner.invoke(app, ["steer", "generate", "--directions", str(out), "--model",
                              str(tiny_model_path), "--prompt", "Hi?", "--layers", "7"])
    assert bad.exit_code != 0 and "--layers 7" in str(bad.exception)


def test_layer_choice_from_a_handful_of_pairs_is_flagged():
    from selfpref.steer import unreliable_choice

    assert "0.000 on every layer" in unreliable_choice([0.0] * 30, 12)
    assert "only 12 pairs" in unreliable_choice([0.1, 0.3, 0.2], 12)
    assert unreliable_choice([0.1, 0.3, 0.2], 200) is None


def test_inconsistent_directions_file_is_refused(tmp_path):
    import torch
    from safetensors.torch import save_file

    from selfpref import SelfprefError
    from selfpref.steer import read_directions

    save_file({"theta_help": torch.zeros(3, 4), "theta_harm": torch.zeros(3, 5),
               "scores": torch.zeros(3), "layers": torch.tensor([0])}, str(tmp_path / "d.safetensors"))
    with pytest.raises(SelfprefError, match="inconsistent directions"):
        read_directions(tmp_path / "d.safetensors")
    save_file({"theta_help": torch.zeros(3, 4), "theta_harm": torch.zeros(3, 4),
               "scores": torch.zeros(3), "layers": torch.tensor([7])}, str(tmp_path / "e.safetensors"))
    with pytest.raises(SelfprefError, match="outside 0..2"):
        read_directions(tmp_path / "e.safetensors")


@pytest.fixture(scope="module")
def base_model_path(tiny_model_path, tmp_path_factory):
    """The tiny Llama with the SmolLM2 tokenizer minus its chat template: a base model."""
    import shutil

    from transformers import AutoTokenizer

    out = tmp_path_factory.mktemp("tiny-base")
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        if (tiny_model_path / name).exists():
            shutil.copy(tiny_model_path / name, out / name)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    tokenizer.chat_template = None
    tokenizer.save_pretrained(out)
    (out / "chat_template.jinja").unlink(missing_ok=True)
    return out


def test_a_base_model_builds_and_steers_through_completion_prompts(base_model_path, tmp_path):
    """AlignEZ §2.1 generates with base models: no chat template, A.5's text as a completion."""
    from transformers import AutoTokenizer

    from selfpref import SelfprefError, steer
    from selfpref.models.generation import chat_ids
    from selfpref.models.scoring import answer_token_ids
    from selfpref.pipelines.alignez import HELP_TEMPLATE
    from selfpref.pipelines.config import BuildConfig
    from selfpref.pipelines.run import build
    from tests.build_files import prompts_file

    tokenizer = AutoTokenizer.from_pretrained(base_model_path)
    assert not tokenizer.chat_template
    a5 = "Boil an egg. You are a helpful assistant. Your answer to this query should:"
    chat = [{"role": "user", "content": HELP_TEMPLATE.format(query="Boil an egg")}]
    # what reaches the model is A.5's text itself, nothing around it
    assert chat_ids(tokenizer, chat, generation_prompt=True, prompt_format="auto") == \
        tokenizer(a5)["input_ids"]
    full, n = answer_token_ids(tokenizer, chat, "Be clear.", prompt_format="auto")
    assert full[:n] == tokenizer(a5)["input_ids"]
    assert tokenizer.decode(full[n:]).strip() == "Be clear."

    prompts = prompts_file(tmp_path, ["How do I boil an egg?", "Why do cats purr?"])
    common = dict(method="alignez", model=str(base_model_path), prompts=prompts, num_prompts=2,
                  max_new_tokens=4, prompt_max_new_tokens=4)
    with pytest.raises(SelfprefError, match="--prompt-format chat: .*no chat template"):
        build(BuildConfig(**common, prompt_format="chat"), tmp_path / "chat")
    assert not (tmp_path / "chat").exists()
    record = build(BuildConfig(**common), tmp_path / "ds")  # auto: completion, no error
    assert record.parameters["prompt_format"] == "auto" and record.funnel[-1]["kept"] == 2
    assert "prompt_format: completion" in (tmp_path / "ds" / "pipeline.yaml").read_text()
    for bad, message in ((dict(method="sao", prompt_format="completion"), "only alignez"),
                         (dict(method="alignez", prompt_format="text"), "auto, chat or completion"),
                         (dict(method="alignez", prompt_format="completion", backend="vllm"),
                          "only takes chats")):
        with pytest.raises(SelfprefError, match=message):
            BuildConfig(**bad)

    directions = steer.fit(str(tmp_path / "ds"), tmp_path / "d.safetensors", model=str(base_model_path))
    assert directions.metadata["prompt_format"] == "completion"
    rows = steer.generate(tmp_path / "d.safetensors", ["Hi?"], model=str(base_model_path),
                          compare=True, max_new_tokens=3)
    assert set(rows[0]) == {"prompt", "steered", "unsteered"}
    with pytest.raises(SelfprefError, match="--prompt-format chat"):
        steer.generate(tmp_path / "d.safetensors", ["Hi?"], model=str(base_model_path),
                       prompt_format="chat")
