"""A build killed with SIGKILL midway finishes on rerun with no lost and no doubled rows."""

import os
import signal
import subprocess
import sys
import time

import polars as pl
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
