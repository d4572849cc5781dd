"""The build engine: models loaded once, errors that surface, progress, no import side effects,
every method from its name alone, rows that do not depend on the chunk size."""

import json
import subprocess
import sys
import textwrap

import pytest
import yaml

from selfpref.data.refs import read_dataset
from selfpref.pipelines.config import BuildConfig
from selfpref.pipelines.run import build
from tests.build_files import prompts_file as _prompts
from tests.build_files import script_file as _script


def _run(code, tmp_path, timeout=300):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, cwd=tmp_path)


# Third-party libraries selfpref imports at module level, imported before the snapshot: what
# their own imports do (torch sets TORCHINDUCTOR_CACHE_DIR, accelerate adds a warning filter) is
# theirs. distilabel.pipeline is left out on purpose: it fixes the start method when imported,
# and selfpref, which imports it, must undo that.
THIRD_PARTY = ["numpy", "polars", "pyarrow", "pyarrow.parquet", "torch", "transformers", "trl",
               "trl.experimental.cpo", "accelerate", "datasets", "datasketch", "huggingface_hub",
               "typer", "rich", "pydantic", "yaml", "distilabel.steps", "distilabel.steps.tasks",
               "distilabel.models.llms"]

SIDE_EFFECTS = """
import importlib, logging, multiprocessing, os, pkgutil, sys, warnings, json
for lib in {third_party!r}:
    importlib.import_module(lib)

def state():
    loggers = {{"": (logging.root.level, len(logging.root.handlers))}}
    for name, lg in list(logging.root.manager.loggerDict.items()):
        if isinstance(lg, logging.Logger):
            loggers[name] = (lg.level, len(lg.handlers), lg.propagate, lg.disabled)
    return {{"start method": multiprocessing.get_start_method(allow_none=True),
            "environment": dict(os.environ), "loggers": loggers,
            "logging.disable": logging.root.manager.disable,
            "warning filters": [repr(f) for f in warnings.filters]}}

def changes(before, after):
    out = {{}}
    for key in before:
        a, b = before[key], after[key]
        if isinstance(a, dict):  # loggers new since the snapshot are the modules' own, not changes
            diff = sorted(k for k in set(a) | set(b)
                          if (k in a or key == "environment") and a.get(k) != b.get(k))
        elif isinstance(a, list):
            diff = [x for x in b if x not in a]
        else:
            diff = [] if a == b else [(a, b)]
        if diff:
            out[key] = diff
    return out

before = state()
import selfpref
names = sorted(m.name for m in pkgutil.walk_packages(selfpref.__path__, "selfpref.")
               if not m.name.endswith("__main__"))
for name in names:
    importlib.import_module(name)
after_import = state()
{after}
print(json.dumps({{"modules": names, "import": changes(before, after_import), "build": changes(before, state())}}))
"""


def test_importing_selfpref_changes_no_process_state(tmp_path):
    """Every selfpref module, imported in a fresh process: start method, environment, logging and
    warning filters stay as they were; then a (scripted) build changes none of them either."""
    script = _script(tmp_path, describe_characteristics=["kind", "rude"], conditioned_answers=["Good.", "Bad."])
    prompts = _prompts(tmp_path, ["q1?", "q2?"])
    after = (f"from selfpref.pipelines.run import build; from selfpref.pipelines.config import BuildConfig\n"
             f"build(BuildConfig(method='alignez', backend='scripted', script={script!r}, "
             f"prompts={prompts!r}), {str(tmp_path / 'out')!r})")
    proc = _run(SIDE_EFFECTS.format(third_party=THIRD_PARTY, after=after), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"selfpref.pipelines.run", "selfpref.loop.iterate", "selfpref.pipelines.engine",
            "selfpref.pipelines.ray_runner", "selfpref.cli.build"} <= set(result["modules"])
    assert result["import"] == {}
    assert result["build"] == {}


def test_a_step_that_raises_fails_the_build_and_keeps_finished_parts(tmp_path):
    """The issue's case: an alignez build whose answer LLM raises. Before, the build ended with
    "the build kept no pair (empty_answer: 3)"; now it names step, chunk and error."""
    script = tmp_path / "script.yaml"
    texts = {"describe_characteristics": ["be kind", "be rude"],
             "conditioned_answers": ["Good.", "Bad."]}
    script.write_text(yaml.safe_dump({**texts, "raise": {"conditioned_answers": {
        "message": "boom: the backend fell over\nsecond line", "chunk": 2}}}))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "selfpref.cli", "build", "alignez", "--backend", "scripted",
           "--script", str(script), "--prompts", _prompts(tmp_path, ["q1?", "q2?", "q3?"]),
           "--chunk-size", "1", "--output", str(out)]
    failed = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert failed.returncode != 0
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, failed.stderr[-2000:]
    assert ("step conditioned_answers failed in chunk 2 of 3: RuntimeError: boom: the backend fell "
            "over; finished chunks are kept") in errors[0]
    assert "Traceback" not in failed.stderr
    parts = next((tmp_path / ".out.parts").iterdir())
    assert sorted(p.name for p in parts.glob("part-*.json")) == ["part-00000.json"]
    log = errors[0].split("traceback: ")[1].rstrip(")")
    assert "RuntimeError: boom" in open(log).read() and "Traceback" in open(log).read()
    assert not out.exists()

    script.write_text(yaml.safe_dump(texts))  # the backend is back
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resuming: 1 of 3 chunks already finished" in rerun.stdout
    assert "build alignez: chunk 3/3 · characteristics 3/3 · answers 3/3" in rerun.stdout
    df, record = read_dataset(out)
    assert df["prompt"].to_list() == ["q1?", "q2?", "q3?"] and record.funnel[0]["dropped"] == {}


def test_debug_prints_the_traceback(tmp_path):
    script = _script(tmp_path, describe_characteristics=["a", "b"], **{"raise": {"conditioned_answers": "boom"}})
    cmd = [sys.executable, "-m", "selfpref.cli", "build", "alignez", "--backend", "scripted",
           "--script", script, "--prompts", _prompts(tmp_path, ["q?"]), "--output", str(tmp_path / "o")]
    import os

    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SELFPREF_DEBUG": "1"})
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "RuntimeError: boom" in proc.stderr


def test_an_exception_in_the_selfee_scorer_is_not_a_drop(tmp_path, tiny_model_path, monkeypatch):
    from selfpref.models.local import LocalModel
    from selfpref.pipelines.engine import BuildStepError

    def broken(self, prompts, answers):
        raise RuntimeError("scorer crashed")

    monkeypatch.setattr(LocalModel, "answer_logps", broken)
    script = _script(tmp_path, answer_pair=["Short.", "A longer answer."])
    with pytest.raises(BuildStepError) as info:
        build(BuildConfig(method="selfee", backend="scripted", script=script, model=str(tiny_model_path),
                          prompts=_prompts(tmp_path, ["q1", "q2"])), tmp_path / "out")
    message = str(info.value)
    assert "step implicit_reward failed in chunk 1 of 1: RuntimeError: scorer crashed" in message
    assert "kept no pair" not in message and "empty_answer" not in message


def test_sao_loads_its_model_once_for_every_step_and_chunk(tmp_path, tiny_model_path, monkeypatch):
    import selfpref.models.load as load
    from selfpref.models.local import LocalModel

    loads, real = [], load.load_causal_lm
    monkeypatch.setattr(load, "load_causal_lm", lambda ref, *a, **k: loads.append(ref) or real(ref, *a, **k))
    calls, generate = [], LocalModel.generate
    monkeypatch.setattr(LocalModel, "generate", lambda self, chats, **k: calls.append(len(chats)) or generate(self, chats, **k))
    states = []
    build(BuildConfig(method="sao", model=str(tiny_model_path), judge_mode="logits", num_prompts=4,
                      chunk_size=1, batch_size=2, max_new_tokens=6, prompt_max_new_tokens=6,
                      truncated_prompts="keep"),  # a random model never ends a prompt itself
          tmp_path / "out", progress=lambda s: states.append((s.chunks_done, dict(s.done))))
    assert loads == [str(tiny_model_path)]  # persona, prompt, answers, judge; 4 chunks: one load
    # chunks of 1 run two at a time, so batches stay full: 2 chats per call, never 1
    assert calls and all(n == 2 for n in calls[:2])
    steps = ["write_persona", "write_prompt", "answer_pair", "self_judge"]
    assert states[0] == (0, dict.fromkeys(steps, 0))
    assert (0, {"write_persona": 2, "write_prompt": 0, "answer_pair": 0, "self_judge": 0}) in states
    assert (2, dict.fromkeys(steps, 2)) in states
    assert states[-1] == (4, dict.fromkeys(steps, 4))


def test_selfee_with_a_reference_loads_two_models(tmp_path, tiny_model_path, monkeypatch):
    import shutil

    from safetensors.torch import load_file, save_file

    import selfpref.models.load as load

    shutil.copytree(tiny_model_path, tmp_path / "ref")
    weights = load_file(str(tmp_path / "ref" / "model.safetensors"))  # a reference that differs
    save_file({k: v * 1.5 if "mlp" in k else v for k, v in weights.items()},
              str(tmp_path / "ref" / "model.safetensors"), metadata={"format": "pt"})
    loads, real = [], load.load_causal_lm
    monkeypatch.setattr(load, "load_causal_lm", lambda ref, *a, **k: loads.append(ref) or real(ref, *a, **k))
    build(BuildConfig(method="selfee", model=str(tiny_model_path), reference_model=str(tmp_path / "ref"),
                      prompts=_prompts(tmp_path, ["q1", "q2", "q3"]), chunk_size=1, max_new_tokens=6),
          tmp_path / "out")
    assert sorted(loads) == sorted([str(tiny_model_path), str(tmp_path / "ref")])


def test_rows_do_not_depend_on_chunk_or_batch_size(tmp_path, tiny_model_path):
    """Every sampled answer is seeded from its own conversation: chunks of 1 at batch 2 and one chunk
    of 5 at batch 4 make the same dataset."""
    prompts = _prompts(tmp_path, [f"Question {i}?" for i in range(5)])
    frames = []
    for chunk, batch in ((1, 2), (5, 4)):  # chunks of 1 run two at a time; one chunk of 5
        out = tmp_path / f"out-{chunk}"
        build(BuildConfig(method="alignez", model=str(tiny_model_path), prompts=prompts, seed=3,
                          chunk_size=chunk, batch_size=batch, max_new_tokens=8,
                          prompt_max_new_tokens=8), out)
        frames.append(read_dataset(out)[0].select("prompt", "chosen", "rejected", "characteristics_chosen"))
    assert frames[0].height == 5
    assert frames[0].equals(frames[1])


@pytest.mark.parametrize("method", ["sao", "sso", "alignez", "selfee"])
def test_every_method_writes_its_own_prompts_and_counts_the_prompt_stage_drops(method, tmp_path,
                                                                               tiny_model_path):
    """`build METHOD --output OUT`: no prompt set, so the persona -> prompt stage writes them, and
    each method's assemble counts the rows that stage could not use (an empty persona, a refusal)
    with their reasons: for every method, not only the one an earlier test ran (alignez)."""
    script = _script(tmp_path, write_persona=["A beekeeper.", "", "A chef."],
                     write_prompt=["How do I calm bees?", "I'm sorry, I can't do that."],
                     answer_pair=["Short.", "A much longer answer."], self_judge=["A", "A"],
                     allocate_features=["Accuracy,Helpfulness"],
                     principled_answers=["good", "bad", "plain"],
                     describe_characteristics=["be kind", "be rude"],
                     conditioned_answers=["Kind.", "Rude."])
    model = str(tiny_model_path) if method == "selfee" else None  # selfee scores with weights
    build(BuildConfig(method=method, backend="scripted", script=script, num_prompts=3, model=model,
                      **({"judge": "length"} if method == "sao" else {})), tmp_path / "out")
    df, record = read_dataset(tmp_path / "out")
    assert df["prompt"].to_list() == ["How do I calm bees?"]
    assert record.funnel[0]["dropped"] == {"empty_persona": 1, "refusal": 1}
    assert record.funnel[0]["input"] == 3 and record.funnel[0]["kept"] == 1
    assert record.parameters["prompt_source"].startswith("self-written: personas from 32 domains")
    assert record.funnel[0]["parameters"]["inputs_from"] == "domain"


def test_the_build_record_names_a_prompt_file(tmp_path):
    script = _script(tmp_path, describe_characteristics=["be kind", "be rude"], conditioned_answers=["Kind.", "Rude."])
    prompts = _prompts(tmp_path, ["q?"])
    build(BuildConfig(method="alignez", backend="scripted", script=script, prompts=prompts), tmp_path / "out")
    _, record = read_dataset(tmp_path / "out")
    assert record.parameters["prompt_source"] == f"file {prompts}"
    assert record.stats["prompt_source"] == f"file {prompts}"
