"""``selfpref.steer_fit`` and ``selfpref.steer_generate``: AlignEZ, no training."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from selfpref import SelfprefError
from selfpref.api.checks import check_models, prepare_output


def steer_fit(dataset: str, output: str | Path, *, model: str | None = None, batch_size: int = 8,
              max_pairs: int | None = None, max_layers: int | None = None,
              overwrite: bool = False, notify: Callable[[str], None] | None = print) -> Any:
    """Fit theta_help / theta_harm per layer (first right-singular vectors, AlignEZ §2.2) and
    pick the layers to edit (A.4, held-out CCS loss); writes a ``.safetensors`` file.

    Args:
        dataset: a preference dataset; chosen = helpful, rejected = harmful.
        output: the directions file to write.
        model: the model to steer (default: the embedded SmolLM2-135M-Instruct).
        batch_size: answers per forward pass.
        max_pairs: use at most this many pairs.
        max_layers: edit at most this many of the chosen layers (lowest CCS loss first).
        overwrite: replace an existing file at ``output``.
        notify: where progress lines go (``None``: nowhere).

    Returns:
        The fitted :class:`~selfpref.steer.directions.Directions`.
    """
    from selfpref.steer import fit

    for name, value, low in (("--batch-size", batch_size, 1), ("--max-pairs", max_pairs, 2),
                             ("--max-layers", max_layers, 1)):
        if value is not None and value < low:
            raise SelfprefError(f"{name} {value}: must be at least {low}")
    out = Path(output)
    if out.is_dir():
        raise SelfprefError(f"--output {out}: that is a folder; name the directions file, e.g. "
                            f"{out}/directions.safetensors")
    prepare_output(out, overwrite)
    check_models([("--model", model)])
    directions = fit(dataset, out, model=model, batch_size=batch_size, max_pairs=max_pairs,
                     max_layers=max_layers, notify=notify)
    if notify:
        scores = ", ".join(f"{i} ({directions.scores[i]:.3f})" for i in directions.layers)
        notify(f"wrote {out}: {directions.metadata['pairs']} pairs, "
               f"{directions.theta_help.shape[0]} layers scored by held-out CCS loss; "
               f"editing layers {scores}")
    return directions


def steer_generate(directions: str | Path, prompts: str | Sequence[str], *, model: str | None = None,
                   layers: list[int] | None = None, compare: bool = False,
                   max_new_tokens: int = 64, temperature: float = 0.0,
                   seed: int = 0) -> list[dict[str, str]]:
    """Answer with AlignEZ's edit (remove theta_harm, add theta_help; §2.3) at every generation
    step; one dict per prompt with ``prompt``, ``steered`` (and ``unsteered`` with ``compare``)."""
    from selfpref.steer import generate, read_directions

    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompts or not all(p.strip() for p in prompts):
        raise SelfprefError("--prompt '': give the question to answer")
    if max_new_tokens < 1:
        raise SelfprefError(f"--max-new-tokens {max_new_tokens}: must be at least 1")
    if temperature < 0:
        raise SelfprefError(f"--temperature {temperature}: must be >= 0")
    read_directions(directions)  # missing, corrupt or inconsistent: refused before the model loads
    check_models([("--model", model)])
    return generate(directions, prompts, model=model, layers=layers, compare=compare,
                    max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
