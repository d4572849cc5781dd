"""``selfpref.steer_fit`` and ``selfpref.steer_generate``: AlignEZ, no training."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from selfpref import SelfprefError
from selfpref.api.checks import check_models, prepare_output


def steer_fit(dataset: str, output: str | Path, *, model: str | None = None, batch_size: int = 8,
              max_pairs: int | None = None, max_layers: int | None = None,
              layer_rule: str = "running-mean", prompt_format: str = "auto", overwrite: bool = False,
              notify: Callable[[str], None] | None = print) -> Any:
    """Fit theta_help / theta_harm per layer (first right-singular vectors, AlignEZ §2.2) and
    pick the layers to edit (A.4, held-out CCS loss); writes a ``.safetensors`` file.

    Args:
        dataset: a preference dataset; chosen = helpful, rejected = harmful.
        output: the directions file to write.
        model: the model to steer (default: the embedded SmolLM2-135M-Instruct).
        batch_size: answers per forward pass.
        max_pairs: use at most this many pairs.
        max_layers: edit at most this many of the chosen layers (lowest CCS loss first).
        layer_rule: how A.4 picks layers from the sorted CCS losses: ``running-mean``
            (selfpref's: the layers before the largest rise of the running mean, at least one)
            or ``a4-pseudocode`` (the paper's pseudocode indices: one layer fewer, the full set's
            mean not considered, possibly none).
        prompt_format: how the prompts reach the model: ``chat`` (its chat template),
            ``completion`` (plain "Query: ... Answer:" text, for a base model; AlignEZ §2.1) or
            ``auto`` (completion when the tokenizer has no chat template).
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
                     max_layers=max_layers, layer_rule=layer_rule, prompt_format=prompt_format,
                     notify=notify)
    if notify:
        scores = ", ".join(f"{i} ({directions.scores[i]:.3f})" for i in directions.layers)
        notify(f"wrote {out}: {directions.metadata['pairs']} pairs, "
               f"{directions.theta_help.shape[0]} layers scored by held-out CCS loss; "
               f"editing layers {scores}")
    return directions


def steer_generate(directions: str | Path, prompts: str | Sequence[str], *, model: str | None = None,
                   layers: list[int] | None = None, compare: bool = False,
                   max_new_tokens: int = 64, temperature: float = 0.0,
                   seed: int = 0, prompt_format: str = "auto") -> list[dict[str, str]]:
    """Answer with AlignEZ's edit (remove theta_harm, add theta_help; §2.3) at every generation step.

    Args:
        directions: the directions file from ``selfpref steer fit``.
        prompts: the user turn(s) to answer.
        model: the model the directions were fit on (default: the embedded one).
        layers: edit these layers instead of the fitted choice, e.g. ``[3, 5, 7]``.
        compare: also answer without the edit.
        max_new_tokens: most new tokens to generate.
        temperature: 0 for greedy decoding.
        seed: the sampling seed.
        prompt_format: ``chat``, ``completion`` or ``auto`` (the format the directions were fit
            with, else completion when the tokenizer has no chat template).

    Returns:
        One dict per prompt with ``prompt``, ``steered`` (and ``unsteered`` with ``compare``).
    """
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
                    max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                    prompt_format=prompt_format)
