"""A fake OpenAI-compatible chat-completions server on 127.0.0.1 for tests (judges, eval, builds).

It records every request (``server.requests``: (Authorization header, JSON body)) and answers by
the requested model's name:

- ``deny``: 401 whose message echoes the key (a client must not repeat it); ``echo``: 400 likewise;
- ``sampler``: a build's answerer and judge. Choice ``i`` of an answer request is
  ``good answer (seed S)`` for i = 0 and ``bad answer, longer (seed S)`` otherwise, S the
  request's seed. A judge prompt (it holds ``[Response A]``) gets ``Response A is better.`` when
  the good answer is shown first and ``Response B is better.`` otherwise;
- any other name: ``echo: <first 12 characters of the last message>`` for every choice.

With ``logprobs``, the first token's top log-probabilities favour the label of the answer that
starts with "good" (0.6 for it, 0.2 for the other, 0.1 for a non-label token). Every answer
carries ``usage`` (words of the last message and of the answers, as token counts).

What a real server here cannot be made to do, set on the server object:

- ``server.samplers``: more model names that answer as ``sampler`` (a served folder's path);
- ``server.max_choices = k``: at most k choices per request, whatever ``n`` asks;
- ``server.scorer = fn(ids) -> [logprob of ids[i] given ids[:i]]`` (a real model's numbers) and
  ``server.prompt_logprobs = "prompt_logprobs" | "echo" | None``: ``/v1/completions`` answers
  token-id prompts with vLLM's ``prompt_logprobs`` or OpenAI's legacy ``echo`` + ``logprobs``
  (None: HTTP 400 for both, as a server without them).

``FaultProxy`` sits in front of any server and answers some requests with a fault instead of
forwarding them (429 with Retry-After, 500, a closed connection, a stall past the client's
timeout), on a fixed schedule.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SECRET = "sk-test-0123456789abcdef"


def work(requests):
    """The (auth, body) requests that are not the client's capability probe."""
    from selfpref.models.endpoint_probe import PROBE_CHAT

    return [(a, b) for a, b in requests if b.get("messages") != PROBE_CHAT]


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _text(self, body: dict, content: str, index: int) -> str:
        if body["model"] != "sampler" and body["model"] not in self.server.samplers:
            return f"echo: {content[:12]}"
        if "[Response A]" in content:
            return "Response A is better." if "[Response A]\ngood" in content else "Response B is better."
        seed = body.get("seed")
        return f"good answer (seed {seed})" if index == 0 else f"bad answer, longer (seed {seed})"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.headers.get("Authorization"), body))
        if self.path.endswith("/completions") and not self.path.endswith("/chat/completions"):
            return self._completion(body)
        if body["model"] == "deny":
            return self._send(401, {"error": {"message": f"Incorrect API key provided: {SECRET}"}})
        if body["model"] == "echo":
            return self._send(400, {"error": {"message": f"bad request for key {SECRET}"}})
        content = body["messages"][-1]["content"]
        choices = []
        n = body.get("n") or 1
        for i in range(min(n, self.server.max_choices or n)):
            choice = {"index": i, "finish_reason": "stop",
                      "message": {"role": "assistant", "content": self._text(body, content, i)}}
            if body.get("logprobs"):
                good_first = "[Response A]\ngood" in content
                top = [{"token": " A" if good_first else " B", "logprob": math.log(0.6), "bytes": None},
                       {"token": "B" if good_first else "A", "logprob": math.log(0.2), "bytes": None},
                       {"token": "The", "logprob": math.log(0.1), "bytes": None}]
                choice["logprobs"] = {"content": [{**top[0], "top_logprobs": top}]}
            choices.append(choice)
        words = sum(len(c["message"]["content"].split()) for c in choices)
        self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": choices, "usage": {"prompt_tokens": len(content.split()),
                                                       "completion_tokens": words,
                                                       "total_tokens": len(content.split()) + words}})

    def _completion(self, body):
        style, ids = self.server.prompt_logprobs, body.get("prompt")
        wants = "prompt_logprobs" if body.get("prompt_logprobs") is not None else \
            "echo" if body.get("echo") else None
        if style is None or wants != style or not isinstance(ids, list):
            return self._send(400, {"error": {"message": f"unsupported: {wants}"}})
        values = self.server.scorer(ids)
        choice = {"index": 0, "text": " x", "finish_reason": "length"}
        if style == "prompt_logprobs":  # vLLM: per position {token id: {logprob, rank, decoded}}
            choice["prompt_logprobs"] = [None] + [{str(t): {"logprob": v, "rank": 1, "decoded_token": ""}}
                                                  for t, v in zip(ids[1:], values[1:])]
        else:  # OpenAI's legacy echo: the prompt's tokens, then the generated one
            choice["logprobs"] = {"tokens": [str(t) for t in ids] + [" x"],
                                  "token_logprobs": [None] + list(values[1:]) + [-1.0]}
        self._send(200, {"id": "c", "object": "text_completion", "model": body["model"],
                         "choices": [choice], "usage": {"prompt_tokens": len(ids), "completion_tokens": 1}})


@contextmanager
def serve(handler: type = _Handler) -> Iterator[tuple[ThreadingHTTPServer, str]]:
    """(server, its /v1 URL) while the block runs; ``handler`` a subclass of the fake's."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests, server.max_choices, server.scorer, server.prompt_logprobs = [], None, None, None
    server.samplers = set()  # more model names that answer as ``sampler``
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


# --- a fault-injecting proxy --------------------------------------------------------------

FAULTS = ("429", "500", "close", "stall")


class FaultProxy:
    """127.0.0.1 proxy to ``upstream`` (a server's root URL, no /v1): request k (counted from 0,
    retries included) gets ``schedule(k)`` -- None forwards it, else one of FAULTS. ``stall``
    holds the connection ``stall`` seconds, then closes it unanswered. ``down=True``: every
    request gets a closed connection (an endpoint that stays down)."""

    def __init__(self, upstream: str, schedule, *, stall: float = 2.0, retry_after: str = "1") -> None:
        self.upstream, self.schedule, self.stall, self.retry_after = upstream, schedule, stall, retry_after
        self.down, self.count, self.faults, self.forwarded = False, 0, {}, 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self._forward(None)

            def do_POST(self):
                self._forward(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def _forward(self, data):
                with proxy._lock:
                    index, proxy.count = proxy.count, proxy.count + 1
                    fault = "close" if proxy.down else (proxy.schedule(index) if data is not None else None)
                    if fault:
                        proxy.faults[fault] = proxy.faults.get(fault, 0) + 1
                if fault == "stall":
                    time.sleep(proxy.stall)
                if fault in ("close", "stall"):
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault in ("429", "500"):
                    body = json.dumps({"error": {"message": f"injected {fault}"}}).encode()
                    self.send_response(int(fault))
                    if fault == "429":
                        self.send_header("Retry-After", proxy.retry_after)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                request = urllib.request.Request(proxy.upstream + self.path, data=data,
                                                 method="POST" if data is not None else "GET",
                                                 headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(request, timeout=600) as response:
                        status, payload = response.status, response.read()
                except urllib.error.HTTPError as exc:
                    status, payload = exc.code, exc.read()
                with proxy._lock:
                    proxy.forwarded += 1
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FaultProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def every_fourth(index: int) -> str | None:
    """A fault on every fourth request (a quarter of them), cycling 429, 500, close, stall."""
    return FAULTS[(index // 4) % len(FAULTS)] if index % 4 == 1 else None


# --- a real server: transformers serve ------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def transformers_serve(model: str, *, log: str, ready_timeout: float = 180.0) -> Iterator[str]:
    """``transformers serve MODEL`` on a free 127.0.0.1 port; yields its /v1 URL once /health
    answers. Its output goes to ``log``; a server that dies or never gets ready fails with the
    log's tail in the message. Stopped (terminate, then kill) when the block ends."""
    port = free_port()
    command = [sys.executable, "-c", "import sys; from transformers.cli.transformers import main; "
               "sys.argv[0] = 'transformers'; sys.exit(main())", "serve", str(model),
               "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--log-level", "warning"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)

    def tail() -> str:
        return Path(log).read_text(errors="replace")[-3000:]

    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {process.returncode}:\n{tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"transformers serve not ready after {ready_timeout:.0f} s:\n{tail()}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
