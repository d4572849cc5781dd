"""One module per method, each giving the distilabel Tasks of its pipeline and an ``assemble``
that turns the pipeline's rows into contract records plus the count of rows dropped per reason.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from types import ModuleType
from typing import Any, Callable

# distilabel runs its steps in a forked worker pool, and a process that already ran torch (the
# embedded model's conversion, a training run, a test session) deadlocks in OpenMP after a fork
# (measured: a build after an in-process generation hung for 400 s). Spawned workers start clean.
# This must run before distilabel is imported: it captures the start method at import time.
if multiprocessing.get_start_method(allow_none=True) != "spawn":
    multiprocessing.set_start_method("spawn", force=True)
os.environ.setdefault("DISTILABEL_LOG_LEVEL", "ERROR")
# distilabel 1.5.3 declares Field(default=None) inside unions; pydantic 2.x warns on every import,
# here and in every spawned worker (which reads PYTHONWARNINGS at start-up).
_QUIET = "ignore:The 'default' attribute with value None"
warnings.filterwarnings("ignore", message="The 'default' attribute with value None")
if _QUIET not in os.environ.get("PYTHONWARNINGS", ""):
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), _QUIET]))

LLMFactory = Callable[[str, dict], Any]  # (step name, generation kwargs) -> LLM


def method_module(method: str) -> ModuleType:
    from selfpref.pipelines import alignez, sao, selfee, sso

    return {"sao": sao, "sso": sso, "alignez": alignez, "selfee": selfee}[method]


def build_pipeline(config: Any, inputs: list[dict[str, Any]], source: str,
                   llm_factory: LLMFactory, cache_dir: str | None = None) -> Any:
    """The method's distilabel Pipeline over ``inputs`` (rows with a ``source`` column)."""
    from distilabel.pipeline import Pipeline
    from distilabel.steps import LoadDataFromDicts

    with Pipeline(name=f"selfpref-{config.method}", cache_dir=cache_dir,
                  description=f"selfpref {config.method} preference data") as pipeline:
        # One batch from the loader: under sequential_step_execution each step is its own load
        # group, and a generator with a second batch waits for a request from a step that is
        # only loaded after the generator finishes (measured: 12 prompts at batch 8 hung).
        previous = LoadDataFromDicts(name=f"load_{source}s", data=inputs,
                                     batch_size=max(1, len(inputs)))
        for step in method_module(config.method).build_steps(config, llm_factory, source):
            previous >> step
            previous = step
    return pipeline


def run_pipeline(pipeline: Any, *, sequential: bool = True, ray: bool = False,
                 ray_address: str | None = None) -> list[dict[str, Any]]:
    """Run and return the leaf step's rows. Sequential stages load one model at a time."""
    if ray:
        pipeline = pipeline.ray(ray_head_node_url=ray_address)
        sequential = False
    kwargs: dict[str, Any] = {"use_cache": False}
    if sequential:
        kwargs["load_groups"] = "sequential_step_execution"
    distiset = pipeline.run(**kwargs)
    config = next(iter(distiset))
    return distiset[config]["train"].to_list()
