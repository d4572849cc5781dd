"""``--ray``: a build's chunks spread over Ray workers that each load their models once.

Each worker is a Ray actor owning an ``Engine`` (the method's Tasks and a model pool) and runs
whole chunks, many per worker; the driver hands out the unfinished chunks, writes each part file
as it comes back, and the dataset is the ordered union of the parts, exactly as in a local build
(same parts, same fingerprint, same resume). A step that raises on a worker fails the build with
the step, the chunk and the error, like a local one.

- Each part records where it ran (``ran_on``: Ray node id, address, attempt); the build record's
  ``stats.ray`` lists the nodes, the node of every chunk and how many chunks were retried.
- A worker lost mid-chunk (its process killed, its node gone, out of memory) costs only that
  chunk: it goes back to the front of the queue for a live worker, and a replacement worker is
  started where the cluster has room. A chunk lost ``MAX_ATTEMPTS`` times, or every worker lost
  with no room for a new one, stops the build with one line; finished parts stay, a rerun resumes.
- vLLM workers take ``--ray-gpus-per-worker`` GPUs each and run their engines with that
  ``tensor_parallel_size``. SELFEE's reference model, when ``--ray-reference-gpus`` asks for more
  GPUs than a worker has, runs on its own worker (its own tensor parallelism), shared by all.
"""

from __future__ import annotations

import collections
import json
import os
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selfpref import SelfprefError
from selfpref.pipelines.engine import BuildStepError, Engine, describe, make_pool

MAX_ATTEMPTS = 3  # a chunk whose worker dies this often is more likely the cause than the victim
ROOM_WAIT_S = 120.0  # with nothing running, how long a new worker may wait for Ray to place it


def gpus_per_worker(config: Any) -> int:
    return config.ray_gpus_per_worker or 1


def separate_reference(config: Any) -> bool:
    """SELFEE's reference runs on its own worker when it needs more GPUs than a policy worker."""
    return bool(config.backend == "vllm" and config.reference_model and config.ray_reference_gpus
                and config.ray_reference_gpus > gpus_per_worker(config))


def vllm_parallel(gpus: int) -> dict[str, Any]:
    """vllm.LLM options for an engine spread over ``gpus`` GPUs of one Ray worker. Without a
    placement group vLLM's default executor is multiprocessing over the GPUs Ray made visible."""
    return {"tensor_parallel_size": gpus, **({"distributed_executor_backend": "mp"} if gpus > 1 else {})}


class RemoteReference:
    """The reference model as a chunk worker's pool sees it: calls go to the reference worker."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def answer_logps(self, prompts: Any, answers: Any) -> tuple[list[float], list[int]]:
        import ray

        return ray.get(self.actor.answer_logps.remote([list(p) for p in prompts], list(answers)))

    def close(self) -> None:  # the driver closes the reference worker itself
        pass


class ReferenceWorker:
    """SELFEE's reference alone on its GPUs (e.g. a 70B pi_init beside an 8B policy)."""

    def __init__(self, ref: str, seed: int, gpus: int) -> None:
        from selfpref.models.vllm_backend import VLLMModel

        self.model = VLLMModel(ref, seed=seed, gpu_memory_utilization=0.9, **vllm_parallel(gpus))

    def answer_logps(self, prompts: list, answers: list) -> tuple[list[float], list[int]]:
        return self.model.answer_logps(prompts, answers)

    def close(self) -> None:
        self.model.close()


def worker_pool(config: Any, reference: Any = None) -> Any:
    """The build's pool, with this worker's tensor parallelism and the remote reference."""
    pool = make_pool(config)
    if config.backend != "vllm":
        return pool
    pool.vllm_options.update(vllm_parallel(gpus_per_worker(config)))
    if reference is not None:
        from selfpref.models.resolve import resolve_model
        from selfpref.models.vllm_backend import VLLMModel

        ref_path = resolve_model(config.reference_model, flag="--reference-model")
        engines = max(1, round(0.9 / pool.vllm_options["gpu_memory_utilization"]) - 1)
        pool.vllm_options["gpu_memory_utilization"] = round(0.9 / engines, 2)  # the GPUs are the policy's
        proxy = RemoteReference(reference)
        pool.factories["vllm"] = lambda ref, step: proxy if ref == ref_path else \
            VLLMModel(ref, seed=pool.seed, **pool.vllm_options)
    return pool


class ChunkWorker:
    """One worker: the Tasks bound to its own pool; models load on its first chunk."""

    def __init__(self, config: Any, source: str, reference: Any = None) -> None:
        self.engine = Engine(config, source, pool=worker_pool(config, reference))

    def run(self, indices: list[int], chunks: int, inputs: list[list[dict[str, Any]]]) -> dict[str, Any]:
        import ray

        context = ray.get_runtime_context()
        where = {"node": context.get_node_id(), "address": ray.util.get_node_ip_address(),
                 "pid": os.getpid()}
        try:
            return {"parts": self.engine.run_parts(indices, chunks, inputs), "where": where}
        except BuildStepError as exc:
            trace = "".join(traceback.format_exception(exc.__cause__ or exc))
            return {"error": exc, "traceback": trace}

    def close(self) -> None:
        self.engine.close()  # vLLM engines shut their core processes down


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
        gpus = int(ray.cluster_resources().get("GPU", 0))
        if separate_reference(config):
            gpus -= config.ray_reference_gpus
        wanted = gpus // gpus_per_worker(config) or 1
    else:
        wanted = max(1, sum(1 for node in ray.nodes() if node.get("Alive")))
    return max(1, min(wanted, pending))


def _check_room(config: Any, ray: Any) -> None:
    """Refuse up front what the cluster can never place (Ray would wait for it forever)."""
    if config.backend != "vllm":
        return
    total = int(ray.cluster_resources().get("GPU", 0))
    need = gpus_per_worker(config) + (config.ray_reference_gpus if separate_reference(config) else 0)
    if total < need:
        what = f"{gpus_per_worker(config)} per worker (--ray-gpus-per-worker)"
        if separate_reference(config):
            what += f" + {config.ray_reference_gpus} for the reference (--ray-reference-gpus)"
        raise SelfprefError(f"--ray --backend vllm: the Ray cluster has {total} GPUs, the build "
                            f"needs at least {need}: {what}; lower them or add GPU nodes")


def _lost_errors(ray: Any) -> tuple[type[BaseException], ...]:
    e = ray.exceptions
    return (e.RayActorError, e.WorkerCrashedError, e.NodeDiedError, e.ObjectLostError)


def run_on_ray(config: Any, source: str, chunks: list[list[dict[str, Any]]], groups: list[list[int]],
               on_part: Callable[[int, dict[str, Any]], None]) -> None:
    """Run the pending chunks (``groups`` of them, see ``Engine.groups``) on Ray workers;
    ``on_part(index, part)`` as each one finishes."""
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=config.ray_address, include_dashboard=False, log_to_driver=False)
    pool = _Workers(ray)
    try:
        _check_room(config, ray)
        resources = {"num_gpus": gpus_per_worker(config)} if config.backend == "vllm" else {"num_cpus": 1}
        reference = None
        if separate_reference(config):
            from selfpref.models.resolve import resolve_model

            reference = ray.remote(num_gpus=config.ray_reference_gpus)(ReferenceWorker).remote(
                resolve_model(config.reference_model, flag="--reference-model"), config.seed,
                config.ray_reference_gpus)
            pool.keep(reference)  # used through the chunk workers, closed with them
        worker = ray.remote(**resources)(ChunkWorker)
        for _ in range(worker_count(config, ray, len(groups))):
            pool.start(worker, config, source, reference)
        _schedule(ray, chunks, groups, on_part, pool, lambda: pool.start(worker, config, source, reference))
    finally:
        pool.close()
        if started:
            ray.shutdown()


class _Workers:
    """The actors of one build: started (placed and constructed) or still starting."""

    def __init__(self, ray: Any) -> None:
        self.ray = ray
        self.all: list[Any] = []
        self.ready: list[Any] = []
        self.starting: dict[Any, Any] = {}  # __ray_ready__ ref -> actor not yet handed work

    def keep(self, actor: Any) -> None:
        self.all.append(actor)
        self.ready.append(actor)

    def start(self, cls: Any, *args: Any) -> tuple[Any, Any]:
        """A new actor and the ref that resolves once Ray has placed and constructed it."""
        actor = cls.remote(*args)
        self.all.append(actor)
        ref = actor.__ray_ready__.remote()
        self.starting[ref] = actor
        return actor, ref

    def close(self) -> None:
        """Ask each started worker to shut its engines down (vLLM's core processes), then end
        every actor (one still waiting for room is just cancelled)."""
        if self.ready:
            try:
                self.ray.wait([a.close.remote() for a in self.ready], num_returns=len(self.ready),
                              timeout=60)
            except Exception:  # noqa: BLE001 - a dead worker has nothing left to close
                pass
        for actor in self.all:
            try:
                self.ray.kill(actor)
            except Exception:  # noqa: BLE001
                pass


def _schedule(ray: Any, chunks: list, groups: list[list[int]],
              on_part: Callable[[int, dict[str, Any]], None], pool: _Workers,
              replace: Callable[[], Any]) -> None:
    """Hand the groups to started workers until all are done; a lost worker's group goes back
    to the front of the queue and a replacement worker is started (it gets work once Ray has
    placed it: a cluster without room for it never blocks the live workers)."""
    # The first workers get work at once (it runs as soon as each is up; the cluster had the
    # resources for them); replacements only once placed.
    queue, idle = list(groups), list(pool.starting.values())
    pool.ready += idle
    waits: dict[Any, tuple[Any, list[int] | None]] = {}
    attempts: collections.Counter = collections.Counter()
    lost, lost_errors = 0, _lost_errors(ray)
    group: list[int] | None
    while queue or any(group is not None for _, group in waits.values()):
        while queue and idle:
            actor, group = idle.pop(0), queue.pop(0)
            ref = actor.run.remote(group, len(chunks), [chunks[i] for i in group])
            waits[ref] = (actor, group)
        running = any(group is not None for _, group in waits.values())
        ready, _ = ray.wait(list(waits), num_returns=1, timeout=None if running else ROOM_WAIT_S)
        if not ready:  # nothing runs and no new worker found room in ROOM_WAIT_S
            raise BuildStepError("ray workers", queue[0][0], len(chunks),
                                 f"all Ray workers were lost ({lost} in this run) and no node "
                                 f"had room for a new one in {ROOM_WAIT_S:.0f} s")
        actor, group = waits.pop(ready[0])
        try:
            result = ray.get(ready[0])
        except lost_errors as exc:
            if getattr(exc, "actor_init_failed", False):  # it never started: loading failed
                raise BuildStepError("ray worker", (group or queue[0])[0], len(chunks),
                                     describe(exc)) from exc
            lost += 1
            if group is not None:
                attempts[group[0]] += 1
                if attempts[group[0]] >= MAX_ATTEMPTS:
                    raise BuildStepError("ray worker", group[0], len(chunks),
                                         f"{MAX_ATTEMPTS} workers died running this chunk "
                                         f"(last: {describe(exc)})") from exc
                queue.insert(0, group)
            replacement, ref = replace()
            waits[ref] = (replacement, None)
            continue
        except ray.exceptions.RayError as exc:  # the worker's own code raised outside a step
            raise BuildStepError("ray worker", (group or queue[0])[0], len(chunks), describe(exc)) from exc
        if group is None:  # a worker is placed and constructed: it takes work now
            pool.ready.append(actor)
            idle.append(actor)
            continue
        if "error" in result:
            error = result["error"]
            error.remote_traceback = result["traceback"]
            raise error
        for index, part in zip(group, result["parts"]):
            on_part(index, {**part, "ran_on": {**result["where"], "attempt": attempts[group[0]] + 1}})
        idle.append(actor)


def placement_stats(parts: Path) -> dict[str, Any]:
    """The build record's ``stats.ray``: the nodes, each chunk's node (its index in ``nodes``;
    None for a chunk a run without --ray finished) and the chunks retried after a lost worker."""
    nodes: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    chunk_nodes: list[int | None] = []
    retried = []
    for i, path in enumerate(sorted(parts.glob("part-*.json"))):
        where = json.loads(path.read_text()).get("ran_on")
        if not where:
            chunk_nodes.append(None)
            continue
        if where["node"] not in index:
            index[where["node"]] = len(nodes)
            nodes.append({"node_id": where["node"], "address": where["address"], "chunks": 0})
        nodes[index[where["node"]]]["chunks"] += 1
        chunk_nodes.append(index[where["node"]])
        if where.get("attempt", 1) > 1:
            retried.append(i)
    return {"ray": {"nodes": nodes, "chunk_nodes": chunk_nodes, "retried_chunks": len(retried),
                    "retried": retried}}
