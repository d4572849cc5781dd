"""`selfpref eval`: answers of A and B on held-out prompts, judged in both orders, summarized.

Each side is an answer file, a model (the embedded default, a folder or a Hub id), or, for B,
model A with an AlignEZ edit (``steer_b``). Models are loaded once per process and shared: the
same reference used for A, B and the judge is one load; with ``steer_b`` the base model writes
both sides (the edit's hooks are removed before judging). Both models decode the same way
(greedy unless ``temperature`` > 0, the same ``max_new_tokens`` and seed).

Orientation: ``score`` = P(A better). In a comparison against a base model, make the base A
(``--model-a BASE``); then the trained model's Net Win% over the base is ``-net_win``, which is
what `compare` reports.

The output folder is written into a temporary sibling and renamed into place:

    judgments.parquet   one row per prompt (see `judgment_rows`)
    eval.json           the figures (`stats.summarize_scores`) + judge, models, prompts, decoding
    README.md, plots/   the report (`report.write_report`)
    answers_a.json      AlpacaEval's model-output layout: [{instruction, output, generator}]
    answers_b.json      (so AlpacaEval / Arena-Hard can judge the same generations)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from selfpref import SelfprefError, __version__
from selfpref.data.atomic import atomic_folder
from selfpref.eval.sources import PromptSet, load_prompts, read_answers
from selfpref.models.openai_compat import mask_url
from selfpref.models.pool import REWARD, ModelPool


@dataclass
class EvalConfig:
    """Every option of `selfpref eval`; ``__post_init__`` names the flag and the fix on a conflict."""

    output: str = field(metadata={"help": "Folder to write (judgments.parquet, eval.json, README.md, answers_*.json)."})
    model_a: str | None = field(default=None, metadata={"help": "Model A: folder, Hub id or 'default' (the embedded model; used when --answers-a is not given)."})
    model_b: str | None = field(default=None, metadata={"help": "Model B: folder, Hub id or 'default'."})
    answers_a: str | None = field(default=None, metadata={"help": "A's answers: jsonl/parquet with 'prompt' and 'answer' (or AlpacaEval's instruction/output)."})
    answers_b: str | None = field(default=None, metadata={"help": "B's answers, same layout as --answers-a."})
    steer_b: str | None = field(default=None, metadata={"help": "B = model A with these AlignEZ directions (from `selfpref steer fit`)."})
    steer_layers: list[int] | None = field(default=None, metadata={"help": "Layers to edit with --steer-b; default: the fitted choice."})
    prompts: str | None = field(default=None, metadata={"help": "Prompt set (any dataset with a prompt column or MT-Bench 'turns'); default: selfpref's 104 held-out prompts."})
    prompt_column: str | None = field(default=None, metadata={"help": "Column of --prompts to read."})
    max_prompts: int | None = field(default=None, metadata={"help": "Evaluate only the first N prompts."})
    max_new_tokens: int = field(default=256, metadata={"help": "Most new tokens per answer (both models)."})
    temperature: float = field(default=0.0, metadata={"help": "0: greedy decoding (both models)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling when temperature > 0."})
    batch_size: int = field(default=8, metadata={"help": "Sequences per forward pass (generation and judge)."})
    judge: str = field(default="logits", metadata={"help": "logits (forced choice), text, rm (a reward model, --judge-model PATH: P = sigmoid(r_A - r_B)), length (shorter wins, SAO Table 6), length:longer, random."})
    judge_model: str | list[str] | None = field(default=None, metadata={"help": "Judge model: folder, Hub id, 'default', or the endpoint's model name; several (a list) make a panel."})
    panel: str = field(default="mean", metadata={"help": "With several judge models: mean (of P), majority (of the judges' verdicts) or unanimous (a verdict only when all agree)."})
    judge_base_url: str | None = field(default=None, metadata={"help": "OpenAI-compatible endpoint for the judge (…/v1)."})
    judge_api_key_env: str | None = field(default=None, metadata={"help": "Name of the environment variable holding the endpoint's key."})
    judge_backend: str | None = field(default=None, metadata={"help": "transformers (default), vllm, or openai (implied by --judge-base-url)."})
    judge_max_new_tokens: int = field(default=32, metadata={"help": "--judge text: most new tokens per verdict."})
    aspects: list[str] | None = field(default=None, metadata={"help": "Also judge these AlignEZ aspects: engagement,helpfulness,factuality,depth,clarity."})
    seed: int = field(default=0, metadata={"help": "Seed for sampling, the random judge and the bootstrap."})
    bootstrap: int = field(default=1000, metadata={"help": "Bootstrap resamples over prompts for the 95% intervals (0: none)."})
    no_cache: bool = field(default=False, metadata={"help": "Send every judge request to the endpoint again, reading and writing no request cache."})
    cache_dir: str | None = field(default=None, metadata={"help": "Request cache folder (default: $SELFPREF_CACHE_DIR, else .selfpref-cache beside --output)."})
    max_concurrency: int = field(default=16, metadata={"help": "Endpoint judge: most requests in flight (halved on a 429)."})
    max_retries: int = field(default=8, metadata={"help": "Endpoint judge: retries after a 429, 408, 5xx, reset or timeout."})
    request_timeout: float = field(default=120.0, metadata={"help": "Endpoint judge: seconds one attempt may take."})
    retry_backoff: float = field(default=1.0, metadata={"help": "Endpoint judge: first retry's wait in seconds (doubling, with jitter)."})

    def __post_init__(self) -> None:
        if isinstance(self.judge_model, (list, tuple)):
            models = [str(m) for m in self.judge_model]
            self.judge_model = models[0] if len(models) == 1 else (models or None)
        if self.panel not in ("mean", "majority", "unanimous"):
            raise SelfprefError(f"--panel {self.panel!r}: use mean, majority or unanimous")
        if isinstance(self.judge_model, list):
            from selfpref.judges.factory import judge_kinds

            judge_kinds(self.judge, len(self.judge_model))  # one kind for all, or one per model
            if self.judge_base_url or self.judge_backend not in (None, "transformers"):
                raise SelfprefError("--judge-model given several times (a panel): local judges "
                                    "only; drop --judge-base-url / --judge-backend")
        elif "," in self.judge:
            raise SelfprefError(f"--judge {self.judge}: several kinds need several --judge-model "
                                "(one per kind)")
        b_sources = [f for f, v in (("--model-b", self.model_b), ("--answers-b", self.answers_b),
                                    ("--steer-b", self.steer_b)) if v]
        if len(b_sources) > 1:
            raise SelfprefError(f"{' and '.join(b_sources)}: give only one source for B")
        if not b_sources:
            raise SelfprefError("no B to compare: give --model-b MODEL, --answers-b FILE or "
                                "--steer-b DIRECTIONS")
        if self.model_a and self.answers_a:
            raise SelfprefError("--model-a and --answers-a: give only one source for A")
        if self.steer_b and self.answers_a:
            raise SelfprefError("--steer-b edits model A, so A must be a model: give --model-a "
                                "(or nothing, for the embedded default) instead of --answers-a")
        if self.prompt_column and not self.prompts:
            raise SelfprefError(f"--prompt-column {self.prompt_column}: it names a column of --prompts; "
                                "give --prompts FILE too (the default prompts and answer files "
                                "have their own columns)")
        if self.steer_layers and not self.steer_b:
            raise SelfprefError("--steer-layers applies only with --steer-b")
        if self.max_new_tokens < 1:
            raise SelfprefError(f"--max-new-tokens {self.max_new_tokens}: give at least 1")
        if self.temperature < 0:
            raise SelfprefError(f"--temperature {self.temperature}: give 0 (greedy) or more")
        if self.no_cache and self.cache_dir:
            raise SelfprefError(f"--cache-dir {self.cache_dir} and --no-cache: give one")
        for flag, ok in (("--max-concurrency", self.max_concurrency >= 1), ("--max-retries", self.max_retries >= 0),
                         ("--request-timeout", self.request_timeout > 0), ("retry_backoff", self.retry_backoff >= 0)):
            if not ok:
                raise SelfprefError(f"{flag} {getattr(self, flag.lstrip('-').replace('-', '_'))}: must be "
                                    f"{'at least 1' if flag == '--max-concurrency' else 'positive'}")
        if self.bootstrap < 0:
            raise SelfprefError(f"--bootstrap {self.bootstrap}: give a number of resamples >= 0")
        if self.max_prompts is not None and self.max_prompts < 1:
            raise SelfprefError(f"--max-prompts {self.max_prompts}: give at least 1")
        out = Path(self.output)
        if out.exists() and not (out.is_dir() and ((out / "eval.json").is_file() or not any(out.iterdir()))):
            raise SelfprefError(f"--output {self.output}: exists and is not an eval folder (no "
                                "eval.json); an eval replaces its output folder, so pick a new one")
        if self.steer_b and not Path(self.steer_b).is_file():
            raise SelfprefError(f"--steer-b {self.steer_b}: no such file; write it with "
                                "`selfpref steer fit`")

    def decoding(self) -> dict[str, Any]:
        out: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature,
                               "seed": self.seed}
        if self.temperature > 0:
            out["top_p"] = self.top_p
        return out


Notify = Callable[[str], None]
Files = dict[str, tuple[dict[str, str], str | None]]


def _local(models: ModelPool, ref: str | None) -> Any:
    """Model ``ref`` on transformers, loaded (A, B and the judge share ``models``: one load
    each, across evaluations too when one pool is passed to several `run_eval` calls)."""
    return models.get("transformers", ref).load()


def _chats(prompts: Sequence[str]) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": p}] for p in prompts]


def _pick(answers: dict[str, str], prompts: Sequence[str], flag: str, ref: str) -> list[str]:
    missing = [p for p in prompts if p not in answers]
    if missing:
        raise SelfprefError(f"{flag} {ref}: no answer for {len(missing)} of {len(prompts)} prompts "
                            f"(first: {missing[0][:60]!r}); the prompts differ, give answers to the "
                            "same prompts on both sides (or the --prompts they were written for)")
    return [answers[p] for p in prompts]


def _prompt_set(cfg: EvalConfig, files: Files) -> PromptSet:
    from selfpref.eval.sources import fingerprint

    if cfg.prompts or not files:
        prompts = load_prompts(cfg.prompts, column=cfg.prompt_column)
    else:  # the prompts the answer file(s) answer
        texts = list(files["a" if "a" in files else "b"][0])
        prompts = PromptSet(texts, str(cfg.answers_a or cfg.answers_b), fingerprint(texts))
        if len(files) == 2:
            other = set(files["b"][0])
            if other != set(texts):
                only_a, only_b = len(set(texts) - other), len(other - set(texts))
                raise SelfprefError(f"--answers-a and --answers-b answer different prompts ({only_a} "
                                    f"only in A, {only_b} only in B); give answers to the same "
                                    f"prompts, or pass --prompts with prompts both files answer")
    if cfg.max_prompts and len(prompts.prompts) > cfg.max_prompts:
        n = cfg.max_prompts
        cats = prompts.categories[:n] if prompts.categories else None
        prompts = PromptSet(prompts.prompts[:n], f"{prompts.id}[:{n}]",
                            fingerprint(prompts.prompts[:n]), prompts.skipped, cats)
    return prompts


def read_answer_files(cfg: EvalConfig) -> Files:
    files: Files = {}
    if cfg.answers_a:
        files["a"] = read_answers(cfg.answers_a, "--answers-a")
    if cfg.answers_b:
        files["b"] = read_answers(cfg.answers_b, "--answers-b")
    return files


def answer_prompts(models: ModelPool, ref: str | None, prompts: Sequence[str], *, max_new_tokens: int,
                   temperature: float = 0.0, top_p: float = 1.0, seed: int = 0) -> list[str]:
    """One answer per prompt from model ``ref`` (loaded through ``models``), decoded as `run_eval`
    decodes: greedy unless ``temperature`` > 0, the same seed."""
    return [g[0] for g in _local(models, ref).generate(_chats(prompts), max_new_tokens=max_new_tokens,
                                                       temperature=temperature, top_p=top_p, seed=seed)]


def _steer_plan(cfg: EvalConfig, models: ModelPool) -> tuple[Any, Any, list[int]]:
    """(base model, directions, layers) for --steer-b, validated against the base model."""
    from selfpref.steer import load_directions

    base = _local(models, cfg.model_a)
    directions = load_directions(str(cfg.steer_b), base.model)
    layers = list(cfg.steer_layers or directions.layers)
    total = directions.theta_help.shape[0]
    bad = [i for i in layers if not 0 <= i < total]
    if bad:
        raise SelfprefError(f"--steer-layers {bad[0]}: this model has layers 0..{total - 1}")
    return base, directions, layers


def generate_answers(cfg: EvalConfig, prompts: Sequence[str], files: Files, models: ModelPool,
                     notify: Notify) -> tuple[list[str], list[str], dict[str, Any], dict[str, Any]]:
    """(answers A, answers B, description of A, description of B)."""
    from selfpref.models import model_label

    decoding = cfg.decoding()
    kwargs: dict[str, Any] = {"max_new_tokens": cfg.max_new_tokens, "temperature": cfg.temperature,
              "top_p": cfg.top_p, "seed": cfg.seed}
    steer = _steer_plan(cfg, models) if cfg.steer_b else None  # checked before any generation
    sides: dict[str, tuple[list[str], dict[str, Any]]] = {}
    written: dict[tuple[str, ...], list[str]] = {}  # answers per resolved model
    for side, answers_ref, model_ref in (("a", cfg.answers_a, cfg.model_a), ("b", cfg.answers_b, cfg.model_b)):
        if answers_ref:
            answers, generator = files[side]
            sides[side] = (_pick(answers, prompts, f"--answers-{side}", answers_ref),
                           {"source": "answers", "path": str(answers_ref),
                            "label": generator or str(answers_ref)})
        elif model_ref or side == "a":
            key = models.key("transformers", model_ref)
            if key in written:  # the same model, decoding and seed write the same answers again
                notify(f"model {side.upper()} ({model_label(model_ref)}) is model A: same answers")
            else:
                notify(f"model {side.upper()} ({model_label(model_ref)}): answering {len(prompts)} prompts")
                written[key] = answer_prompts(models, model_ref, prompts, **kwargs)
            sides[side] = (written[key], {"source": "model", "model": model_label(model_ref),
                                          "label": model_label(model_ref), "decoding": decoding})
    if steer is not None:
        from selfpref.steer import steering

        base, directions, layers = steer
        notify(f"model B (model A + AlignEZ edit on layers {layers}): answering {len(prompts)} prompts")
        with steering(base.model, directions, layers):  # hooks removed on exit, before judging
            texts = [g[0] for g in base.generate(_chats(prompts), **kwargs)]
        label = f"{model_label(cfg.model_a)}+alignez:{Path(str(cfg.steer_b)).name}"
        sides["b"] = (texts, {"source": "steer", "model": model_label(cfg.model_a),
                              "directions": str(cfg.steer_b), "layers": layers,
                              "label": label, "decoding": decoding})
    (answers_a, desc_a), (answers_b, desc_b) = sides["a"], sides["b"]
    desc_a["answers_fingerprint"] = answers_fingerprint(prompts, answers_a)
    desc_b["answers_fingerprint"] = answers_fingerprint(prompts, answers_b)
    return answers_a, answers_b, desc_a, desc_b


def answers_fingerprint(prompts: Sequence[str], answers: Sequence[str]) -> str:
    """sha256 of the (prompt, answer) pairs in prompt order: the same answers, whatever their order."""
    pairs = sorted(zip(prompts, answers))
    return hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode()).hexdigest()


def build_judge(cfg: EvalConfig, models: ModelPool) -> Any:
    """The judge of ``cfg``; a local judge model already loaded for A or B is reused."""
    from selfpref.judges import local_judge_backend, make_judge
    from selfpref.models import model_label

    common: dict[str, Any] = {"aspects": cfg.aspects, "seed": cfg.seed,
                              "max_new_tokens": cfg.judge_max_new_tokens, "batch_size": cfg.batch_size}
    if isinstance(cfg.judge_model, list):  # a panel: causal LMs through the pool (shared with A/B)
        from selfpref.judges.factory import make_panel

        def load(kind: str, ref: str) -> Any:
            return models.get(REWARD, ref) if kind == "rm" else _local(models, ref)

        return make_panel(cfg.judge, cfg.judge_model, cfg.panel, load=load, **common)
    if local_judge_backend(cfg.judge, base_url=cfg.judge_base_url, backend=cfg.judge_backend) == "transformers" \
            and cfg.judge != "rm":
        model = _local(models, cfg.judge_model)  # validates the reference, loads once
        return make_judge(cfg.judge, model, model_label=model_label(cfg.judge_model), **common)
    endpoint = {"max_concurrency": cfg.max_concurrency, "max_retries": cfg.max_retries,
                "request_timeout": cfg.request_timeout, "retry_backoff": cfg.retry_backoff}
    return make_judge(cfg.judge, cfg.judge_model, base_url=cfg.judge_base_url,
                      api_key_env=cfg.judge_api_key_env, backend=cfg.judge_backend,
                      endpoint_options=endpoint if cfg.judge_base_url or cfg.judge_backend == "openai"
                      else None, **common)


def judgment_rows(prompts: Sequence[str], answers_a: Sequence[str], answers_b: Sequence[str],
                  judgments: Sequence[Any], categories: Sequence[str] | None = None) -> Any:
    """The judgments table: prompt, answer_a, answer_b, len_a, len_b (characters), p_a_first,
    p_a_second, score, consistent, judge_raw (both orders' raw outputs, A-first order first),
    [category], [judge_members: a panel's per-judge P, JSON], and per aspect score_<aspect>,
    consistent_<aspect>, judge_raw_<aspect>."""
    import polars as pl

    data: dict[str, Any] = {
        "prompt": list(prompts), "answer_a": list(answers_a), "answer_b": list(answers_b),
        "len_a": [len(a) for a in answers_a], "len_b": [len(b) for b in answers_b],
        "p_a_first": [j.p_a_first for j in judgments], "p_a_second": [j.p_a_second for j in judgments],
        "score": [j.score for j in judgments], "consistent": [j.consistent for j in judgments],
        "judge_raw": [list(j.raw) for j in judgments]}
    if categories:
        data["category"] = list(categories)
    if judgments and judgments[0].members:  # a panel: every judge's [p_a_first, p_a_second]
        data["judge_members"] = [json.dumps({k: [m.p_a_first, m.p_a_second] for k, m in j.members.items()})
                                 for j in judgments]
    for aspect in (judgments[0].aspects if judgments else {}):
        data[f"score_{aspect}"] = [j.aspects[aspect].score for j in judgments]
        data[f"consistent_{aspect}"] = [j.aspects[aspect].consistent for j in judgments]
        data[f"judge_raw_{aspect}"] = [list(j.aspects[aspect].raw) for j in judgments]
    return pl.DataFrame(data, schema_overrides={"judge_raw": pl.List(pl.Utf8)})


def _judge_bias(judge: Any, judgments: Sequence[Any], table: Any, summary: dict[str, Any],
                desc_a: dict[str, Any], desc_b: dict[str, Any]) -> dict[str, Any]:
    """`judges.bias.judge_report`: position, length, a panel's agreement, and self-preference
    where the judge (or a panel member) is model A or B."""
    from selfpref.judges.bias import generator_sides, judge_report

    return judge_report(judgments, table["len_a"].to_list(), table["len_b"].to_list(),
                        length_coef=summary.get("lc_length_coef"),
                        own_side=generator_sides(judge.describe(), {"a": desc_a, "b": desc_b}))


def summarize(table: Any, *, bootstrap: int, seed: int) -> dict[str, Any]:
    """eval.json's figures from a judgments table (`stats.summarize_scores` + aspects)."""
    from selfpref.eval.stats import summarize_aspects, summarize_scores

    summary = summarize_scores(table["score"].to_numpy(), table["len_a"].to_numpy(),
                               table["len_b"].to_numpy(), table["consistent"].to_numpy(),
                               bootstrap=bootstrap, seed=seed)
    orders = list(table["p_a_first"]) + list(table["p_a_second"])
    summary["undecided_orders"] = 100.0 * sum(p == 0.5 for p in orders) / len(orders)
    summary["empty_answers"] = {"a": int((table["len_a"] == 0).sum()), "b": int((table["len_b"] == 0).sum())}
    aspects = [c[len("score_"):] for c in table.columns if c.startswith("score_")]
    if aspects:
        summary["aspects"] = summarize_aspects({a: table[f"score_{a}"].to_numpy() for a in aspects})
        for a in aspects:
            summary["aspects"][a]["judge_consistency"] = float(table[f"consistent_{a}"].mean() * 100)
    return summary


def alpaca_outputs(prompts: Sequence[str], answers: Sequence[str], generator: str) -> list[dict[str, str]]:
    return [{"instruction": p, "output": a, "generator": generator} for p, a in zip(prompts, answers)]


def write_eval_folder(folder: str | Path, table: Any, summary: dict[str, Any], answers_a: list[dict],
                      answers_b: list[dict], title: str) -> Path:
    """All output files into a temporary sibling, then one rename onto ``folder``."""
    from selfpref.eval.report import write_report

    folder = Path(folder)
    with atomic_folder(folder) as tmp:  # the umask's mode: the folder is a report to share
        table.write_parquet(tmp / "judgments.parquet")
        (tmp / "eval.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        (tmp / "answers_a.json").write_text(json.dumps(answers_a, indent=2, ensure_ascii=False) + "\n")
        (tmp / "answers_b.json").write_text(json.dumps(answers_b, indent=2, ensure_ascii=False) + "\n")
        write_report(tmp, table, summary, title)
    return folder


def run_eval(cfg: EvalConfig, *, notify: Notify | None = None, judge: Any = None,
             command: str | None = None, models: ModelPool | None = None) -> dict[str, Any]:
    """Answer, judge, summarize and write ``cfg.output``; returns eval.json's content.

    ``judge`` replaces the one ``cfg`` describes (tests pass scripted judges; a loop passes the
    judge it built once). ``models``: a pool shared with other evaluations, so a base model or
    judge used by several runs in one process is loaded once.
    """
    notify = notify or (lambda _msg: None)
    models = models if models is not None else ModelPool(batch_size=cfg.batch_size)
    files = read_answer_files(cfg)
    prompt_set = _prompt_set(cfg, files)
    judge = judge or build_judge(cfg, models)  # before generating: a bad judge spec fails at once
    if not cfg.no_cache:  # an endpoint judge's responses are kept: a rerun does not pay twice
        from selfpref.models.request_cache import attach
        from selfpref.pipelines.step_cache import default_cache_dir

        attach(getattr(judge, "model", None), default_cache_dir(Path(cfg.output).parent, cfg.cache_dir))
    answers_a, answers_b, desc_a, desc_b = generate_answers(cfg, prompt_set.prompts, files, models,
                                                            notify)
    notify(f"judging {len(answers_a)} pairs in both orders with {judge.label}"
           + (f" and {len(judge.aspects)} aspects" if judge.aspects else ""))
    items = list(zip(prompt_set.prompts, answers_a, answers_b))
    judgments = judge.judge(items)
    table = judgment_rows(prompt_set.prompts, answers_a, answers_b, judgments, prompt_set.categories)
    summary = summarize(table, bootstrap=cfg.bootstrap, seed=cfg.seed)
    summary["judge_bias"] = _judge_bias(judge, judgments, table, summary, desc_a, desc_b)
    summary.update(
        judge=judge.describe(), models={"a": desc_a, "b": desc_b}, prompts=prompt_set.describe(),
        orientation=("score = P(A better than B); win/lose/tie/net_win are A's. With the base "
                     "model as A, B's Net Win% over the base is -net_win."),
        config={**asdict(cfg), "judge_base_url": cfg.judge_base_url and mask_url(cfg.judge_base_url)},
        selfpref_version=__version__,
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    if command:
        summary["command"] = command
    title = f"{desc_a['label']} (A) vs {desc_b['label']} (B), judge {judge.label}"
    write_eval_folder(cfg.output, table, summary, alpaca_outputs(prompt_set.prompts, answers_a, desc_a["label"]),
                      alpaca_outputs(prompt_set.prompts, answers_b, desc_b["label"]), title)
    return summary
