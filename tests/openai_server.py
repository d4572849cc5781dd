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
starts with "good" (0.6 for it, 0.2 for the other, 0.1 for a non-label token).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = "sk-test-0123456789abcdef"


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
        if body["model"] != "sampler":
            return f"echo: {content[:12]}"
        if "[Response A]" in content:
            return "Response A is better." if "[Response A]\ngood" in content else "Response B is better."
        seed = body.get("seed")
        return f"good answer (seed {seed})" if index == 0 else f"bad answer, longer (seed {seed})"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.headers.get("Authorization"), body))
        if body["model"] == "deny":
            return self._send(401, {"error": {"message": f"Incorrect API key provided: {SECRET}"}})
        if body["model"] == "echo":
            return self._send(400, {"error": {"message": f"bad request for key {SECRET}"}})
        content = body["messages"][-1]["content"]
        choices = []
        for i in range(body.get("n") or 1):
            choice = {"index": i, "finish_reason": "stop",
                      "message": {"role": "assistant", "content": self._text(body, content, i)}}
            if body.get("logprobs"):
                good_first = "[Response A]\ngood" in content
                top = [{"token": " A" if good_first else " B", "logprob": math.log(0.6), "bytes": None},
                       {"token": "B" if good_first else "A", "logprob": math.log(0.2), "bytes": None},
                       {"token": "The", "logprob": math.log(0.1), "bytes": None}]
                choice["logprobs"] = {"content": [{**top[0], "top_logprobs": top}]}
            choices.append(choice)
        self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": choices})


@contextmanager
def serve() -> Iterator[tuple[ThreadingHTTPServer, str]]:
    """(server, its /v1 URL) while the block runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
