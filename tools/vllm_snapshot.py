"""Snapshot the parts of vLLM's API that selfpref's vLLM adapter calls, read from vLLM's wheels.

    python tools/vllm_snapshot.py 0.33.0 0.34.0        # or: make vllm-snapshot

For each version: ``pip download --no-deps vllm==X`` into --wheels (a few hundred MB, once),
then the sources inside the wheel are parsed with ``ast`` (never imported: vLLM needs a GPU and
CUDA libraries), and the names the adapter depends on are written to
``tests/data/vllm_api_snapshot.json``. ``tests/test_vllm_backend.py`` checks the adapter's
recorded calls against it, so moving the ``vllm`` pin in pyproject.toml and re-running this
script turns a renamed field or parameter into a failing test.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "vllm_api_snapshot.json"
LLM_METHODS = ("__init__", "chat", "generate", "get_tokenizer")  # what the adapter calls


def wheel(version: str, folder: Path) -> Path:
    """The vllm wheel of ``version`` in ``folder``, downloaded when missing."""
    target = folder / version
    found = sorted(target.glob(f"vllm-{version}-*.whl"))
    if not found:
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        f"vllm=={version}", "-d", str(target)], check=True)
        found = sorted(target.glob(f"vllm-{version}-*.whl"))
    if not found:
        raise SystemExit(f"pip downloaded no vllm-{version} wheel into {target}")
    return found[0]


def _class(tree: ast.Module, name: str) -> ast.ClassDef:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    raise SystemExit(f"class {name} not found")


def fields(cls: ast.ClassDef) -> list[str]:
    """Annotated class attributes: a msgspec Struct's, dataclass's or TypedDict's fields."""
    return [n.target.id for n in cls.body if isinstance(n, ast.AnnAssign)
            and isinstance(n.target, ast.Name)]


def methods(cls: ast.ClassDef) -> dict[str, dict[str, Any]]:
    out = {}
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg != "self"]
            out[node.name] = {"parameters": names, "var_keyword": a.kwarg is not None}
    return out


def literal(tree: ast.Module, name: str) -> list[str]:
    """The strings of ``Name = Literal["a", "b", ...]``."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name
                                                for t in node.targets):
            return [c.value for c in ast.walk(node.value)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str)]
    raise SystemExit(f"{name} not found")


def constant(tree: ast.Module, name: str) -> Any:
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == name:
            return ast.literal_eval(node.value)
    return None


def assigns_self(cls: ast.ClassDef, attribute: str) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == attribute and isinstance(n.ctx, ast.Store)
               and isinstance(n.value, ast.Name) and n.value.id == "self" for n in ast.walk(cls))


def snapshot(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as z:
        def tree(name: str) -> ast.Module:
            return ast.parse(z.read(f"vllm/{name}").decode(), filename=name)

        sampling, llm, args = tree("sampling_params.py"), tree("entrypoints/llm.py"), tree("engine/arg_utils.py")
        model, outputs, inputs = tree("config/model.py"), tree("outputs.py"), tree("inputs/llm.py")
        engine, client = tree("v1/engine/llm_engine.py"), tree("v1/engine/core_client.py")
    params = _class(sampling, "SamplingParams")
    llm_methods = methods(_class(llm, "LLM"))
    request_init = methods(_class(outputs, "RequestOutput"))["__init__"]["parameters"]
    return {
        "SamplingParams": {
            "fields": fields(params),
            "greedy_requires_n_1": "_verify_greedy_sampling" in methods(params),
            "MAX_LOGPROB_TOKEN_IDS": constant(sampling, "MAX_LOGPROB_TOKEN_IDS"),
        },
        "LLM": {"methods": {k: v for k, v in llm_methods.items() if k in LLM_METHODS},
                "has_shutdown": "shutdown" in llm_methods,
                "assigns_llm_engine": assigns_self(_class(llm, "LLM"), "llm_engine")},
        "EngineArgs": {"fields": fields(_class(args, "EngineArgs"))},
        "TokenizerMode": literal(model, "TokenizerMode"),
        "LogprobsMode": literal(model, "LogprobsMode"),
        "default_logprobs_mode": next(ast.literal_eval(n.value) for n in _class(model, "ModelConfig").body
                                      if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == "logprobs_mode"),
        "TokensPrompt": fields(_class(inputs, "TokensPrompt")),
        "RequestOutput": request_init,
        "CompletionOutput": fields(_class(outputs, "CompletionOutput")),
        "engine_core": {"LLMEngine_assigns_engine_core": assigns_self(_class(engine, "LLMEngine"), "engine_core"),
                        "EngineCoreClient_has_shutdown": "shutdown" in methods(_class(client, "EngineCoreClient"))},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("versions", nargs="+", help="vLLM releases to read, e.g. 0.33.0 0.34.0")
    parser.add_argument("--wheels", type=Path, default=Path(tempfile.gettempdir()) / "vllm-wheels",
                        help="where the downloaded wheels are kept (default: /tmp/vllm-wheels)")
    parser.add_argument("--out", type=Path, default=OUT)
    ns = parser.parse_args(argv)
    data = {"about": "vLLM API names selfpref's adapter uses, parsed (not imported) from each "
                     "release's wheel by tools/vllm_snapshot.py; no GPU ran anything",
            "versions": {v: snapshot(wheel(v, ns.wheels)) for v in ns.versions}}
    tmp = ns.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, ns.out)  # atomic: a failed run leaves the old snapshot
    print(f"wrote {ns.out.relative_to(ROOT) if ns.out.is_relative_to(ROOT) else ns.out}: "
          f"vLLM {', '.join(ns.versions)}")


if __name__ == "__main__":
    main()
