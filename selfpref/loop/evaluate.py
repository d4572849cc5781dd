"""The loop's evaluation: pi_t against pi_0 on held-out prompts after every iteration.

This is SAO Figure 2's and SSO Table 12's view of a loop: each iteration's model judged against
the starting policy on the same prompts. In every eval folder A is pi_0 (the starting policy:
--model, or the seed-trained pi_0 with --seed-data) and B is pi_t, so eval.json's rates are
pi_0's (score = P(A better)); the loop reports B's (`selfpref.eval.stats.b_side`):
``eval_win_rate`` is pi_t's win rate over pi_0 (eval.json's ``lose_rate``), ``eval_lc_win_rate``
is 100 - ``lc_win_rate``, ``eval_net_win`` is -``net_win``.

    <loop>/eval/prompts.jsonl          the prompts evaluated (--eval-num-prompts N takes them in
                                       turn from each category of the shipped set)
    <loop>/eval/answers_pi0.json       pi_0's answers, generated once for the whole loop
                                       (AlpacaEval's layout: `selfpref eval --answers-a` reads it)
    <loop>/eval/answers_pi0.key.json   what they answer: model, prompts fingerprint, decoding
    <loop>/iter-t/eval/                a `selfpref eval` folder: A = answers_pi0.json, B = pi_t

The evaluation options are not part of the loop's fingerprint: rerunning a finished loop with
--eval-prompts evaluates it. A finished eval folder is skipped on a rerun; one made with other
settings (prompts, judge, decoding, bootstrap, seed) is refused before any work, with the fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfpref import SelfprefError
from selfpref.data.atomic import replace_file, write_json_atomic

SHIPPED = ("default", "shipped")  # --eval-prompts names for selfpref's 104 held-out prompts
Notify = Callable[[str], None]


def _eval_flags(message: str) -> str:
    """An error from `selfpref.eval` or the judges names `selfpref eval`'s flags; say iterate's."""
    return (message.replace("--judge", "--eval-judge").replace("--max-new-tokens", "--eval-max-new-tokens")
            .replace("--prompts", "--eval-prompts"))


@dataclass
class LoopEval:
    """The options of `iterate --eval-*`; ``__post_init__`` names the flag on a bad value."""

    prompts: str = "default"  # a prompt set REF, or default / shipped
    num_prompts: int | None = None  # cap, spread over the set's categories
    judge: str = "logits"
    judge_model: str | None = None  # None: the embedded model
    judge_base_url: str | None = None
    judge_api_key_env: str | None = None
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0: greedy, pi_0 and pi_t alike
    batch_size: int = 8
    bootstrap: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        from selfpref.judges.factory import JUDGE_KINDS

        if self.num_prompts is not None and self.num_prompts < 1:
            raise SelfprefError(f"--eval-num-prompts {self.num_prompts}: give at least 1")
        if self.max_new_tokens < 1:
            raise SelfprefError(f"--eval-max-new-tokens {self.max_new_tokens}: give at least 1")
        if self.temperature < 0:
            raise SelfprefError(f"--eval-temperature {self.temperature}: give 0 (greedy) or more")
        if self.judge not in JUDGE_KINDS:
            raise SelfprefError(f"--eval-judge {self.judge!r}: use one of {', '.join(JUDGE_KINDS)}")
        if self.bootstrap < 0:
            raise SelfprefError(f"bootstrap {self.bootstrap}: give a number of resamples >= 0")

    def prompt_set(self) -> Any:
        """The prompts to evaluate on (loaded, capped); a bad reference is one line naming the flag."""
        from selfpref.eval.sources import load_prompts, spread

        try:
            prompts = load_prompts(None if self.prompts in SHIPPED else self.prompts)
        except SelfprefError as exc:
            message = _eval_flags(str(exc))
            if "--eval-prompts" not in message:
                message = f"--eval-prompts {self.prompts}: {message}"
            raise SelfprefError(message) from None
        if not prompts.prompts:
            raise SelfprefError(f"--eval-prompts {self.prompts}: no prompts")
        return spread(prompts, self.num_prompts) if self.num_prompts else prompts

    def check(self) -> Any:
        """Everything that can be checked before the loop starts: the prompts, the judge's spec
        (kind, model reference, endpoint and key variable; nothing is loaded). Returns the prompts."""
        from selfpref.judges import make_judge

        prompts = self.prompt_set()
        try:
            make_judge(self.judge, self.judge_model, base_url=self.judge_base_url,
                       api_key_env=self.judge_api_key_env, seed=self.seed)
        except SelfprefError as exc:
            raise SelfprefError(_eval_flags(str(exc))) from None
        return prompts

    def eval_config(self, output: Path, answers_a: Path, model_b: str, prompts: Path) -> Any:
        from selfpref.eval.run import EvalConfig

        return EvalConfig(output=str(output), answers_a=str(answers_a), model_b=model_b,
                          prompts=str(prompts), max_new_tokens=self.max_new_tokens,
                          temperature=self.temperature, batch_size=self.batch_size,
                          judge=self.judge, judge_model=self.judge_model, judge_base_url=self.judge_base_url, judge_api_key_env=self.judge_api_key_env,
                          seed=self.seed, bootstrap=self.bootstrap)

    def decoding(self) -> dict[str, Any]:
        return {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature, "seed": self.seed}


def _identity(prompts_fingerprint: str, judge: str, judge_model: str | None, base_url: str | None,
              max_new_tokens: int, temperature: float, bootstrap: int, seed: int) -> dict[str, Any]:
    """What must match for a finished eval folder to count for this run's settings."""
    from selfpref.models import model_label
    from selfpref.models.openai_compat import mask_url

    model = None if judge in ("length", "length:longer", "random") else (
        str(judge_model) if base_url else model_label(judge_model))
    return {"prompts": prompts_fingerprint, "judge": judge, "judge model": model,
            "judge endpoint": mask_url(base_url) if base_url else None,
            "max new tokens": max_new_tokens, "temperature": float(temperature),
            "bootstrap": bootstrap, "seed": seed}


def folder_identity(summary: dict[str, Any]) -> dict[str, Any]:
    c = summary["config"]
    return _identity(summary["prompts"]["fingerprint"], c["judge"], c.get("judge_model"),
                     c.get("judge_base_url"), c["max_new_tokens"], c["temperature"], c["bootstrap"],
                     c["seed"])


def figures(folder: Path) -> dict[str, Any]:
    """The summary keys of one eval folder, from pi_t's side (B over the base pi_0 = A)."""
    import polars as pl

    from selfpref.eval.stats import b_side

    summary = json.loads((folder / "eval.json").read_text())
    b = b_side(summary, pl.read_parquet(folder / "judgments.parquet", columns=["score"])["score"].to_numpy())

    def r(x: float) -> float:
        return round(float(x), 2) + 0.0  # never -0.0

    ci = b["ci95"]
    return {"eval_n": b["n"], "eval_win_rate": r(b["win_rate"]), "eval_lose_rate": r(b["lose_rate"]),
            "eval_tie_rate": r(b["tie_rate"]), "eval_net_win": r(b["net_win"]),
            "eval_lc_win_rate": r(b["lc_win_rate"]),
            "eval_ci95": {k: [r(lo), r(hi)] for k, (lo, hi) in ci.items()} if ci else None,
            "eval_judge_consistency": r(b["judge_consistency"]),
            "eval_mean_len_a": r(b["mean_len_base"]), "eval_mean_len_b": r(b["mean_len"]),
            "eval_judge": summary["judge"]["label"], "eval_folder": str(folder)}


class LoopEvaluator:
    """Evaluates pi_t against pi_0 after each iteration: pi_0's answers are made once per loop, the
    judge once per run of consecutive evaluations (it is freed while an iteration trains)."""

    def __init__(self, opts: LoopEval, out: Path, pi0: str | None, iterations: int,
                 notify: Notify) -> None:
        from selfpref.eval.sources import fingerprint

        self.opts, self.out, self.pi0, self.iterations, self.notify = opts, out, pi0, iterations, notify
        self.dir = out / "eval"
        self.prompts = opts.check()
        self.prompts_file = self.dir / "prompts.jsonl"
        self.answers_file = self.dir / "answers_pi0.json"
        self.expected = _identity(fingerprint(self.prompts.prompts), opts.judge, opts.judge_model,
                                  opts.judge_base_url, opts.max_new_tokens, opts.temperature,
                                  opts.bootstrap, opts.seed)
        self._judge: Any = None
        self._pool: Any = None
        self.check_finished()

    def check_finished(self) -> None:
        """A finished eval folder made with other settings is refused: nothing is mixed in."""
        for t in range(1, self.iterations + 1):
            path = self.out / f"iter-{t}" / "eval" / "eval.json"
            if not path.is_file():
                continue
            found = folder_identity(json.loads(path.read_text()))
            diff = [f"{k} {found[k]!r} there, {self.expected[k]!r} now" for k in self.expected
                    if found.get(k) != self.expected[k]]
            if diff:
                raise SelfprefError(f"{path.parent} was evaluated with other settings ({'; '.join(diff)}): "
                                    "rerun with the same --eval-* options, or delete "
                                    f"{self.out}/iter-*/eval to evaluate anew")

    def prepare(self) -> None:
        """Write the prompts evaluated (kept beside the evals; rewritten only when they change)."""
        from selfpref.eval.sources import write_prompts

        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / ".prompts.jsonl.tmp"
        write_prompts(self.prompts, tmp)
        if self.prompts_file.is_file() and self.prompts_file.read_bytes() == tmp.read_bytes():
            tmp.unlink()
        else:
            replace_file(tmp, self.prompts_file)

    def _answers_key(self) -> dict[str, Any]:
        from selfpref.models import model_label

        return {"model": model_label(self.pi0), "prompts": self.expected["prompts"],
                "decoding": self.opts.decoding()}

    def pi0_answers(self) -> Path:
        """pi_0's answers, generated on first use and reused by every iteration (and rerun)."""
        from selfpref.eval.run import alpaca_outputs, answer_prompts
        from selfpref.judges import local_judge_backend
        from selfpref.models import model_label
        from selfpref.models.pool import ModelPool

        key_file = self.dir / "answers_pi0.key.json"
        key = self._answers_key()
        if self.answers_file.is_file() and key_file.is_file() and json.loads(key_file.read_text()) == key:
            return self.answers_file
        self._pool = self._pool or ModelPool(batch_size=self.opts.batch_size)
        label = model_label(self.pi0)
        self.notify(f"pi_0 ({label}): answering {len(self.prompts.prompts)} evaluation prompts, "
                    "once for the loop")
        texts = answer_prompts(self._pool, self.pi0, self.prompts.prompts, **self.opts.decoding())
        key_file.unlink(missing_ok=True)  # the key names finished answers only
        write_json_atomic(self.answers_file, alpaca_outputs(self.prompts.prompts, texts, label), indent=2)
        write_json_atomic(key_file, key, indent=2)
        local = local_judge_backend(self.opts.judge, base_url=self.opts.judge_base_url)
        judge_is_pi0 = (local == "transformers" and self._pool.key(local, self.opts.judge_model)
                        == self._pool.key(local, self.pi0))
        if not judge_is_pi0:
            self._pool.drop("transformers", self.pi0)  # keep loaded only what the judge will use
        return self.answers_file

    def release(self) -> None:
        """Free the judge (and any model held for it) before an iteration builds and trains; the
        next evaluation loads it again. Evaluations in a row (a finished loop) share one load."""
        self._judge = self._pool = None

    def _judge_for(self, cfg: Any) -> Any:
        """The judge, built once per run of evaluations (a local judge model is loaded once)."""
        from selfpref.eval.run import build_judge
        from selfpref.models.pool import ModelPool

        if self._judge is None:
            self._pool = self._pool or ModelPool(batch_size=self.opts.batch_size)
            try:
                self._judge = build_judge(cfg, self._pool)
            except SelfprefError as exc:
                raise SelfprefError(_eval_flags(str(exc))) from None
        return self._judge

    def evaluate(self, t: int, row: dict[str, Any]) -> dict[str, Any]:
        """Evaluate pi_t unless done; returns ``row`` with the eval_* keys, and records them in
        the iteration's summary.json and in pi_t's model card."""
        from selfpref.eval.report import consistency_note
        from selfpref.eval.run import run_eval
        from selfpref.trainers.run import record_evaluation

        folder = self.out / f"iter-{t}" / "eval"
        model = Path(row["model"])
        head = f"iteration {t}/{self.iterations}"
        if (folder / "eval.json").is_file():
            self.notify(f"{head}: evaluation finished earlier, skipped")
        else:
            answers = self.pi0_answers()
            cfg = self.opts.eval_config(folder, answers, str(model), self.prompts_file)
            self.notify(f"{head}: evaluate pi_{t} against pi_0 on {len(self.prompts.prompts)} prompts")
            run_eval(cfg, judge=self._judge_for(cfg), notify=self.notify,
                     command=f"selfpref iterate (evaluation of iteration {t})")
        found = figures(folder)
        row = {**{k: v for k, v in row.items() if not k.startswith("eval_")}, **found}
        summary_file = self.out / f"iter-{t}" / "summary.json"
        if not summary_file.is_file() or json.loads(summary_file.read_text()) != row:
            write_json_atomic(summary_file, row, indent=2)
        record_evaluation(model, {
            "baseline": f"pi_0 = {self._answers_key()['model']}", "judge": found["eval_judge"],
            "prompts": self.prompts.id, "n": found["eval_n"],
            "win_rate": found["eval_win_rate"], "lose_rate": found["eval_lose_rate"],
            "tie_rate": found["eval_tie_rate"], "lc_win_rate": found["eval_lc_win_rate"],
            "ci95": found["eval_ci95"], "judge_consistency": found["eval_judge_consistency"],
            "mean_len": found["eval_mean_len_b"], "mean_len_baseline": found["eval_mean_len_a"],
            "folder": str(folder),
            "note": consistency_note(found["eval_judge_consistency"], found["eval_n"],
                                     fix="--eval-judge-model")})
        return row
