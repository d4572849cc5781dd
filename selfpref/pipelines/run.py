"""The build runner: inputs -> resumable chunks through the method's pipeline -> dataset folder.

distilabel's own cache does not survive SIGKILL (a rerun hangs: distilabel issue #1065), so a
build splits its inputs into chunks keyed by a fingerprint of the work; each finished chunk is
written atomically as a part file, and a rerun with the same arguments skips finished parts.
The dataset is the ordered union of the parts: nothing is lost or doubled.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import polars as pl

from selfpref import SelfprefError
from selfpref.models.resolve import model_label, resolve_model
from selfpref.pipelines import LLMFactory, build_pipeline, method_module, run_pipeline
from selfpref.pipelines.config import BuildConfig
from selfpref.pipelines.parsing import normalize_text
from selfpref.data.store import BuildRecord, write_dataset, write_json_atomic

Progress = Callable[[int, int], None]


def build_inputs(config: BuildConfig) -> tuple[list[dict[str, Any]], str]:
    """(loader rows, their column): prompts, personas, or domains for self-written personas."""
    from selfpref.data.importer import read_texts
    from selfpref.pipelines.domains import DOMAINS

    rng = random.Random(config.seed)
    for ref, column in ((config.prompts, "prompt"), (config.personas, "persona")):
        if ref is None:
            continue
        values = read_texts(ref, config.prompt_column if column == "prompt" else column, flag=f"--{column}s")
        if column == "persona" and len(values) > config.num_prompts:
            values = rng.sample(values, config.num_prompts)  # SAO: personas sampled at random
        return [{column: v} for v in values[: config.num_prompts]], column
    if config.method != "sao":
        raise SelfprefError(f"`build {config.method}` needs --prompts REF (a dataset with a "
                            "'prompt' column); only sao writes its own prompts")
    domains = DOMAINS[:]
    rng.shuffle(domains)
    return [{"domain": domains[i % len(domains)]} for i in range(config.num_prompts)], "domain"


def default_llm_factory(config: BuildConfig) -> LLMFactory:
    from selfpref.pipelines.llms import make_llm

    local = config.backend in ("transformers", "vllm")
    model = resolve_model(config.model) if local else str(config.model)
    threads = max(1, (os.cpu_count() or 1))

    def factory(step: str, generation: dict) -> Any:
        return make_llm(config.backend, model, model_id=model_label(config.model),
                        batch_size=config.batch_size, seed=config.seed, base_url=config.base_url,
                        api_key_env=config.api_key_env, generation=generation, num_threads=threads,
                        step=step, script=config.script)

    return factory


def run_chunks(config: BuildConfig, inputs: list[dict[str, Any]], source: str, parts: Path,
               llm_factory: LLMFactory, progress: Progress | None = None,
               notify: Callable[[str], None] | None = None) -> tuple[list[dict], collections.Counter, list[str], str]:
    """Run every unfinished chunk; return records, drops, generated prompts and pipeline YAML."""
    module = method_module(config.method)
    parts.mkdir(parents=True, exist_ok=True)
    chunks = [inputs[i : i + config.chunk_size] for i in range(0, len(inputs), config.chunk_size)]
    done = sum((parts / f"part-{i:05d}.json").exists() for i in range(len(chunks)))
    if done and notify:
        notify(f"resuming: {done} of {len(chunks)} chunks already finished")
    generator = model_label(config.model)
    pipeline_yaml = ""
    for index, chunk in enumerate(chunks):
        part = parts / f"part-{index:05d}.json"
        if not part.exists():
            chunk_config = dataclasses.replace(config, seed=config.seed + index)
            numbered = [{**row, "input_index": i} for i, row in enumerate(chunk)]
            with tempfile.TemporaryDirectory(prefix="distilabel-", dir=parts) as cache:
                pipeline = build_pipeline(chunk_config, numbered, source, llm_factory, cache_dir=cache)
                rows = run_pipeline(pipeline, ray=config.ray, ray_address=config.ray_address)
            rows.sort(key=lambda r: r["input_index"])  # distilabel does not promise input order
            if len(rows) != len(chunk):
                raise SelfprefError(f"chunk {index}: the pipeline returned {len(rows)} rows for "
                                    f"{len(chunk)} inputs; rerun the build to redo this chunk")
            if not (parts / "pipeline.yaml").exists():
                pipeline.save(str(parts / "pipeline.yaml"), format="yaml")
            records, dropped = module.assemble(rows, generator=generator, judge_mode=config.judge_mode,
                                               beta=config.beta, reference=config.reference_model)
            prompts = [r["prompt"] for r in rows if r.get("prompt")]
            write_json_atomic(part, {"inputs": len(chunk), "records": records,
                                      "dropped": dict(dropped), "prompts": prompts})
        if progress:
            progress(index + 1, len(chunks))
    records, dropped, prompts = [], collections.Counter(), []
    for index in range(len(chunks)):
        data = json.loads((parts / f"part-{index:05d}.json").read_text())
        records += data["records"]
        dropped.update(data["dropped"])
        prompts += data["prompts"]
    if (parts / "pipeline.yaml").exists():
        pipeline_yaml = (parts / "pipeline.yaml").read_text()
    return records, dropped, prompts, pipeline_yaml


def repetition_rate(prompts: list[str]) -> float:
    """SAO Table 5: the share of generated prompts that repeat an earlier one (normalised text)."""
    if not prompts:
        return 0.0
    return 1.0 - len({normalize_text(p) for p in prompts}) / len(prompts)


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
    factory = llm_factory or default_llm_factory(config)
    records, dropped, prompts, pipeline_yaml = run_chunks(config, inputs, source, parts, factory,
                                                          progress, notify)
    if not records:
        reasons = ", ".join(f"{k}: {v}" for k, v in dropped.most_common()) or "no rows"
        raise SelfprefError(f"the build kept no pair ({reasons}); try more --num-prompts, a larger "
                            "--max-new-tokens, or --judge-mode logits for small judges")
    parameters = {k: v for k, v in dataclasses.asdict(config).items()
                  if k not in ("method", "model", "reference_model", "seed", "api_key_env")}
    models = {"generator": model_label(config.model)}
    if config.method == "sao":
        models["judge"] = model_label(config.model)
    if config.method == "selfee":
        models["reference"] = config.reference_model or "reference-free (SELFEE Table 5)"
    funnel = [{"step": f"build:{config.method}", "parameters": {"inputs_from": source},
               "input": len(inputs), "kept": len(records), "dropped": dict(dropped)}]
    record = BuildRecord(name=name or output.name, method=config.method, version=version,
                         models=models, parameters=parameters, seed=config.seed, funnel=funnel,
                         command=command, stats={"prompt_repetition_rate": repetition_rate(prompts),
                                                 "build_fingerprint": fingerprint,
                                                 **(extra_stats or {})})
    extra = {"pipeline.yaml": pipeline_yaml} if pipeline_yaml else {}
    written = write_dataset(records_frame(records), output, record, extra_files=extra, card=card)
    shutil.rmtree(parts.parent, ignore_errors=True)
    return written
