"""Give a finished model's accelerator memory back before the next one loads.

vLLM checks at start-up that the free GPU memory covers ``gpu_memory_utilization``; an engine
or a trainer whose tensors linger in reference cycles, or in PyTorch's caching allocator, makes
the next build in the same process (``iterate``: build, train, build) fail that check.
"""

from __future__ import annotations

import gc
import sys


def release_memory() -> None:
    """Collect garbage, then empty PyTorch's CUDA cache if torch is loaded and sees a GPU.

    torch is not imported here: a process that never loaded it holds no CUDA memory."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
