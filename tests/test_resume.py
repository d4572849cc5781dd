"""A build killed with SIGKILL midway finishes on rerun with no lost and no doubled rows."""

import os
import signal
import subprocess
import sys
import time

import polars as pl
import pytest
import yaml

from selfpref.data.refs import read_dataset


def test_kill_and_resume(tmp_path):
    prompts = [f"Question {i}?" for i in range(5)]
    pl.DataFrame({"prompt": prompts}).write_ndjson(tmp_path / "prompts.jsonl")
    (tmp_path / "script.yaml").write_text(yaml.safe_dump(
        {"answer_pair": ["first answer", "second answer"], "self_judge": ["A", "B"], "delay": 0.5}))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "selfpref.cli", "build", "sao", "--backend", "scripted",
           "--script", str(tmp_path / "script.yaml"), "--prompts", str(tmp_path / "prompts.jsonl"),
           "--chunk-size", "1", "--output", str(out)]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    parts_root = tmp_path / ".out.parts"
    deadline = time.time() + 240
    while time.time() < deadline:
        parts = list(parts_root.glob("*/part-*.json"))
        if len(parts) >= 2:
            break
        assert proc.poll() is None, "the build ended before it could be killed"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in parts_root.glob("*/part-*.json")}
    assert 2 <= len(finished) < 5 and not out.exists()

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"resuming: {len(finished)} of 5 chunks already finished" in rerun.stdout
    df, record = read_dataset(out)
    assert df["prompt"].to_list() == prompts  # ordered union: nothing lost, nothing doubled
    assert record.funnel[0]["input"] == 5 and record.funnel[0]["kept"] == 5
    assert not parts_root.exists()  # parts are removed once the folder is whole


RESUME_TEXTS = {"answer_pair": ["first answer", "second, longer answer", "third", "fourth answer here"],
                "self_judge": ["A", "B", "B"]}


@pytest.mark.parametrize("kill", [{"chunk": 2, "step": "start"},        # between chunks 1 and 2
                                  {"chunk": 3, "step": "self_judge"}],   # inside chunk 3
                         ids=["between-chunks", "inside-a-chunk"])
def test_sigkill_between_or_inside_chunks_gives_the_uninterrupted_dataset(tmp_path, kill):
    """Four chunks of a sao build; the process SIGKILLs itself at a chosen point (the scripted
    model does it, so the point is exact: as chunk 2 starts, right after chunk 1's part, or in
    chunk 3 after its answers, at the judge); the rerun equals an uninterrupted run."""
    from selfpref.pipelines.config import BuildConfig
    from selfpref.pipelines.run import build

    script = tmp_path / "script.yaml"
    script.write_text(yaml.safe_dump(RESUME_TEXTS))
    prompts = tmp_path / "prompts.jsonl"
    pl.DataFrame({"prompt": [f"Question {i}?" for i in range(7)]}).write_ndjson(prompts)
    config = dict(method="sao", backend="scripted", script=str(script), prompts=str(prompts),
                  num_prompts=7, chunk_size=2)
    # no cache: the killed run must call its models (and be killed), not read the reference's rows
    build(BuildConfig(**config, no_cache=True), tmp_path / "reference")
    expected, _ = read_dataset(tmp_path / "reference")

    script.write_text(yaml.safe_dump({**RESUME_TEXTS, "kill": kill}))
    out = tmp_path / "out"
    code = ("from selfpref.pipelines.run import build; from selfpref.pipelines.config import BuildConfig; "
            f"build(BuildConfig(**{config!r}), {str(out)!r})")
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    parts = sorted(p.name for p in (tmp_path / ".out.parts").glob("*/part-*.json"))
    assert parts == [f"part-{i:05d}.json" for i in range(kill["chunk"] - 1)]
    assert not out.exists()

    script.write_text(yaml.safe_dump(RESUME_TEXTS))
    notes = []
    build(BuildConfig(**config), out, notify=notes.append)
    assert notes == [f"resuming: {kill['chunk'] - 1} of 4 chunks already finished"]
    df, record = read_dataset(out)
    assert df.height == expected.height == 7  # no row lost, none doubled
    assert df.drop("prompt_id").equals(expected.drop("prompt_id")) and df.equals(expected)
    assert record.funnel[0]["input"] == 7
