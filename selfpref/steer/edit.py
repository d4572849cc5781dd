"""AlignEZ §2.3: the two-step edit of MLP outputs, applied by forward hooks at every step."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def _projection(x: Any, theta: Any) -> Any:
    """<x, theta> / <theta, theta> * theta over the last axis; zero for a zero direction."""
    norm = (theta * theta).sum()
    if float(norm) == 0.0:
        return x.new_zeros(())
    return ((x * theta).sum(-1, keepdim=True) / norm) * theta


def alignez_edit(x: Any, theta_help: Any, theta_harm: Any) -> Any:
    """x^ = x - proj(x, harm); then x^ = x^ + proj(x^, help) (AlignEZ §2.3, both steps)."""
    edited = x - _projection(x, theta_harm)
    return edited + _projection(edited, theta_help)


def decoder_layers(model: Any) -> Any:
    """The model's transformer blocks (Llama-style ``model.model.layers``)."""
    layers = getattr(model.get_decoder(), "layers", None)
    if layers is None or not all(hasattr(layer, "mlp") for layer in layers):
        raise ValueError(f"{type(model).__name__}: steering needs decoder layers with an `mlp` "
                         "module (Llama, Mistral, Qwen, SmolLM style)")
    return layers


@contextlib.contextmanager
def steering(model: Any, directions: Any, layers: list[int] | None = None) -> Iterator[None]:
    """Within the block, each chosen layer's MLP output is edited; hooks are removed on exit."""
    blocks = decoder_layers(model)
    chosen = directions.layers if layers is None else layers
    handles = []
    try:
        for index in chosen:
            param = next(blocks[index].parameters())
            help_ = directions.theta_help[index].to(param.device, param.dtype)
            harm = directions.theta_harm[index].to(param.device, param.dtype)

            def hook(_module: Any, _inputs: Any, output: Any, help_: Any = help_, harm: Any = harm) -> Any:
                return alignez_edit(output, help_, harm)

            handles.append(blocks[index].mlp.register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()
