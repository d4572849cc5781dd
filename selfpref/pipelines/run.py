"""The build runner: inputs -> resumable chunks through the method's Tasks -> dataset folder.

Inputs are split into chunks keyed by a fingerprint of the work; each finished chunk is written
atomically as a part file, and a rerun with the same arguments skips finished parts, so a kill
at any point loses at most the chunk that was running. The dataset is the ordered union of the
parts: nothing is lost or doubled. Chunk size sets only this resume granularity: the models are
loaded once per build (``engine``), and every sampled answer is seeded from its own
conversation, so the rows do not depend on the chunk size either.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import random
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from selfpref import SelfprefError
from selfpref.data.atomic import write_atomic
from selfpref.data.store import BuildRecord, write_dataset, write_json_atomic
from selfpref.models.openai_compat import mask_url
from selfpref.models.resolve import model_label
from selfpref.pipelines import LLMFactory, method_module
from selfpref.pipelines.accounting import usage_stats
from selfpref.pipelines.config import BuildConfig
from selfpref.pipelines.engine import (  # noqa: F401
    STEP_LABELS,
    BuildStepError,
    Engine,
    default_llm_factory,
    judge_description,
)
from selfpref.pipelines.repetition import prompt_repetition, repetition_rate  # noqa: F401


@dataclasses.dataclass
class BuildProgress:
    """Where a build stands: rows each step has finished (finished chunks included)."""

    steps: list[str]
    total: int
    done: dict[str, int]
    chunks: int
    chunks_done: int = 0
    resumed: int = 0  # rows in chunks an earlier run finished
    started: float = dataclasses.field(default_factory=time.monotonic)

    def line(self) -> str:
        """``personas 16/64 · prompts 16/64 · answers 8/64 · judge 0/64``"""
        return " · ".join(f"{STEP_LABELS.get(s, s)} {self.done[s]}/{self.total}" for s in self.steps)

    @property
    def work(self) -> int:
        return len(self.steps) * self.total

    @property
    def work_done(self) -> int:
        return sum(self.done.values())

    def eta(self) -> float | None:
        """Seconds left, from this run's own pace (rows finished by an earlier run excluded)."""
        new = self.work_done - self.resumed * len(self.steps)
        elapsed = time.monotonic() - self.started
        if new <= 0 or elapsed <= 0:
            return None
        return (self.work - self.work_done) * elapsed / new


Progress = Callable[[BuildProgress], None]


def build_inputs(config: BuildConfig) -> tuple[list[dict[str, Any]], str]:
    """(loader rows, their column): prompts, personas, domains for self-written personas, or
    numbered draws for prompts written with no persona (``--prompt-source random``).

    Every method can start from any of these: without --prompts the model writes its own
    prompts through SAO's persona -> prompt stage (or its Table 5 "Random" variant).
    """
    from selfpref.data.importer import read_texts
    from selfpref.pipelines.domains import DOMAINS

    if config.prompt_mode == "random":  # each row asks the same question: its draw seeds it
        return [{"draw": i} for i in range(config.num_prompts)], "random"
    rng = random.Random(config.seed)
    for ref, column in ((config.prompts, "prompt"), (config.personas, "persona")):
        if ref is None:
            continue
        values = read_texts(ref, config.prompt_column if column == "prompt" else column, flag=f"--{column}s")
        if column == "persona" and len(values) > config.num_prompts:
            values = rng.sample(values, config.num_prompts)  # SAO: personas sampled at random
        return [{column: v} for v in values[: config.num_prompts]], column
    domains = DOMAINS[:]
    rng.shuffle(domains)
    # Past len(DOMAINS) prompts a domain comes round again; its draw number makes that a new
    # sample, not a copy of the first persona (the same conversation would get the same seed).
    rows = []
    for i in range(config.num_prompts):
        draw = i // len(domains)
        rows.append({"domain": domains[i % len(domains)], **({"draw": draw} if draw else {})})
    return rows, "domain"


def prompt_source(config: BuildConfig, source: str) -> str:
    """Where the prompts came from, as the build record and the card say it."""
    if source == "prompt":
        return f"file {config.prompts}"
    if source == "persona":
        return f"model-written from personas {config.personas} (SAO sec. 3.1)"
    if source == "random":
        return ("random: no persona, the model writes each prompt unprompted (SAO Table 5 "
                "'Random')")
    from selfpref.pipelines.domains import DOMAINS

    return (f"self-written: personas from {len(DOMAINS)} domains, then one prompt per persona, "
            "by the model itself (SAO sec. 3.1)")


def _log_failure(exc: BuildStepError, parts: Path, trace: str) -> BuildStepError:
    """The traceback goes to a log beside the parts (and to stderr with SELFPREF_DEBUG=1)."""
    log = write_atomic(parts / "error.log", trace)
    if os.environ.get("SELFPREF_DEBUG") == "1":
        print(trace, file=sys.stderr)
    return exc.with_log(str(log))


def run_chunks(config: BuildConfig, inputs: list[dict[str, Any]], source: str, parts: Path,
               llm_factory: LLMFactory | None = None, progress: Progress | None = None,
               notify: Callable[[str], None] | None = None,
               stats: dict[str, Any] | None = None,
               accounting: dict[str, Any] | None = None) -> tuple[list[dict], collections.Counter, tuple[list[str], list[str] | None], str]:
    """Run every unfinished chunk; return records, drops, (generated prompts, refusal texts or
    None when unknown) and pipeline YAML (and this run's cache counts into ``stats``).

    ``accounting`` (a dict) receives ``parts`` (each part's usage) and ``endpoints`` (what each
    endpoint client reports: its probe's findings)."""
    from selfpref.pipelines import accounting as acc

    parts.mkdir(parents=True, exist_ok=True)
    size = config.chunk_size
    chunks = [inputs[i : i + size] for i in range(0, len(inputs), size)]
    part_path = [parts / f"part-{i:05d}.json" for i in range(len(chunks))]
    pending = [i for i, p in enumerate(part_path) if not p.exists()]
    if len(pending) < len(chunks) and notify:
        notify(f"resuming: {len(chunks) - len(pending)} of {len(chunks)} chunks already finished")
    engine = Engine(config, source, llm_factory)  # loads nothing until a step asks its model
    resumed = len(inputs) - sum(len(chunks[i]) for i in pending)
    state = BuildProgress(engine.step_names, len(inputs), dict.fromkeys(engine.step_names, resumed),
                          len(chunks), len(chunks) - len(pending), resumed)

    def step_done(step: str, rows: int) -> None:
        state.done[step] += rows
        if progress:
            progress(state)

    def part_done(index: int, part: dict[str, Any]) -> None:
        write_json_atomic(part_path[index], part)
        state.chunks_done += 1
        if progress:
            progress(state)

    if progress:
        progress(state)
    try:
        if pending and config.ray:
            from selfpref.pipelines.ray_runner import run_on_ray

            def ray_part(index: int, part: dict[str, Any]) -> None:
                for step in state.steps:
                    state.done[step] += len(chunks[index])
                part_done(index, part)

            run_on_ray(config, source, chunks, engine.groups(pending, chunks), ray_part)
        else:
            before = acc.snapshot(engine)
            preflight(engine, config)  # its requests count in the first part's share
            for group in engine.groups(pending, chunks):
                done = engine.run_parts(group, len(chunks), [chunks[i] for i in group], step_done)
                after = acc.snapshot(engine)
                done[0]["usage"], before = acc.delta(before, after), after  # the group's cost
                for index, part in zip(group, done):
                    part_done(index, part)
        pipeline_yaml = engine.pipeline_yaml(parts)
        if stats is not None:  # Ray workers keep their own counts; the driver ran nothing
            stats.update(engine.cache_stats() if not (pending and config.ray) else
                         {"cache": config.cache_dir or "off (--no-cache)",
                          "requests": "not counted under --ray"})
        if accounting is not None:
            accounting["endpoints"] = [m.report() for m in engine.pool.models().values()
                                       if hasattr(m, "report")]
    except BuildStepError as exc:
        trace = getattr(exc, "remote_traceback", None) or "".join(
            traceback.format_exception(exc.__cause__ or exc))
        raise _log_failure(exc, parts, trace) from exc.__cause__
    finally:
        engine.close()
    records: list[dict] = []
    dropped: collections.Counter[str] = collections.Counter()
    prompts: list[str] = []
    refusals: list[str] | None = []
    for path in part_path:
        data = json.loads(path.read_text())
        if accounting is not None:
            accounting.setdefault("parts", []).append(data.get("usage"))
        records += data["records"]
        dropped.update(data["dropped"])
        prompts += data["prompts"]
        # parts written before refusal texts were kept: the rate with refusals is unknown
        refusals = None if refusals is None or "refusals" not in data else refusals + data["refusals"]
    return records, dropped, (prompts, refusals), pipeline_yaml


def with_cache_dir(config: BuildConfig, output: Path) -> BuildConfig:
    """``config`` with its cache folder resolved (Ray workers get it too): --cache-dir, else
    $SELFPREF_CACHE_DIR, else ``.selfpref-cache`` beside the output, where the parts are."""
    if config.no_cache:
        return config
    from selfpref.pipelines.step_cache import default_cache_dir

    return dataclasses.replace(config, cache_dir=str(default_cache_dir(output.parent, config.cache_dir)))


def preflight(engine: Engine, config: BuildConfig) -> None:
    """Probe every endpoint the build uses before a chunk is sent: a server that cannot sample,
    or a logits judge on one without log-probs, is refused before anything is spent (the judge's
    check first: it costs one request)."""
    for step in sorted(engine.steps, key=lambda s: s.name != "self_judge"):
        llm = getattr(step, "llm", None)
        model = getattr(llm, "_backend", None)
        if llm is None or model is None or not hasattr(model, "probe"):
            continue
        judge = step.name == "self_judge" and config.judge == "logits"
        sampling = not judge and float((llm.generation_kwargs or {}).get("temperature") or 0) > 0
        model.probe(sampling=sampling, logprobs=judge)


def method_stats(method: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """What the method adds to the build stats (SSO: where the features came from)."""
    stats = getattr(method_module(method), "build_stats", None)
    return stats(records) if stats else {}


def records_frame(records: list[dict[str, Any]]) -> pl.DataFrame:
    df = pl.DataFrame(records, infer_schema_length=None,
                      schema_overrides={"confidence": pl.Float64})
    empty = [c for c in df.columns if df[c].dtype == pl.Null and c != "confidence"]
    return df.drop(empty)


def build(config: BuildConfig, output: str | Path, *, name: str | None = None,
          version: str = "0.1.0", command: str | None = None,
          llm_factory: LLMFactory | None = None, progress: Progress | None = None,
          card: Any = None, notify: Callable[[str], None] | None = None,
          extra_stats: dict[str, Any] | None = None) -> BuildRecord:
    """Build a dataset folder at ``output``; rerunning after a crash resumes from finished parts."""
    output = Path(output)
    inputs, source = build_inputs(config)
    fingerprint = config.fingerprint([json.dumps(i, sort_keys=True) for i in inputs])
    parts = output.parent / f".{output.name}.parts" / fingerprint
    config = with_cache_dir(config, output)
    cache_stats: dict[str, Any] = {}
    accounting: dict[str, Any] = {}
    records, dropped, (prompts, refusals), pipeline_yaml = run_chunks(
        config, inputs, source, parts, llm_factory, progress, notify, cache_stats, accounting)
    if not records:
        reasons = ", ".join(f"{k}: {v}" for k, v in dropped.most_common()) or "no rows"
        raise SelfprefError(f"the build kept no pair ({reasons}); try more --num-prompts, a larger "
                            "--max-new-tokens, or --judge logits for small judges")
    if config.ray:  # where each chunk ran, and the chunks retried after a lost worker
        from selfpref.pipelines.ray_runner import placement_stats

        extra_stats = {**placement_stats(parts), **(extra_stats or {})}
    origin = prompt_source(config, source)
    parameters = {k: v for k, v in dataclasses.asdict(config).items()
                  if k not in ("method", "model", "reference_model", "seed", "api_key_env",
                               "judge_api_key_env", "judge_mode", "no_cache", "cache_dir")}
    for key in ("base_url", "judge_base_url"):  # a user:password@ in a URL is never written
        if parameters.get(key):
            parameters[key] = mask_url(parameters[key])
    if config.method != "sao":
        for key in ("judge", "judge_model", "judge_base_url", "judge_max_new_tokens", "judge_orders",
                    "judge_models", "panel"):
            parameters.pop(key, None)
    parameters["prompt_source"] = origin
    models = {"generator": model_label(config.model)}
    if config.method == "sao":
        models["judge"] = judge_description(config)
    if config.method == "selfee":
        models["reference"] = config.reference_model or "reference-free (SELFEE Table 5)"
    funnel = [{"step": f"build:{config.method}",
               "parameters": {"inputs_from": source, "prompt_source": origin},
               "input": len(inputs), "kept": len(records), "dropped": dict(dropped)}]
    record = BuildRecord(name=name or output.name, method=config.method, version=version,
                         models=models, parameters=parameters, seed=config.seed, funnel=funnel,
                         command=command, stats={**prompt_repetition(prompts, refusals=refusals),
                                                 "prompt_source": origin,
                                                 **method_stats(config.method, records),
                                                 "build_fingerprint": fingerprint,
                                                 **cache_stats,
                                                 "usage": usage_stats(accounting.get("parts", []),
                                                                      accounting.get("endpoints", []),
                                                                      config.prices()),
                                                 **(extra_stats or {})})
    requests = cache_stats.get("requests")
    if isinstance(requests, dict) and requests:  # what the response cache answered this run
        record.stats["usage"]["cached_requests"] = sum(int(r.get("cached", 0)) for r in requests.values())
    extra: dict[str, str | bytes] = {"pipeline.yaml": pipeline_yaml} if pipeline_yaml else {}
    written = write_dataset(records_frame(records), output, record, extra_files=extra, card=card)
    shutil.rmtree(parts.parent, ignore_errors=True)
    return written
