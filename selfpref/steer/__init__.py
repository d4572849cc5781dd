"""AlignEZ (Is Free Self-Alignment Possible?): steer a model with directions fit from a dataset.

`fit` reads a preference dataset (chosen = helpful, rejected = harmful, as `build alignez` writes),
finds theta_help / theta_harm per layer and the layers to edit; `generate` answers with the
edit applied to those layers' MLP outputs at every generation step. No weights change.

A model whose tokenizer has no chat template (a base model, as AlignEZ §2.1 uses) is given plain
text instead (``prompt_format`` auto or completion): each query as ``Query: ...`` with an
``Answer:`` cue, in `fit` (where the answers are embedded) and `generate` alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from selfpref import SelfprefError
from selfpref.steer.directions import LAYER_RULES, Directions, fit_directions, select_layers
from selfpref.steer.edit import alignez_edit, decoder_layers, steering

# selfpref's wording (the paper shows no evaluation prompt): a base model answers after the cue.
COMPLETION_QUERY_TEMPLATE = "Query: {query}\nAnswer:"
NEXT_QUERY = "\nQuery:"  # a base model that finished its answer starts another query here


def query_chats(prompts: Sequence[str], prompt_format: str) -> list[list[dict[str, str]]]:
    """One user turn per prompt; in completion format the turn is the query with an answer cue."""
    if prompt_format == "completion":
        prompts = [COMPLETION_QUERY_TEMPLATE.format(query=p) for p in prompts]
    return [[{"role": "user", "content": p}] for p in prompts]


def _prompt_format(tokenizer: Any, prompt_format: str) -> str:
    from selfpref.models.generation import resolve_prompt_format

    try:
        return resolve_prompt_format(tokenizer, prompt_format)
    except ValueError as exc:
        raise SelfprefError(f"--prompt-format {prompt_format}: {exc}") from None


def _check_choice(flag: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise SelfprefError(f"{flag} {value!r}: use one of {', '.join(allowed)}")


def fit(dataset: str, output: str | Path, *, model: str | None = None, batch_size: int = 8,
        max_pairs: int | None = None, max_layers: int | None = None,
        layer_rule: str = "running-mean", prompt_format: str = "auto",
        notify: Callable[[str], None] | None = None) -> Directions:
    """Fit directions on ``dataset`` with ``model`` and save them to ``output`` (.safetensors).

    ``layer_rule``: `select_layers`' rule (running-mean, selfpref's; a4-pseudocode, the paper's
    indices); ``prompt_format``: auto, chat or completion (see the module docstring)."""
    from selfpref.data.refs import read_dataset
    from selfpref.models import load_causal_lm, model_label

    _check_choice("--layer-rule", layer_rule, LAYER_RULES)
    _check_choice("--prompt-format", prompt_format, ("auto", "chat", "completion"))

    df, record = read_dataset(dataset)
    df = df.filter(df["chosen"] != df["rejected"])
    if max_pairs:
        df = df.head(max_pairs)
    if df.height < 2:
        raise SelfprefError(f"{dataset}: steer fit needs at least 2 pairs with different chosen "
                            f"and rejected answers, found {df.height}; build more prompts")
    net, tokenizer = load_causal_lm(model)
    used = _prompt_format(tokenizer, prompt_format)
    if used == "completion" and notify and prompt_format == "auto":
        notify("the tokenizer has no chat template: embedding the answers after plain-text "
               "completion prompts (AlignEZ's base-model setting)")
    directions = fit_directions(net, tokenizer, query_chats(df["prompt"].to_list(), used),
                                df["chosen"].to_list(), df["rejected"].to_list(),
                                batch_size=batch_size, max_layers=max_layers,
                                layer_rule=layer_rule, prompt_format=used, notify=notify)
    if not directions.layers and notify:
        notify("warning: the A.4 pseudocode's rule chose no layer (the largest rise of the running "
               "mean comes with the second-best layer), so `steer generate` edits nothing; use "
               "--layer-rule running-mean or `steer generate --layers`")
    directions.metadata.update(model=model_label(model), prompt_format=used,
                               dataset=str(dataset), dataset_version=record.version,
                               dataset_fingerprint=record.fingerprint)
    why = unreliable_choice(directions.scores.tolist(), df.height)
    directions.metadata["layer_choice_reliable"] = why is None
    if why and notify:
        notify(f"warning: the layer choice is unreliable: {why}")
    directions.save(output)
    return directions


# Below this many pairs the held-out folds hold two or three pairs each: a probe separates them
# perfectly on every layer (measured: loss 0.000 on all 30 layers of the embedded model, 12 pairs).
RELIABLE_PAIRS = 32


def unreliable_choice(scores: list[float], pairs: int) -> str | None:
    """Why the CCS layer choice means little (None when it looks usable)."""
    if scores and max(scores) - min(scores) < 1e-3:
        return (f"the held-out CCS loss is {min(scores):.3f} on every layer ({pairs} pairs), so "
                "no layer is better than another; fit on more pairs (a few dozen or more) or "
                "choose layers with `steer generate --layers`")
    if pairs < RELIABLE_PAIRS:
        folds = min(5, pairs // 2)
        held_out = f"{folds} held-out folds of about {pairs // folds} pairs" if folds >= 2 else "no held-out pairs"
        return (f"only {pairs} pairs ({held_out}); fit on {RELIABLE_PAIRS} or more pairs for a "
                "choice that means something")
    return None


def read_directions(path: str | Path) -> Directions:
    """The directions file, or one line naming it and what is wrong (missing, corrupt, inconsistent)."""
    try:
        return Directions.load(path)
    except (OSError, ValueError) as exc:
        raise SelfprefError(f"--directions {path}: {str(exc).splitlines()[0]}") from None


def load_directions(path: str | Path | Directions, model: Any, *, name: str | Path | None = None) -> Directions:
    """The directions (a file or already read), checked against ``model``'s hidden size;
    ``name`` is the file the error names when ``path`` is an object already read."""
    directions = path if isinstance(path, Directions) else read_directions(path)
    shown = name if name is not None else path
    hidden = model.config.hidden_size
    if directions.theta_help.shape[-1] != hidden:
        raise SelfprefError(f"--directions {shown} were fit on a model with hidden size "
                            f"{directions.theta_help.shape[-1]}, this model has {hidden}: fit them "
                            "again with `selfpref steer fit --model` on this model")
    return directions


def generate(directions_path: str | Path, prompts: Sequence[str], *, model: str | None = None,
             layers: list[int] | None = None, compare: bool = False, max_new_tokens: int = 64,
             temperature: float = 0.0, seed: int = 0, prompt_format: str = "auto") -> list[dict[str, str]]:
    """Steered answers (and with ``compare`` the unsteered ones) for each prompt.

    ``prompt_format`` auto: the one the directions were fit with, else by the tokenizer."""
    from selfpref.models import load_causal_lm
    from selfpref.models.generation import generate_batch, resolve_prompt_format

    _check_choice("--prompt-format", prompt_format, ("auto", "chat", "completion"))
    directions = read_directions(directions_path)  # a bad file is refused before the model loads
    total = directions.theta_help.shape[0]
    bad = [i for i in (layers or []) if not 0 <= i < total]
    if bad:
        raise SelfprefError(f"--layers {bad[0]}: the directions cover layers 0..{total - 1}")
    net, tokenizer = load_causal_lm(model)
    directions = load_directions(directions, net, name=directions_path)
    try:
        model_layers = len(decoder_layers(net))
    except ValueError as exc:
        raise SelfprefError(f"--model {model}: {exc}") from None
    if directions.theta_help.shape[0] != model_layers:
        raise SelfprefError(f"--directions {directions_path} have {directions.theta_help.shape[0]} "
                            f"layers, this model has {model_layers}: fit them again with "
                            "`selfpref steer fit --model` on this model")
    fitted = directions.metadata.get("prompt_format")
    if prompt_format == "auto" and fitted:  # answer the way the directions' answers were embedded
        try:
            used = resolve_prompt_format(tokenizer, fitted)
        except ValueError as exc:
            raise SelfprefError(f"--directions {directions_path} were fit with prompt format "
                                f"{fitted!r}: {exc}") from None
    else:
        used = _prompt_format(tokenizer, prompt_format)
    chats = query_chats(prompts, used)
    kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                                  prompt_format=used)

    def answer(texts: list[list[str]]) -> list[str]:
        return [t[0].split(NEXT_QUERY, 1)[0].strip() if used == "completion" else t[0] for t in texts]

    with steering(net, directions, layers):
        steered = answer(generate_batch(net, tokenizer, chats, **kwargs))
    rows = [{"prompt": p, "steered": s} for p, s in zip(prompts, steered)]
    if compare:
        for row, plain in zip(rows, answer(generate_batch(net, tokenizer, chats, **kwargs))):
            row["unsteered"] = plain
    return rows


__all__ = ["LAYER_RULES", "Directions", "alignez_edit", "query_chats", "fit", "fit_directions", "generate", "load_directions",
           "read_directions", "select_layers", "steering", "unreliable_choice"]
