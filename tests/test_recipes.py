"""CI loads every recipe: a recipe that drifts from the config classes fails here."""

from pathlib import Path

import pytest
import yaml

from selfpref.trainers.configs import build_config, load_recipe

RECIPES = Path(__file__).resolve().parents[1] / "selfpref" / "recipes"
TRAIN_RECIPES = sorted(p for p in RECIPES.glob("*/*.yaml") if p.parent.name not in ("accelerate", "filter", "build"))


@pytest.mark.parametrize("path", TRAIN_RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_training_recipe_builds_its_config(path, tmp_path):
    method = path.parent.name
    config = build_config(method, str(tmp_path), load_recipe(path, method))
    for key, value in load_recipe(path, method).items():
        assert getattr(config, key) == value or key == "loss_type"
    assert config.bf16 is False  # no GPU here


@pytest.mark.parametrize("path", sorted((RECIPES / "accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_accelerate_configs_load(path):
    from accelerate.commands.config.config_args import load_config_from_file

    assert yaml.safe_load(path.read_text())["distributed_type"] in {"MULTI_GPU", "DEEPSPEED"}
    config = load_config_from_file(str(path))
    assert config.num_processes == 8


# The papers' effective batches (per-device x accumulation on one process), kept by the recipes
# while the defaults step on 8 pairs on a CPU.
PAPER_BATCH = {"sso/paper.yaml": 128, "sso/eq6.yaml": 128, "sso/no-w.yaml": 128, "sso/no-g.yaml": 128,
               "sso/no-w-no-g.yaml": 128, "ipo/sso-baseline.yaml": 128, "simpo/sao.yaml": 128,
               "selfee/paper.yaml": 32, "dpo/selfee-seed.yaml": 32, "dpo/paper.yaml": 64,
               "orpo/paper.yaml": 32, "rm/instructgpt.yaml": 64}


def test_every_training_recipe_keeps_its_paper_batch(tmp_path):
    names = {f"{p.parent.name}/{p.name}" for p in TRAIN_RECIPES}
    assert names == set(PAPER_BATCH)
    for name, batch in PAPER_BATCH.items():
        method = name.split("/")[0]
        config = build_config(method, str(tmp_path), load_recipe(RECIPES / name, method))
        assert config.per_device_train_batch_size * config.gradient_accumulation_steps == batch, name


def test_sso_ablation_recipes_are_table12(tmp_path):
    def cfg(name):
        return build_config("sso", str(tmp_path), load_recipe(RECIPES / "sso" / name, "sso"))

    assert (cfg("paper.yaml").sso_weight, cfg("paper.yaml").sso_theta) == ("eq5", 0.1)
    assert cfg("eq6.yaml").sso_weight == "eq6"
    assert (cfg("no-w.yaml").sso_weight, cfg("no-w.yaml").sso_theta) == ("none", 0.1)
    assert (cfg("no-g.yaml").sso_weight, cfg("no-g.yaml").sso_theta) == ("eq5", 0.0)
    assert (cfg("no-w-no-g.yaml").sso_weight, cfg("no-w-no-g.yaml").sso_theta) == ("none", 0.0)


def test_simpo_recipe_is_sao_setting(tmp_path):
    config = build_config("simpo", str(tmp_path), load_recipe(RECIPES / "simpo/sao.yaml", "simpo"))
    assert (config.beta, config.simpo_gamma, config.label_smoothing) == (10.0, 3.0, 0.0)


@pytest.mark.parametrize("path", sorted((RECIPES / "filter").glob("*.yaml")), ids=lambda p: p.name)
def test_filter_recipes_build_their_filters(path):
    from selfpref.filters.apply import load_filter_recipe, make_filter

    steps, options = load_filter_recipe(path)
    assert steps and all(make_filter(key, value, options) for key, value in steps)


def test_filter_recipe_unknown_key_is_named(tmp_path):
    from selfpref import SelfprefError
    from selfpref.filters.apply import load_filter_recipe

    path = tmp_path / "bad.yaml"
    path.write_text("filters:\n  - dedup: minhash\nthreshhold: 0.9\n")
    with pytest.raises(SelfprefError, match="unknown key 'threshhold'"):
        load_filter_recipe(path)
    path.write_text("filters: {dedup: minhash}\n")
    with pytest.raises(SelfprefError, match="'filters:' list"):
        load_filter_recipe(path)


def test_recipes_are_found_by_name_and_shipped_in_the_package(tmp_path):
    from selfpref import SelfprefError
    from selfpref.data.recipes import find_recipe, shipped_recipes_dir

    assert find_recipe("sao-paper", "build") == shipped_recipes_dir() / "build" / "sao-paper.yaml"
    assert find_recipe("paper", "sso").name == "paper.yaml"
    own = tmp_path / "mine.yaml"
    own.write_text("filters: []\n")
    assert find_recipe(str(own), "filter") == own
    with pytest.raises(SelfprefError, match=r"--config sao-papr: .*shipped: .*sao-paper"):
        find_recipe("sao-papr", "build")
    # shipped as package data: the wheel's file list holds every recipe
    import tomllib

    data = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "recipes/*/*.yaml" in data["tool"]["setuptools"]["package-data"]["selfpref"]
    assert sorted(shipped_recipes_dir().glob("*/*.yaml")) == sorted(RECIPES.glob("*/*.yaml"))
