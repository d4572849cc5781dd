"""selfpref's executor for a method's distilabel Tasks: in-process, models loaded once per build.

distilabel's own runner spawned a worker per step and loaded the model again in every step of
every chunk (~15 s per chunk on the embedded model), turned step exceptions into ``None`` rows,
and brought the fork deadlock and the sequential-loader hang with it. Here the Tasks stay the
definition (prompts, parsing, columns; ``pipeline.yaml``) and the engine runs them itself:

- each step's LLM face is bound to the build's ``ModelPool``: one model per (backend, model),
  shared by every step and every chunk;
- a chunk (or a group of chunks smaller than a batch) goes through the steps in order, all
  its rows in one ``process`` call; the model cuts its batches after sorting by length;
- an exception in a step stops the build with a ``BuildStepError`` naming step and chunk.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Any

from selfpref import SelfprefError
from selfpref.models.pool import ModelPool
from selfpref.models.resolve import model_label, resolve_model
from selfpref.pipelines import LLMFactory, method_module
from selfpref.pipelines.step_cache import cacheable, open_caches, step_backend, step_identity

# What progress lines call each step: "answers 24/64 · judge 10/64".
STEP_LABELS = {
    "write_persona": "personas", "write_prompt": "prompts", "answer_pair": "answers",
    "self_judge": "judge", "rule_judge": "judge", "rm_judge": "judge", "panel_judge": "judge", "allocate_features": "features", "principled_answers": "answers",
    "describe_characteristics": "characteristics", "conditioned_answers": "answers",
    "implicit_reward": "scores",
}

StepProgress = Callable[[str, int], None]  # (step name, rows just finished)


class BuildStepError(SelfprefError):
    """A step raised: the build stops, finished chunks stay, a rerun redoes this chunk."""

    def __init__(self, step: str, chunk: int, chunks: int, error: str, log: str | None = None) -> None:
        self.step, self.chunk, self.chunks, self.error, self.log = step, chunk, chunks, error, log
        where = f" (traceback: {log})" if log else ""
        super().__init__(f"step {step} failed in chunk {chunk + 1} of {chunks}: {error}; finished "
                         f"chunks are kept, rerun the same command to resume from this one{where}")

    def __reduce__(self) -> tuple:  # picklable with its fields (Ray ships it between processes)
        return (type(self), (self.step, self.chunk, self.chunks, self.error, self.log))

    def with_log(self, log: str) -> BuildStepError:
        return BuildStepError(self.step, self.chunk, self.chunks, self.error, log)


def describe(exc: BaseException) -> str:
    """``Type: first line of the message``: one line, whatever the exception says."""
    lines = str(exc).strip().splitlines()
    if isinstance(exc, SelfprefError) and lines:  # already a sentence for the user
        return lines[0]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def model_ref(config: Any) -> str:
    """What the pool loads for ``--model``: a local folder or Hub id (the embedded default
    resolved) for local backends, the served model's name for openai, a label for scripted."""
    if config.backend in ("transformers", "vllm"):
        return resolve_model(config.model)
    return str(config.model or model_label(config.model))


def judge_ref(config: Any) -> tuple[str, str, str, str]:
    """SAO's judge as (backend, model reference, label, endpoint name): the generator's unless
    --judge-model / --judge-base-url name another (SAO Table 8)."""
    if config.judge_base_url:
        from selfpref.models.openai_compat import mask_url

        return ("openai", str(config.judge_model), f"{config.judge_model}@{mask_url(config.judge_base_url)}",
                "judge")
    if config.judge_model is None:
        return config.backend, model_ref(config), model_label(config.model), ""
    if config.backend in ("transformers", "vllm"):
        return config.backend, resolve_model(config.judge_model, flag="--judge-model"), \
            model_label(config.judge_model), ""
    return config.backend, str(config.judge_model), model_label(config.judge_model), ""


def default_llm_factory(config: Any) -> LLMFactory:
    """Faces over the build's models: ``role='judge'`` (SAO's judge step) gets the judge model."""
    from selfpref.pipelines.llms import make_llm

    model, label = model_ref(config), model_label(config.model)

    def factory(step: str, generation: dict, role: str = "generator") -> Any:
        if role == "judge":
            backend, ref, name, endpoint = judge_ref(config)
            return make_llm(backend, ref, model_id=name, seed=config.seed, generation=generation,
                            step=step, endpoint=endpoint)
        return make_llm(config.backend, model, model_id=label, seed=config.seed,
                        generation=generation, step=step)

    return factory


def make_pool(config: Any) -> ModelPool:
    """The build's models: one per (backend, model); vLLM engines split the GPU between them."""
    from selfpref.pipelines.alignez import generator_prompt_format
    from selfpref.pipelines.llms import load_script

    script = load_script(config.script) if config.backend == "scripted" else None
    engines = 1 + int(config.method == "selfee" and bool(config.reference_model)) + int(
        config.method == "sao" and config.judge in ("text", "logits") and not config.judge_is_generator
        and not config.judge_base_url)
    vllm_options = {"gpu_memory_utilization": round(0.9 / engines, 2)}
    endpoints = {"judge": (config.judge_base_url, config.judge_api_key_env, "--judge")} \
        if config.judge_base_url else {}
    return ModelPool(batch_size=config.batch_size, seed=config.seed, script=script,
                     base_url=config.base_url, api_key_env=config.api_key_env,
                     vllm_options=vllm_options, endpoints=endpoints,
                     prompt_format=generator_prompt_format(config),
                     endpoint_options=config.endpoint_options())


def judge_labeler(config: Any) -> str:
    """SAO's ``labeler``: ``self-judge:M`` (``|logits`` for the forced choice), ``judge:J`` for
    another judge model, ``length-judge`` / ``length-judge:longer`` / ``random-judge`` for the
    baselines of SAO Table 6."""
    if config.judge in ("length", "length:longer", "random"):
        return config.judge.replace("length", "length-judge", 1) if config.judge != "random" \
            else "random-judge"
    if getattr(config, "judge_models", None):
        return f"panel-{config.panel}:" + "+".join(
            f"{k}:{model_label(m)}" for k, m in zip(config.judge.split(","), config.judge_models))
    if config.judge == "rm":
        return f"rm:{model_label(config.judge_model)}"
    suffix = "" if config.judge == "text" else "|logits"
    if config.judge_is_generator:
        return f"self-judge:{model_label(config.model)}{suffix}"
    return f"judge:{judge_ref(config)[2]}{suffix}"


def judge_description(config: Any) -> str:
    """The build record's ``models.judge``."""
    if config.judge == "random":
        return f"random (a coin seeded by seed {config.seed}; SAO Table 6)"
    if config.judge.startswith("length"):
        if config.judge == "length:longer":
            return "length (the longer answer wins; SAO Table 6's rule reversed)"
        return "length (the shorter answer wins; SAO Table 6)"
    if getattr(config, "judge_models", None):
        return judge_labeler(config) + f" (a panel, rule {config.panel}, every judge both orders)"
    if config.judge == "rm":
        return f"rm:{model_label(config.judge_model)} (reward model, P = sigmoid(r_A - r_B))"
    return judge_ref(config)[2]


class Engine:
    """The method's Tasks for one build, bound to one pool; ``run_part`` does one chunk."""

    def __init__(self, config: Any, source: str, llm_factory: LLMFactory | None = None,
                 pool: ModelPool | None = None) -> None:
        from selfpref.pipelines._distilabel import LoadDataFromDicts, Pipeline

        self.config, self.source = config, source
        self.module = method_module(config.method)
        self.pool = pool or make_pool(config)
        factory = llm_factory or default_llm_factory(config)
        with Pipeline(name=f"selfpref-{config.method}",
                      description=f"selfpref {config.method} preference data") as self.pipeline:
            previous = LoadDataFromDicts(name=f"load_{source}s", data=[], batch_size=config.batch_size)
            self.steps = self.module.build_steps(config, factory, source)
            for step in self.steps:
                previous >> step
                previous = step
        self.request_cache, self.step_cache = open_caches(config)
        for step in self.steps:
            self._bind(step)
            step.load()
        self.seconds: collections.defaultdict[str, float] = collections.defaultdict(float)  # time per step, all chunks
        self.requests: dict[str, dict[str, int]] = {}  # endpoint steps: {"sent": n, "cached": m}

    def _bind(self, step: Any) -> None:
        if hasattr(step, "bind_models"):
            step.bind_models(self.pool)
        llm = getattr(step, "llm", None)
        if llm is not None and hasattr(llm, "bind") and getattr(llm, "_backend", None) is None:
            llm.bind(self.pool.get(llm.backend, llm.model, step=llm.step,
                                   endpoint=getattr(llm, "endpoint", "")))
        model = getattr(llm, "_backend", None)
        if self.request_cache is not None and model is not None and getattr(model, "cache", False) is None:
            model.cache = self.request_cache  # an endpoint's client: look up, else send and append

    def _cached_rows(self, step: Any, rows: list[dict[str, Any]]) -> tuple[list[str] | None, list[Any]]:
        """(row keys, each row's cached output or None); no keys when the step is not cached."""
        if self.step_cache is None or not cacheable(step):
            return None, [None] * len(rows)
        from selfpref.pipelines.config import ENGINE_VERSION

        identity = step_identity(step, getattr(self.pool, "script", None), ENGINE_VERSION)
        keys = self.step_cache.keys(identity, rows, whole_chunk=step_backend(step) == "scripted")
        return keys, self.step_cache.lookup(step.name, keys)

    @property
    def step_names(self) -> list[str]:
        return [s.name for s in self.steps]

    def groups(self, pending: list[int], chunks: list[list[Any]]) -> list[list[int]]:
        """Pending chunks run together until a group fills a batch: a chunk smaller than
        ``--batch-size`` would otherwise cut every step's batches short (half-full batches cost
        nearly as much as full ones), and chunk size must not set the cost. Each chunk still
        gets its own part. Scripted models start their script at every chunk, so they run one
        chunk at a time."""
        if self.config.backend == "scripted":
            return [[i] for i in pending]
        out: list[list[int]] = []
        for index in pending:
            if out and sum(len(chunks[i]) for i in out[-1]) < self.config.batch_size:
                out[-1].append(index)
            else:
                out.append([index])
        return out

    def run_rows(self, rows: list[dict[str, Any]], where: Callable[[int], int], chunks: int,
                 progress: StepProgress | None = None) -> list[dict[str, Any]]:
        """Rows through every step; ``where(row offset)`` is the chunk a row belongs to, for the
        error message. A step that raises stops it (BuildStepError)."""
        for step in self.steps:
            # The whole group in one call: the model sorts all of its conversations by length
            # before cutting --batch-size batches, so they pad less than when sorted per
            # input_batch_size slice (SSO's x+ / x- / plain prompts differ in length; measured on
            # build sso, 16 prompts: prefill 15.9 s per slice vs 9.5 s for the whole chunk).
            # Rows whose output the step cache holds skip the step (step_cache).
            keys, out = self._cached_rows(step, rows)
            todo = [i for i, row in enumerate(out) if row is None]
            batch = [rows[i] for i in todo]
            began, before = time.perf_counter(), self._request_counts()
            try:
                result = [row for part in step.process(batch) for row in part] if batch else []
            except Exception as exc:
                raise BuildStepError(step.name, where(todo[0]), chunks, describe(exc)) from exc
            self.seconds[step.name] += time.perf_counter() - began
            self._count_requests(step.name, before)
            if len(result) != len(batch):
                raise BuildStepError(step.name, where(todo[0]), chunks, f"returned "
                                     f"{len(result)} rows for {len(batch)} inputs")
            for i, row in zip(todo, result):
                out[i] = row
            if keys is not None and self.step_cache is not None and result:
                self.step_cache.store(step.name, [keys[i] for i in todo], result)
            if progress:
                progress(step.name, len(rows))
            rows = out
        return rows

    def _request_counts(self) -> dict[str, int]:
        return self.request_cache.counts() if self.request_cache is not None else {}

    def _count_requests(self, step: str, before: dict[str, int]) -> None:
        """This step's share of the request cache's counts (steps run one after another)."""
        now = self._request_counts()
        if now and now != before:
            counts = self.requests.setdefault(step, {"sent": 0, "cached": 0})
            for kind in ("sent", "cached"):
                counts[kind] += now[kind] - before[kind]

    def cache_stats(self) -> dict[str, Any]:
        """What the build record says of this run's caches: requests sent and answered from the
        request cache per endpoint step, rows computed and taken from the step cache per step."""
        if self.request_cache is None or self.step_cache is None:
            return {"cache": "off (--no-cache)"} if getattr(self.config, "no_cache", False) else {}
        return {"cache": str(self.request_cache.folder), "requests": dict(self.requests),
                "step_cache": {k: dict(v) for k, v in self.step_cache.rows.items()}}

    def run_parts(self, indices: list[int], chunks: int, inputs: list[list[dict[str, Any]]],
                  progress: StepProgress | None = None) -> list[dict[str, Any]]:
        """Chunks ``indices`` (their ``inputs``) run together; one assembled part per chunk."""
        self.pool.start_chunk(indices[0])
        owner = [index for index, rows in zip(indices, inputs) for _ in rows]
        flat = [dict(r) for rows in inputs for r in rows]
        done = self.run_rows(flat, lambda offset: owner[min(offset, len(owner) - 1)], chunks, progress)
        parts, start = [], 0
        for rows in inputs:
            parts.append(self._part(done[start : start + len(rows)]))
            start += len(rows)
        return parts

    def run_part(self, index: int, chunks: int, inputs: list[dict[str, Any]],
                 progress: StepProgress | None = None) -> dict[str, Any]:
        """One chunk, assembled: what its part file holds."""
        return self.run_parts([index], chunks, [inputs], progress)[0]

    def _part(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        config = self.config
        records, dropped = self.module.assemble(rows, generator=model_label(config.model),
                                                judge="panel" if getattr(config, "judge_models", None)
                                                else config.judge, labeler=judge_labeler(config),
                                                judge_orders=getattr(config, "judge_orders", 2),
                                                beta=config.beta, reference=config.reference_model)
        return {"inputs": len(rows), "records": records, "dropped": dict(dropped),
                "prompts": [r["prompt"] for r in rows if r.get("prompt")],
                "refusals": [r["refusal_text"] for r in rows if r.get("refusal_text")]}

    def pipeline_yaml(self, folder: Any) -> str:
        """The Tasks as distilabel's ``pipeline.yaml`` (written via ``folder``, a scratch dir)."""
        from pathlib import Path

        path = Path(folder) / "pipeline.yaml"
        self.pipeline.save(str(path), format="yaml")
        return path.read_text()

    def close(self) -> None:
        self.pool.close()
        for cache in (self.request_cache, self.step_cache):
            if cache is not None:
                cache.close()
