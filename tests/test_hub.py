"""Push and load over real HTTP: the real huggingface_hub and datasets clients against a small
Hub-protocol server on 127.0.0.1 (tests/hub_server.py says what it does not cover).

The clients read their endpoint at import time, so every client runs in a subprocess whose
environment points at the server; this test process only runs the server.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from selfpref.data.schema import make_row
from selfpref.data.store import BuildRecord, write_dataset
from selfpref.datacards import card_writer
from tests.hub_server import start_server

FAKE_TOKEN = "hf_selfpreftestFAKEtoken0123456789"


@pytest.fixture
def hub(tmp_path):
    server, state, url = start_server()
    env = {**os.environ, "HF_ENDPOINT": url, "HF_HUB_OFFLINE": "0", "HF_TOKEN": FAKE_TOKEN,
           "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(tmp_path / "hf-home"),
           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_DATASETS_CACHE": str(tmp_path / "ds-cache")}
    yield state, env
    server.shutdown()


def _run(env, *args, check=True):
    proc = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _folder(path: Path, n: int, version: str, tag: str) -> BuildRecord:
    rows = [make_row(f"{tag} question {i}?", f"A careful answer {i} about {tag}.", f"meh {i}",
                     method="sao", generator="g", labeler="self-judge:g", confidence=0.75,
                     judge_consistent=True) for i in range(n)]
    return write_dataset(rows, path, BuildRecord(name="ds", method="sao", version=version),
                         card=card_writer(license="mit"))


LOAD = """
import json, sys
from selfpref.data.refs import read_dataset
df, rec = read_dataset(sys.argv[1])
print(json.dumps({"rows": df.to_dicts(), "version": rec.version, "fingerprint": rec.fingerprint}))
"""


def test_push_load_versions_over_http(hub, tmp_path, tiny_model_path):
    state, env = hub
    first = _folder(tmp_path / "v1", 6, "0.1.0", "first")
    out = _run(env, "-m", "selfpref.cli", "push", str(tmp_path / "v1"), "org/ds")
    assert "org/ds@v0.1.0" in out.stdout
    routes = {f"{m} {p}" for m, p in state.log}
    assert any("/preupload/" in r for r in routes) and any("/commit/" in r for r in routes)
    assert any(r.endswith(".git/info/lfs/objects/batch") for r in routes)
    assert any(r.startswith("PUT /lfs-upload/") for r in routes)
    assert FAKE_TOKEN in state.auth  # the client authenticated with it...

    loaded = json.loads(_run(env, "-c", LOAD, "org/ds@v0.1.0").stdout)
    import polars as pl

    local = pl.read_parquet(tmp_path / "v1" / "data").to_dicts()
    assert loaded["rows"] == local and loaded["fingerprint"] == first.fingerprint

    second = _folder(tmp_path / "v2", 4, "0.2.0", "second")
    _run(env, "-m", "selfpref.cli", "push", str(tmp_path / "v2"), "org/ds")
    again = json.loads(_run(env, "-c", LOAD, "org/ds@v0.1.0").stdout)
    assert again["rows"] == local  # the first tag is unchanged
    latest = json.loads(_run(env, "-c", LOAD, "org/ds").stdout)
    assert latest["version"] == "0.2.0" and latest["fingerprint"] == second.fingerprint

    card = _run(env, "-c", "import sys; from huggingface_hub import hf_hub_download; "
                "print(open(hf_hub_download('org/ds', 'README.md', repo_type='dataset', "
                "revision='v0.1.0')).read(), end='')").stdout
    assert card == (tmp_path / "v1" / "README.md").read_text()

    inspect = json.loads(_run(env, "-m", "selfpref.cli", "inspect", "org/ds@v0.1.0", "--json").stdout)
    assert inspect["rows"] == 6 and inspect["version"] == "0.1.0"

    ds = _run(env, "-c", "from datasets import load_dataset; import json; "
              "d = load_dataset('org/ds', revision='v0.1.0', split='train'); "
              "print(json.dumps(list(d['prompt'])))").stdout
    assert json.loads(ds.strip().splitlines()[-1]) == [r["prompt"] for r in local]

    _run(env, "-m", "selfpref.cli", "train", "dpo", "--dataset", "org/ds@v0.1.0", "--model",
         str(tiny_model_path), "--output-dir", str(tmp_path / "model"), "--max-steps", "1")
    trained = json.loads((tmp_path / "model" / "selfpref_train.json").read_text())
    assert trained["dataset"]["id"] == "org/ds@v0.1.0"
    assert trained["dataset"]["fingerprint"] == first.fingerprint

    # ...and it is nowhere in what was written or printed
    for root in (tmp_path,):
        for path in root.rglob("*"):
            if path.is_file() and path.stat().st_size < 50_000_000:
                assert FAKE_TOKEN.encode() not in path.read_bytes(), path


def test_errors_are_one_line(hub, tmp_path):
    state, env = hub
    missing = _run(env, "-m", "selfpref.cli", "inspect", "org/nothing@v1.0.0", check=False)
    assert missing.returncode == 2 and "not found" in missing.stderr and "Traceback" not in missing.stderr
    _folder(tmp_path / "v1", 5, "0.1.0", "x")
    _run(env, "-m", "selfpref.cli", "push", str(tmp_path / "v1"), "org/ds")
    bad_rev = _run(env, "-c", LOAD, "org/ds@v9.9.9", check=False)
    assert "has no revision 'v9.9.9'" in bad_rev.stderr


def test_failed_push_leaves_local_folder_intact(hub, tmp_path):
    state, env = hub
    _folder(tmp_path / "v1", 5, "0.1.0", "x")
    before = {p: p.read_bytes() for p in (tmp_path / "v1").rglob("*") if p.is_file()}
    state.fail_commits = True
    proc = _run(env, "-m", "selfpref.cli", "push", str(tmp_path / "v1"), "org/ds", check=False)
    assert proc.returncode == 2 and "push to org/ds failed" in proc.stderr
    assert FAKE_TOKEN not in proc.stderr + proc.stdout
    assert {p: p.read_bytes() for p in (tmp_path / "v1").rglob("*") if p.is_file()} == before


# --- a push is all or nothing: refused before any change, or the repo as it was ----------------

def _refs(state, repo="org/ds"):
    r = state.repos.get(repo)
    return None if r is None else (dict(r.branches), dict(r.tags), len(r.commits), r.private)


def _push(env, *args):
    return _run(env, "-m", "selfpref.cli", "push", *args, check=False)


def _one_line_error(proc):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_existing_version_is_refused_before_any_commit(hub, tmp_path):
    state, env = hub
    _folder(tmp_path / "v1", 5, "0.1.0", "x")
    assert _push(env, str(tmp_path / "v1"), "org/ds").returncode == 0
    before, commits = _refs(state), [r for r in state.log if "/commit/" in r[1]]
    _folder(tmp_path / "other", 3, "0.1.0", "different rows, same version")
    line = _one_line_error(_push(env, str(tmp_path / "other"), "org/ds"))
    assert "org/ds@v0.1.0 already exists" in line
    assert _refs(state) == before
    assert [r for r in state.log if "/commit/" in r[1]] == commits  # no commit was even tried


def test_connection_killed_mid_upload_leaves_the_repo_as_it_was(hub, tmp_path):
    state, env = hub
    _folder(tmp_path / "v1", 5, "0.1.0", "x")
    assert _push(env, str(tmp_path / "v1"), "org/ds").returncode == 0
    before = _refs(state)
    _folder(tmp_path / "v2", 4, "0.2.0", "y")
    state.drop_commits = True
    line = _one_line_error(_push(env, str(tmp_path / "v2"), "org/ds"))
    assert "push to org/ds failed before anything changed" in line
    assert _refs(state) == before
    state.drop_commits = False  # the network is back: the same push now goes through
    assert _push(env, str(tmp_path / "v2"), "org/ds").returncode == 0
    branches, tags, _, _ = _refs(state)
    assert set(tags) == {"v0.1.0", "v0.2.0"} and tags["v0.2.0"] == branches["main"]


def test_failed_first_push_leaves_no_repo(hub, tmp_path):
    state, env = hub
    _folder(tmp_path / "v1", 5, "0.1.0", "x")
    state.drop_commits = True
    _one_line_error(_push(env, str(tmp_path / "v1"), "org/new"))
    assert "org/new" not in state.repos  # the repo this push created is gone again


def test_tag_failure_is_one_line_and_a_rerun_only_tags(hub, tmp_path):
    state, env = hub
    _folder(tmp_path / "v1", 5, "0.1.0", "x")
    state.fail_tags = 10
    line = _one_line_error(_push(env, str(tmp_path / "v1"), "org/ds"))
    assert "committed to main" in line and "rerun the same `selfpref push`" in line
    branches, tags, commits, _ = _refs(state)
    assert tags == {}
    state.fail_tags = 0
    assert _push(env, str(tmp_path / "v1"), "org/ds").returncode == 0
    branches2, tags2, commits2, _ = _refs(state)
    assert branches2 == branches and commits2 == commits  # nothing uploaded twice
    assert tags2 == {"v0.1.0": branches["main"]}


def test_private_push_to_an_existing_public_repo_is_refused(hub, tmp_path):
    state, env = hub
    _folder(tmp_path / "v1", 5, "0.1.0", "x")
    assert _push(env, str(tmp_path / "v1"), "org/ds").returncode == 0
    before = _refs(state)
    _folder(tmp_path / "v2", 4, "0.2.0", "y")
    line = _one_line_error(_push(env, str(tmp_path / "v2"), "org/ds", "--private"))
    assert "--private" in line and "public" in line
    assert _refs(state) == before
    assert _push(env, str(tmp_path / "v2"), "org/fresh", "--private").returncode == 0
    assert state.repos["org/fresh"].private


def test_push_without_a_token_is_one_line(hub, tmp_path):
    state, env = hub
    _folder(tmp_path / "v1", 5, "0.1.0", "x")
    env = {k: v for k, v in env.items() if k != "HF_TOKEN"}
    line = _one_line_error(_push(env, str(tmp_path / "v1"), "org/ds"))
    assert "no Hugging Face token" in line and state.repos == {}
