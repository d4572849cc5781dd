"""No request paid twice, on a real HTTP server (the fake of tests/openai_server.py, counting).

A build killed mid-chunk re-sends only the requests whose responses it had not cached; a rebuild
that changes only the judge sends only the judge's requests; the cache files hold no key.
"""

import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager

import polars as pl

from selfpref.data.refs import read_dataset
from selfpref.models.request_cache import REQUESTS_FILE, read_jsonl_index, request_key
from tests.openai_server import SECRET, _Handler, serve, work

CANARY = SECRET  # the key the build reads from the environment; it must appear in no cache file
PROMPTS = 6  # one chunk: 6 answer requests (n=2), then 12 judge requests (both orders)


class _KillingHandler(_Handler):
    """The fake server, which SIGKILLs the build when its ``kill_at``-th request arrives (that
    request is recorded and never answered)."""

    def do_POST(self):
        import io
        import json

        from selfpref.models.endpoint_probe import PROBE_CHAT

        server = self.server
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        self.rfile = io.BytesIO(raw)  # the fake reads the body again
        probe = json.loads(raw).get("messages") == PROBE_CHAT  # the client's capability probe
        with server.lock:
            server.seen += 0 if probe else 1
            kill = server.kill_at and not probe and server.seen >= server.kill_at
        if not kill:
            return super().do_POST()
        if server.child:
            os.kill(server.child, signal.SIGKILL)
        self.close_connection = True


@contextmanager
def _serve(kill_at=0):
    with serve(_KillingHandler) as (server, url):
        server.lock, server.seen, server.kill_at, server.child = threading.Lock(), 0, kill_at, None
        yield server, url


def _config(tmp_path, url, **extra):
    prompts = tmp_path / "prompts.jsonl"
    pl.DataFrame({"prompt": [f"Question {i}?" for i in range(PROMPTS)]}).write_ndjson(prompts)
    return dict(method="sao", backend="openai", base_url=url, model="sampler",
                api_key_env="SELFPREF_CANARY_KEY", prompts=str(prompts), num_prompts=PROMPTS, **extra)


def _keys(url, server):
    return [request_key(f"{url}/chat/completions", body) for _, body in work(server.requests)]


def _no_secret_in(folder):
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        assert CANARY.encode() not in data and b"Bearer" not in data and b"uthorization" not in data, path


def test_killed_mid_chunk_resends_only_uncached_requests(tmp_path, monkeypatch):
    from selfpref.pipelines.config import BuildConfig
    from selfpref.pipelines.run import build

    monkeypatch.setenv("SELFPREF_CANARY_KEY", CANARY)
    with _serve() as (server, url):  # the uninterrupted build, no cache: what a build sends
        build(BuildConfig(**_config(tmp_path, url, no_cache=True)), tmp_path / "reference")
        bodies = [body for _, body in work(server.requests)]
    assert len(bodies) == len({request_key(f"{url}/chat/completions", b) for b in bodies}) == 3 * PROMPTS
    assert not (tmp_path / ".selfpref-cache").exists()  # --no-cache writes nothing either
    expected, _ = read_dataset(tmp_path / "reference")

    out, kill_at = tmp_path / "out", PROMPTS + 5  # killed at the 5th judge request, mid-chunk
    with _serve(kill_at) as (server, url):
        config = _config(tmp_path, url)
        code = ("from selfpref.pipelines.run import build; from selfpref.pipelines.config import "
                f"BuildConfig; build(BuildConfig(**{config!r}), {str(out)!r})")
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True,
                                 env={**os.environ, "SELFPREF_CANARY_KEY": CANARY})
        server.child = child.pid
        every = {request_key(f"{url}/chat/completions", b) for b in bodies}  # the same requests to this server
        log = child.communicate(timeout=300)[0]
        assert child.returncode == -signal.SIGKILL, log[-2000:]
        assert not list(tmp_path.glob(".out.parts/*/part-*.json"))  # the chunk was not finished
        cache = tmp_path / ".selfpref-cache"
        cached, torn = read_jsonl_index(cache / REQUESTS_FILE)
        assert PROMPTS <= len(cached) < 3 * PROMPTS and torn <= 1
        assert set(cached) <= every  # the cache is keyed by the very requests the server saw
        _no_secret_in(cache)

        server.requests.clear()
        server.kill_at = 0
        record = build(BuildConfig(**config), out)
        resent = _keys(url, server)
    assert not set(resent) & set(cached)  # 0 cached requests re-sent
    assert len(resent) == len(set(resent)) == 3 * PROMPTS - len(cached)  # each missing one, once
    judged = len(cached) - PROMPTS  # judge responses that arrived before the kill
    assert record.stats["requests"] == {"answer_pair": {"sent": 0, "cached": PROMPTS},
                                        "self_judge": {"sent": 2 * PROMPTS - judged, "cached": judged}}
    df, _ = read_dataset(out)
    assert df.equals(expected)
    _no_secret_in(tmp_path / ".selfpref-cache")


def test_changing_only_the_judge_sends_only_the_judge_requests(tmp_path, monkeypatch):
    from selfpref.pipelines.config import BuildConfig
    from selfpref.pipelines.run import build

    monkeypatch.setenv("SELFPREF_CANARY_KEY", CANARY)
    with _serve() as (server, url):
        build(BuildConfig(**_config(tmp_path, url)), tmp_path / "text")
        assert len(work(server.requests)) == 3 * PROMPTS
        server.requests.clear()
        record = build(BuildConfig(**_config(tmp_path, url, judge="logits")), tmp_path / "logits")
        bodies = [body for _, body in work(server.requests)]
        assert len(bodies) == 2 * PROMPTS  # both orders of each pair, and no answer request
        assert all(b["logprobs"] and b.get("max_tokens", b.get("max_completion_tokens")) == 1 for b in bodies)
        assert record.stats["requests"] == {"answer_pair": {"sent": 0, "cached": PROMPTS},
                                            "self_judge": {"sent": 2 * PROMPTS, "cached": 0}}
        # another server with a model of the same name: nothing comes from this cache
        with _serve() as (other, other_url):
            build(BuildConfig(**_config(tmp_path, other_url, judge="logits")), tmp_path / "other")
            assert len(work(other.requests)) == 3 * PROMPTS
    df, _ = read_dataset(tmp_path / "logits")
    assert df.height == PROMPTS and all(c.startswith("good answer") for c in df["chosen"])


def test_eval_with_an_endpoint_judge_does_not_pay_twice(tmp_path, monkeypatch):
    from selfpref.eval.run import EvalConfig, run_eval

    monkeypatch.setenv("SELFPREF_CANARY_KEY", CANARY)
    questions = [f"Question {i}?" for i in range(3)]
    for side, word in (("a", "good"), ("b", "bad")):
        pl.DataFrame({"prompt": questions, "answer": [f"{word} answer {i}" for i in range(3)]}
                     ).write_ndjson(tmp_path / f"{side}.jsonl")
    with _serve() as (server, url):
        def evaluate(out, **extra):
            server.requests.clear()
            summary = run_eval(EvalConfig(output=str(tmp_path / out), answers_a=str(tmp_path / "a.jsonl"),
                                          answers_b=str(tmp_path / "b.jsonl"), judge="text",
                                          judge_model="sampler", judge_base_url=url, bootstrap=0,
                                          judge_api_key_env="SELFPREF_CANARY_KEY", **extra))
            return summary, len(work(server.requests))

        first, sent = evaluate("first")
        again, resent = evaluate("again")
        _, uncached = evaluate("uncached", no_cache=True)
    assert (sent, resent, uncached) == (6, 0, 6)  # both orders of 3 pairs; then none; then all
    assert first["win_rate"] == again["win_rate"] == 100.0
    _no_secret_in(tmp_path / ".selfpref-cache")
