"""Every shipped build recipe loads into a BuildConfig; the paper recipes carry each paper's
generation settings (SAO §4.1, SSO §3.1, SELFEE §5.1)."""

from pathlib import Path

import pytest

from selfpref.pipelines.config import BuildConfig, load_build_recipe

RECIPES = sorted((Path(__file__).resolve().parents[1] / "selfpref" / "recipes" / "build").glob("*.yaml"))


def test_every_paper_has_a_build_recipe():
    # A clean clone once lacked these files (an unanchored `build/` in .gitignore hid them).
    assert {p.stem for p in RECIPES} >= {"sao-paper", "sso-paper", "selfee-paper", "alignez-paper"}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_build_recipe_loads(path):
    config = BuildConfig(**load_build_recipe(path))
    assert path.name.startswith(config.method)


def test_paper_generation_settings():
    get = {p.stem: BuildConfig(**load_build_recipe(p)) for p in RECIPES}
    assert (get["sao-paper"].temperature, get["sao-paper"].num_prompts) == (0.6, 60000)
    sso = get["sso-paper"]
    assert (sso.temperature, sso.top_p, sso.max_new_tokens) == (0.7, 0.8, 2048)
    selfee = get["selfee-paper"]
    assert (selfee.temperature, selfee.max_new_tokens, selfee.beta) == (0.7, 300, 0.1)
