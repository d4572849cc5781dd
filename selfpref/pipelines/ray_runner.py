"""``--ray``: a build's chunks spread over Ray workers that each load their models once.

Each worker is a Ray actor owning an ``Engine`` (the method's Tasks and a model pool) and runs
whole chunks, many per worker; the driver hands out the unfinished chunks, writes each part file
as it comes back, and the dataset is the ordered union of the parts, exactly as in a local build
(same parts, same fingerprint, same resume). A step that raises on a worker fails the build with
the step, the chunk and the error, like a local one.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from selfpref import SelfprefError
from selfpref.pipelines.engine import BuildStepError, Engine, describe


class ChunkWorker:
    """One worker: the Tasks bound to its own pool; models load on its first chunk."""

    def __init__(self, config: Any, source: str) -> None:
        self.engine = Engine(config, source)

    def run(self, indices: list[int], chunks: int, inputs: list[list[dict[str, Any]]]) -> dict[str, Any]:
        try:
            return {"parts": self.engine.run_parts(indices, chunks, inputs)}
        except BuildStepError as exc:
            trace = "".join(traceback.format_exception(exc.__cause__ or exc))
            return {"error": exc, "traceback": trace}


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SelfprefError("--ray needs Ray: pip install 'selfpref[ray]'") from None
    return ray


def worker_count(config: Any, ray: Any, pending: int) -> int:
    if config.ray_workers:
        wanted = config.ray_workers
    elif config.backend == "vllm":
        wanted = int(ray.cluster_resources().get("GPU", 0)) or 1
    else:
        wanted = max(1, sum(1 for node in ray.nodes() if node.get("Alive")))
    return max(1, min(wanted, pending))


def run_on_ray(config: Any, source: str, chunks: list[list[dict[str, Any]]], groups: list[list[int]],
               on_part: Callable[[int, dict[str, Any]], None]) -> None:
    """Run the pending chunks (``groups`` of them, see ``Engine.groups``) on Ray workers;
    ``on_part(index, part)`` as each one finishes."""
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=config.ray_address, include_dashboard=False, log_to_driver=False)
    actors: list[Any] = []
    try:
        resources = {"num_gpus": 1} if config.backend == "vllm" else {"num_cpus": 1}
        worker = ray.remote(**resources)(ChunkWorker)
        actors = [worker.remote(config, source) for _ in range(worker_count(config, ray, len(groups)))]
        queue, running = list(groups), {}

        def submit(actor: Any) -> None:
            group = queue.pop(0)
            running[actor.run.remote(group, len(chunks), [chunks[i] for i in group])] = (actor, group)

        for actor in actors:
            if queue:
                submit(actor)
        while running:
            [ref], _ = ray.wait(list(running), num_returns=1)
            actor, group = running.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as exc:  # the worker itself died (out of memory, lost node, ...)
                raise BuildStepError("ray worker", group[0], len(chunks), describe(exc)) from exc
            if "error" in result:
                error = result["error"]
                error.remote_traceback = result["traceback"]
                raise error
            for index, part in zip(group, result["parts"]):
                on_part(index, part)
            if queue:
                submit(actor)
    finally:
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()
