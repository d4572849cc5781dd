"""What a build is made of: one dataclass shared by every method, loadable from a recipe YAML."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfpref import SelfprefError
from selfpref.data.recipes import load_yaml_mapping
from selfpref.judges.factory import JUDGE_KINDS

# Parts written by another execution engine (seeding, step order) are not mixed into a resume.
ENGINE_VERSION = 2

METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    # SAO §4.1 gives temperature 0.6 and no top-p: 0.95 is selfpref's choice.
    "sao": {"temperature": 0.6, "top_p": 0.95, "max_new_tokens": 96},
    # SSO §3.1: temperature 0.7, top-p 0.8 (2048 new tokens in the paper; 96 here for a CPU).
    "sso": {"temperature": 0.7, "top_p": 0.8, "max_new_tokens": 96},
    # AlignEZ states no sampling settings: selfpref's choices.
    "alignez": {"temperature": 0.7, "top_p": 0.9, "max_new_tokens": 96},
    # SELFEE §5.1 / App. B: temperature 0.7, at most 300 tokens; no top-p given (1.0).
    "selfee": {"temperature": 0.7, "top_p": 1.0, "max_new_tokens": 300},
}
# The papers' own settings at their scale: selfpref/recipes/build/<method>-paper.yaml (`build --config`).


@dataclass
class BuildConfig:
    method: str = field(metadata={"help": "sao, sso, alignez or selfee."})
    model: str | None = field(default=None, metadata={
        "help": "Generator (and judge) model: folder or Hub id; default the embedded SmolLM2-135M-Instruct."})
    reference_model: str | None = field(default=None, metadata={
        "help": "selfee: Eq. 7's reference (SELFEE Table 5: pi_init, the paper's, or the previous "
                "model); without it Table 5's judgment without reference model."})
    backend: str = field(default="transformers", metadata={
        "help": "transformers, vllm, openai, or scripted (a dry run from --script, no model)."})
    script: str | None = field(default=None, metadata={
        "help": "scripted backend: YAML mapping each step name to the texts it returns, in order."})
    base_url: str | None = field(default=None, metadata={"help": "openai backend: the endpoint's /v1 URL."})
    api_key_env: str | None = field(default=None, metadata={
        "help": "openai backend: name of the environment variable holding the key (never written anywhere)."})
    prompts: str | None = field(default=None, metadata={
        "help": "Use this prompt set (a dataset with a 'prompt' column); default: the model writes "
                "its own prompts from personas (SAO §3.1), for every method."})
    prompt_column: str | None = field(default=None, metadata={"help": "Column of --prompts to read (default: the first of prompt, instruction, turns, messages, conversations)."})
    personas: str | None = field(default=None, metadata={
        "help": "A dataset with a 'persona' column (Persona Hub's layout) the prompts are written "
                "from; default: the model writes personas."})
    prompt_mode: str = field(default="persona", metadata={
        "help": "Without --prompts, how the model writes its prompts (flag --prompt-source): "
                "'persona' (SAO sec. 3.1, one prompt per persona) or 'random' (SAO Table 5: no "
                "persona, the model writes each prompt unprompted)."})
    prompt_format: str = field(default="auto", metadata={
        "help": "alignez: how prompts reach the generator: chat (its chat template), completion "
                "(plain text, for a base model: AlignEZ §2.1 and A.5), or auto (completion when "
                "the tokenizer has no chat template)."})
    num_prompts: int = field(default=8, metadata={"help": "How many prompts (personas) to build from."})
    seed: int = field(default=0, metadata={"help": "Random seed for sampling and selection."})
    batch_size: int = field(default=8, metadata={"help": "Generation batch size."})
    temperature: float | None = field(default=None, metadata={"help": "Sampling temperature (method default if unset)."})
    top_p: float | None = field(default=None, metadata={"help": "Nucleus sampling top_p (method default if unset)."})
    max_new_tokens: int | None = field(default=None, metadata={
        "help": "Most new tokens per answer (selfee default 300 as in the paper, else 96)."})
    prompt_max_new_tokens: int = field(default=64, metadata={
        "help": "Most new tokens for personas, prompts, features (64 for a CPU; SAO's prompts run to "
                "200 words, Fig. 3: selfpref/recipes/build/sao-paper.yaml allows 512)."})
    truncated_prompts: str = field(default="drop", metadata={
        "help": "A persona or prompt that reached prompt_max_new_tokens was cut mid-sentence: 'drop' "
                "(default; counted as persona_truncated / prompt_truncated in the funnel) or 'keep' "
                "(answered as cut, not counted)."})
    judge: str | None = field(default=None, metadata={
        "help": "sao: who labels each pair, in both orders: text (a written verdict) or logits (forced "
                "choice) by a model (the generator unless judge_model), rm (a reward model named by "
                "judge_model, P = sigmoid(r_A - r_B)), or SAO Table 6's baselines "
                "length (the shorter answer wins), length:longer, random (a coin seeded by seed). "
                "Default text."})
    judge_criteria: str | None = field(default=None, metadata={
        "help": "sao, text or logits judge: the criteria the ranking prompt names, comma-separated, "
                "from relevance,accuracy,completeness,clarity (SAO §3.3; all four by default). SAO "
                "Table 6's 'w/o Criterion k' drops one, e.g. relevance,accuracy,clarity."})
    judge_orders: int = field(default=2, metadata={
        "help": "sao: 2 asks the judge in both orders (selfpref's default: position bias shows as "
                "judge_consistent=false); 1 makes SAO Alg. 1 / Eq. 3's single call R(y1, y2 | x), "
                "answers[0] shown first (judge_consistent is then null)."})
    judge_mode: str | None = field(default=None, metadata={
        "help": "sao: alias of judge for its model kinds, 'text' or 'logits' (older recipes)."})
    judge_model: str | None = field(default=None, metadata={
        "help": "sao: judge with this model instead of the generator (SAO Table 8): folder, Hub id, "
                "'default', or the endpoint's model name. On the command line, repeat --judge-model "
                "for a panel (judge_models; --judge one kind for all, or one per model: "
                "text,logits,rm)."})
    judge_models: list[str] | None = field(default=None, metadata={
        "help": "sao: a panel of judge models (--judge-model given several times); judge is one "
                "kind for all or one per model, comma separated (text,logits,rm)."})
    panel: str = field(default="mean", metadata={
        "help": "sao, with judge_models: mean (of P), majority (of the judges' verdicts) or "
                "unanimous (a label only when all agree; otherwise judge_tie)."})
    judge_base_url: str | None = field(default=None, metadata={
        "help": "sao: judge on this OpenAI-compatible endpoint (its /v1 URL) with judge_model."})
    judge_api_key_env: str | None = field(default=None, metadata={
        "help": "sao, with judge_base_url: NAME of the environment variable holding the judge "
                "endpoint's key (never written anywhere; unset: no key)."})
    judge_max_new_tokens: int = field(default=16, metadata={"help": "sao text judge: most new tokens per verdict."})
    beta: float = field(default=0.1, metadata={"help": "selfee: beta of the implicit reward (Eq. 7)."})
    concision_probability: float = field(default=0.0, metadata={
        "help": "sso: chance of adding Concision to the picked feature. Default 0: Concision is one "
                "of SSO's seven features (§3.1), allocated like the others; no seed text gives a "
                "probability (selfpref's earlier default was 0.2)."})
    principles: str | None = field(default=None, metadata={
        "help": "sso: a YAML file replacing the feature/principle table (features: [{name, good, "
                "bad, meaning, good_principle, bad_principle}, ...], optional concision: {...})."})
    chunk_size: int = field(default=16, metadata={
        "help": "Prompts per resumable chunk: the resume granularity, not a cost (models load once)."})
    max_concurrency: int = field(default=16, metadata={
        "help": "openai backend: most requests in flight per endpoint (halved on a 429, grown back "
                "slowly)."})
    max_retries: int = field(default=8, metadata={
        "help": "openai backend: retries of a request after a 429, 408, 5xx, reset or timeout "
                "(backoff doubling from retry_backoff, at least the server's Retry-After); 400, "
                "401 and 403 are never retried."})
    request_timeout: float = field(default=120.0, metadata={
        "help": "openai backend: seconds one attempt may take before it is retried."})
    retry_backoff: float = field(default=1.0, metadata={
        "help": "openai backend: the first retry's wait in seconds (doubling, with jitter, at most "
                "60 s unless Retry-After asks more). Recipe key only."})
    price: str | None = field(default=None, metadata={
        "help": "'INPUT,OUTPUT': price per million prompt and completion tokens; the build record "
                "and card then give the cost."})
    ray: bool = field(default=False, metadata={
        "help": "Spread chunks over Ray workers that each load their models once."})
    ray_address: str | None = field(default=None, metadata={"help": "Ray cluster address (default: a local runtime)."})
    ray_workers: int | None = field(default=None, metadata={
        "help": "--ray: number of workers (default: one per GPU for vllm, else one per node)."})
    no_cache: bool = field(default=False, metadata={
        "help": "Send every request and run every step again, reading and writing no cache "
                "(docs/howto/cache.md)."})
    cache_dir: str | None = field(default=None, metadata={
        "help": "Where the request and step caches live (default: $SELFPREF_CACHE_DIR, else "
                ".selfpref-cache beside the output folder)."})
    ray_gpus_per_worker: int | None = field(default=None, metadata={
        "help": "--ray --backend vllm: GPUs per worker, its engines' tensor_parallel_size (default 1)."})
    ray_reference_gpus: int | None = field(default=None, metadata={
        "help": "--ray, selfee on vllm: GPUs for the reference model; more than "
                "--ray-gpus-per-worker runs it on its own worker with that tensor_parallel_size "
                "(e.g. a 70B pi_init beside an 8B policy); default: beside the policy."})

    def __post_init__(self) -> None:
        if self.method not in METHOD_DEFAULTS:
            raise SelfprefError(f"unknown method {self.method!r}: use one of {', '.join(METHOD_DEFAULTS)}")
        for key, value in METHOD_DEFAULTS[self.method].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        # Every method's defaults set these two, so they are never None from here on.
        assert self.temperature is not None and self.top_p is not None
        checks = [("num_prompts", self.num_prompts >= 1, "at least 1"),
                  ("batch_size", self.batch_size >= 1, "at least 1"),
                  ("prompt_max_new_tokens", self.prompt_max_new_tokens >= 1, "at least 1"),
                  ("concision_probability", 0 <= self.concision_probability <= 1, "in [0, 1]"),
                  ("truncated_prompts", self.truncated_prompts in ("drop", "keep"), "'drop' or 'keep'"),
                  ("chunk_size", self.chunk_size >= 1, "at least 1"),
                  ("ray_workers", self.ray_workers is None or self.ray_workers >= 1, "at least 1"),
                  ("ray_gpus_per_worker", self.ray_gpus_per_worker is None or self.ray_gpus_per_worker >= 1,
                   "at least 1"),
                  ("ray_reference_gpus", self.ray_reference_gpus is None or self.ray_reference_gpus >= 1,
                   "at least 1"),
                  ("temperature", self.temperature >= 0, ">= 0"),
                  ("top_p", 0 < self.top_p <= 1, "in (0, 1]"),
                  ("max_concurrency", self.max_concurrency >= 1, "at least 1"),
                  ("max_retries", self.max_retries >= 0, ">= 0"),
                  ("request_timeout", self.request_timeout > 0, "> 0 seconds"),
                  ("retry_backoff", self.retry_backoff >= 0, ">= 0 seconds"),
                  ("judge_mode", self.judge_mode in (None, "text", "logits"), "'text' or 'logits' "
                   "(an alias of --judge; the baselines are --judge length|length:longer|random)"),
                  ("backend", self.backend in ("transformers", "vllm", "openai", "scripted"),
                   "transformers, vllm, openai or scripted"),
                  ("prompt_format", self.prompt_format in ("auto", "chat", "completion"),
                   "auto, chat or completion")]
        for name, ok, want in checks:
            if not ok:
                raise SelfprefError(f"--{name.replace('_', '-')} {getattr(self, name)!r}: must be {want}")
        self._check_prompt_mode()
        if self.prompt_format != "auto" and self.method != "alignez":
            raise SelfprefError(f"--prompt-format {self.prompt_format}: only alignez has a "
                                "completion path; drop the flag for this method")
        if self.prompt_format == "completion" and self.backend in ("vllm", "openai"):
            raise SelfprefError(f"--prompt-format completion: the {self.backend} backend only "
                                "takes chats; use --backend transformers")
        if self.method == "selfee" and self.reference_model and self.reference_model == self.model:
            raise SelfprefError("--reference-model is the same as --model: every reward margin would be "
                                "zero; pass the initial model as reference, or omit it for the "
                                "reference-free judgment")

        if self.no_cache and self.cache_dir:
            raise SelfprefError(f"--cache-dir {self.cache_dir} and --no-cache: give one (--no-cache "
                                "reads and writes no cache at all)")
        self._check_judge()
        self._check_principles()
        self._check_ray_gpus()
        if self.backend == "scripted" and not self.script:
            raise SelfprefError("--backend scripted needs --script FILE (step name -> texts)")
        self.prices()

    def _check_panel(self) -> None:
        """Several --judge-model: a panel (sao only, local models, both orders)."""
        from selfpref.judges.factory import judge_kinds

        models = [str(m) for m in (self.judge_models or [])]
        if len(models) == 1:
            self.judge_model, self.judge_models = self.judge_model or models[0], None
            return
        if self.panel not in ("mean", "majority", "unanimous"):
            raise SelfprefError(f"--panel {self.panel!r}: use mean, majority or unanimous")
        if not models:
            return
        if self.method != "sao":
            raise SelfprefError("--judge-model given several times (a panel): only sao has a judge step")
        if self.judge_model:
            raise SelfprefError("a panel (judge_models) and --judge-model: list every judge in one place")
        if self.judge_base_url or self.backend not in ("transformers", "vllm"):
            raise SelfprefError("a judge panel runs local models: drop --judge-base-url, use "
                                "--backend transformers or vllm")
        if self.judge_orders != 2:
            raise SelfprefError("--judge-orders 1: a panel's judges each see both orders")
        self.judge_models = models
        self.judge = ",".join(judge_kinds(self.judge or self.judge_mode or "text", len(models)))
        self.judge_mode = None

    def _check_judge(self) -> None:
        """Resolve --judge / --judge-mode into ``judge`` and refuse judge flags that cannot work."""
        self._check_panel()
        if self.judge_models:
            return
        if self.judge is not None and self.judge not in JUDGE_KINDS:
            raise SelfprefError(f"--judge {self.judge!r}: use one of {', '.join(JUDGE_KINDS)}")
        if self.judge and self.judge_mode and self.judge != self.judge_mode:
            raise SelfprefError(f"--judge {self.judge} and --judge-mode {self.judge_mode} disagree; "
                                "give only --judge (--judge-mode is its older name for text|logits)")
        self.judge, self.judge_mode = self.judge or self.judge_mode or "text", None
        given = [f for f, v in (("--judge-model", self.judge_model),
                                ("--judge-base-url", self.judge_base_url),
                                ("--judge-api-key-env", self.judge_api_key_env)) if v]
        if self.method != "sao" and (given or self.judge != "text" or self.judge_orders != 2):
            flag = given[0] if given else (f"--judge {self.judge}" if self.judge != "text"
                                           else f"--judge-orders {self.judge_orders}")
            raise SelfprefError(f"{flag}: only sao has a judge step (sso's dispute judges are "
                                "`selfpref filter --judge-models`)")
        if self.judge_criteria is not None:
            from selfpref.judges.prompts import check_criteria

            self.judge_criteria = ",".join(check_criteria(self.judge_criteria))
            if self.method != "sao" or self.judge not in ("text", "logits"):
                raise SelfprefError(f"--judge-criteria: only sao's text or logits judge asks the "
                                    f"ranking prompt (here: {self.method}, --judge {self.judge})")
        if self.judge_orders not in (1, 2):
            raise SelfprefError(f"--judge-orders {self.judge_orders}: use 2 (both orders, selfpref's "
                                "default) or 1 (SAO Alg. 1 / Eq. 3's single call)")
        if self.judge == "rm":
            if not self.judge_model or self.judge_model == "default":
                raise SelfprefError("--judge rm needs --judge-model PATH: a reward model (a folder "
                                    "written by `selfpref train rm`, or a Hub reward model)")
            if self.judge_base_url:
                raise SelfprefError("--judge-base-url: --judge rm scores with a local reward model; "
                                    "drop --judge-base-url")
        if self.judge not in ("text", "logits", "rm") and given:
            raise SelfprefError(f"{given[0]}: --judge {self.judge} is a rule (SAO Table 6's baseline) "
                                "and calls no model; drop it, or use --judge text|logits|rm")
        if self.judge_api_key_env and not self.judge_base_url:
            raise SelfprefError("--judge-api-key-env goes with --judge-base-url (the judge's own "
                                "endpoint); with --backend openai the judge uses --api-key-env")
        if self.judge_base_url and not self.judge_model:
            raise SelfprefError("--judge-base-url: also name the endpoint's model with --judge-model")

    def _check_ray_gpus(self) -> None:
        if self.ray_gpus_per_worker and not (self.ray and self.backend == "vllm"):
            raise SelfprefError("--ray-gpus-per-worker: GPUs per vLLM worker under --ray; add --ray "
                                "--backend vllm, or drop it")
        if self.ray_reference_gpus and not (self.ray and self.backend == "vllm" and
                                            self.method == "selfee" and self.reference_model):
            raise SelfprefError("--ray-reference-gpus: GPUs for selfee's --reference-model on Ray "
                                "vLLM workers; it needs selfee, --reference-model, --ray and "
                                "--backend vllm, or drop it")

    def _check_principles(self) -> None:
        """A principles file is read now: a missing or malformed one fails before any model loads."""
        if self.principles is None:
            return
        if self.method != "sso":
            raise SelfprefError(f"--principles: only sso answers under principles; drop it for "
                                f"{self.method}")
        from selfpref.pipelines.features import load_features

        features, _ = load_features(self.principles)
        if len(features) < 2:  # SSO §3.1 allocates two features per query
            raise SelfprefError(f"--principles {self.principles}: list at least 2 features (SSO "
                                f"allocates two per query), this file has {len(features)}")

    @property
    def judge_is_generator(self) -> bool:
        """The model that writes the answers also judges them (SAO's self-judge)."""
        if self.judge_base_url or self.judge_models or self.judge not in ("text", "logits"):
            return False
        from selfpref.models.resolve import model_label, resolve_model

        if self.judge_model is None or model_label(self.judge_model) == model_label(self.model):
            return True  # also 'default' for the embedded generator
        if self.backend in ("transformers", "vllm"):  # ./m and /abs/m
            return resolve_model(self.judge_model, flag="--judge-model") == resolve_model(self.model)
        return False

    def _check_prompt_mode(self) -> None:
        # The flag is --prompt-source; the field is prompt_mode because the build record's
        # parameters.prompt_source already holds the sentence that says where prompts came from.
        if self.prompt_mode not in ("persona", "random"):
            raise SelfprefError(f"--prompt-source {self.prompt_mode!r}: must be 'persona' or 'random'")
        if self.prompt_mode == "random":
            for flag, value in (("--prompts", self.prompts), ("--personas", self.personas)):
                if value:
                    raise SelfprefError(f"--prompt-source random has the model write prompts with no "
                                        f"persona and no prompt set: drop {flag}, or drop "
                                        "--prompt-source random")

    def endpoint_options(self) -> dict[str, Any]:
        """What every OpenAI-compatible client of the build is made with."""
        return {"max_concurrency": self.max_concurrency, "max_retries": self.max_retries,
                "request_timeout": self.request_timeout, "retry_backoff": self.retry_backoff}

    def prices(self) -> tuple[float, float] | None:
        """``--price`` as (input, output) per million tokens."""
        return parse_price(self.price)

    def generation(self, max_new_tokens: int | None = None, temperature: float | None = None) -> dict:
        return {"max_new_tokens": max_new_tokens or self.max_new_tokens,
                "temperature": self.temperature if temperature is None else temperature,
                "top_p": self.top_p}

    def fingerprint(self, inputs: list[str]) -> str:
        """Identifies the work: same method, models, parameters, seed and inputs -> same parts."""
        relevant = {k: v for k, v in dataclasses.asdict(self).items()
                    if k not in ("ray", "ray_address", "ray_workers", "batch_size", "api_key_env",
                                 "judge_api_key_env", "no_cache", "cache_dir",
                                 "ray_gpus_per_worker", "ray_reference_gpus", *ENDPOINT_FIELDS)}
        if relevant["prompt_mode"] == "persona":  # the default: parts of earlier builds still resume
            del relevant["prompt_mode"]
        if relevant["truncated_prompts"] == "drop":  # likewise
            del relevant["truncated_prompts"]
        if relevant["prompt_format"] == "auto":  # likewise
            del relevant["prompt_format"]
        for key, default in (("judge_orders", 2), ("judge_models", None), ("panel", "mean"),
                             ("judge_criteria", None)):
            if relevant[key] == default:  # likewise
                del relevant[key]
        if self.backend in ("transformers", "vllm"):  # a model retrained into the same folder
            from selfpref.models.resolve import weights_signature

            relevant["weights"] = {k: weights_signature(getattr(self, k))
                                   for k in ("model", "reference_model", "judge_model")
                                   if getattr(self, k) is not None}
            for i, ref in enumerate(self.judge_models or []):
                relevant["weights"][f"judge_models[{i}]"] = weights_signature(ref)
        blob = json.dumps({"config": relevant, "inputs": inputs, "engine": ENGINE_VERSION},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# How hard a client tries and what tokens cost: never what the rows are.
ENDPOINT_FIELDS = ("max_concurrency", "max_retries", "request_timeout", "retry_backoff", "price")


def parse_price(text: str | None, flag: str = "--price") -> tuple[float, float] | None:
    """'INPUT,OUTPUT' (per million tokens) as two floats, or None."""
    if text is None:
        return None
    parts = str(text).split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 2 or any(v < 0 or v != v for v in values):
        raise SelfprefError(f"{flag} {text!r}: give two prices per million tokens, input then "
                            "output, e.g. --price 0.15,0.60")
    return values[0], values[1]


def load_build_recipe(path: str | Path, flag: str = "--config") -> dict[str, Any]:
    """A build recipe's options; every key must be a BuildConfig field."""
    return load_yaml_mapping(path, what="build recipe", flag=flag,
                             allowed=[f.name for f in dataclasses.fields(BuildConfig)])
