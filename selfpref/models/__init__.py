"""The models layer: resolve a reference, load once, generate, score.

The names below are the public entry points; submodules import each other directly, never
through this package, so re-exporting here creates no cycle.
"""

from selfpref.models.embedded import DEFAULT_MODEL_ID, cache_dir, default_model
from selfpref.models.load import load_causal_lm
from selfpref.models.quiet import quiet_transformers
from selfpref.models.resolve import DEFAULT_MODEL_ALIASES, is_default, model_label, resolve_model

__all__ = ["DEFAULT_MODEL_ALIASES", "DEFAULT_MODEL_ID", "cache_dir", "default_model", "is_default",
           "load_causal_lm", "model_label", "quiet_transformers", "resolve_model"]
