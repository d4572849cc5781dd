"""CI loads every recipe: a recipe that drifts from the config classes fails here."""

from pathlib import Path

import pytest
import yaml

from selfpref.trainers.configs import build_config, load_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
TRAIN_RECIPES = sorted(p for p in RECIPES.glob("*/*.yaml") if p.parent.name not in ("accelerate", "filter"))


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


def test_simpo_recipe_is_sao_setting(tmp_path):
    config = build_config("simpo", str(tmp_path), load_recipe(RECIPES / "simpo/sao.yaml", "simpo"))
    assert (config.beta, config.simpo_gamma, config.cpo_alpha) == (10.0, 3.0, 0.0)


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
