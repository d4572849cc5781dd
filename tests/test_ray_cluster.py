"""`--ray` on a real multi-node Ray cluster (``ray.cluster_utils.Cluster``, as Ray's own
multi-node tests: a head and a second raylet, one CPU each, on this machine), always against the
local build: chunks on both nodes, a worker process killed mid-chunk, a node removed mid-chunk,
every worker lost (one line, parts kept, the rerun resumes). One cluster for the module; every
Ray process it started is gone when the module ends."""

import json
import threading
import time

import psutil
import pytest
from typer.testing import CliRunner

from selfpref.data.refs import read_dataset
from selfpref.pipelines.config import BuildConfig
from selfpref.pipelines.run import build
from tests.build_files import prompts_file, script_file

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

# Faster lost-node detection than Ray's defaults (a raylet missing 3 checks of 0.5 s is dead).
FAST_HEALTH = {"health_check_period_ms": 500, "health_check_failure_threshold": 3,
               "health_check_initial_delay_ms": 0}


def ray_processes() -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "raylet" in cmd or "gcs_server" in cmd or cmd.startswith("ray::"):
            out.append(p)
    return out


@pytest.fixture(scope="module")
def cluster():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")  # no token file for a throwaway test cluster
        before = {p.pid for p in ray_processes()}
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "_system_config": FAST_HEALTH})
        c.add_node(num_cpus=1)
        c.wait_for_nodes()
        try:
            yield c
        finally:
            if ray.is_initialized():
                ray.shutdown()
            c.shutdown()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and {p.pid for p in ray_processes()} - before:
                time.sleep(0.5)
            left = [" ".join(p.cmdline()[:2]) for p in ray_processes() if p.pid not in before]
            assert not left, f"Ray processes left behind: {left}"


def node_ids(c: Cluster) -> set[str]:
    return {n.node_id for n in c.list_all_nodes()}


def sao(tmp_path, delay: float = 0.0, **extra) -> dict:
    steps = dict(answer_pair=["one", "two, longer", "three", "four!"], self_judge=["A", "B", "B"])
    script = script_file(tmp_path, **steps, **({"delay": delay} if delay else {}))
    prompts = prompts_file(tmp_path, [f"q{i}?" for i in range(8)])
    return dict(method="sao", backend="scripted", script=script, prompts=prompts, num_prompts=8,
                chunk_size=2, **extra)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The reference: the same build without Ray."""
    tmp = tmp_path_factory.mktemp("local")
    build(BuildConfig(**sao(tmp)), tmp / "local")
    return read_dataset(tmp / "local")[0]


def running_chunk(where=None, timeout: float = 60.0) -> psutil.Process:
    """A Ray worker process in the middle of ``ChunkWorker.run`` (Ray names the process after the
    method it runs), optionally one whose raylet is ``where``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in psutil.process_iter(["cmdline", "ppid"]):
            if (p.info["cmdline"] or [""])[0].startswith("ray::ChunkWorker.run") and \
                    (where is None or p.info["ppid"] == where):
                return p
        time.sleep(0.05)
    raise AssertionError("no chunk worker started running a chunk")


def in_thread(fn):
    box = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    return thread, box


def test_a_two_node_build_runs_chunks_on_both_nodes_and_equals_the_local_build(cluster, local, tmp_path):
    from selfpref.cli import app

    common = sao(tmp_path)
    result = CliRunner().invoke(app, [
        "build", "sao", "--backend", "scripted", "--script", common["script"], "--prompts",
        common["prompts"], "--num-prompts", "8", "--chunk-size", "2", "--ray", "--ray-address",
        cluster.address, "--ray-workers", "2", "--output", str(tmp_path / "ray")])
    assert result.exit_code == 0, result.output
    df, record = read_dataset(tmp_path / "ray")
    assert df.equals(local)
    placed = record.stats["ray"]
    assert {n["node_id"] for n in placed["nodes"]} == node_ids(cluster)  # both nodes did work
    assert None not in placed["chunk_nodes"] and len(set(placed["chunk_nodes"])) == 2
    assert len(placed["chunk_nodes"]) == 4 and sum(n["chunks"] for n in placed["nodes"]) == 4
    assert placed["retried_chunks"] == 0


FAKE_VLLM = '''"""A stand-in vllm for Ray workers on a machine without GPUs: vLLM's call surface, and a log
line per engine (its options and the GPUs Ray gave the process)."""
import json
import os
import types


class SamplingParams:
    __struct_fields__ = ("n", "temperature", "top_p", "seed", "max_tokens", "logprobs",
                         "prompt_logprobs", "logprob_token_ids", "allowed_token_ids")

    def __init__(self, **kwargs):
        if kwargs.get("temperature", 1.0) < 1e-5 and kwargs.get("n", 1) > 1:
            raise ValueError("n must be 1 when using greedy sampling")
        self.kwargs = kwargs


class ByteTokenizer:
    """A chat template over bytes: enough for answer log-probs, without loading transformers."""

    pad_token_id = 0

    def apply_chat_template(self, messages, add_generation_prompt=False, tokenize=True):
        text = "".join(f"<{m['role']}>{m['content']}" for m in messages)
        return list((text + ("<assistant>" if add_generation_prompt else "")).encode())


class LLM:
    def __init__(self, model, seed=0, **options):
        import ray

        self.model, self.options = model, options
        here = ray.is_initialized() and ray.get_runtime_context()
        line = {"model": model, "options": options, "pid": os.getpid(),
                "gpus": [str(g) for g in ray.get_gpu_ids()] if here else [],
                "node": here.get_node_id() if here else None}
        with open(os.environ["FAKE_VLLM_LOG"], "a") as f:
            f.write(json.dumps(line) + "\\n")
        self.llm_engine = types.SimpleNamespace(
            engine_core=types.SimpleNamespace(shutdown=lambda timeout=None: None))

    def get_tokenizer(self):
        return ByteTokenizer()


    def chat(self, messages, sampling_params=None, use_tqdm=True):
        ns = types.SimpleNamespace
        outs = []
        for m, p in zip(messages, sampling_params):
            text = m[-1]["content"]
            texts = [f"answer {k} to {text[:12]}" for k in range(p.kwargs["n"])]
            outs.append(ns(outputs=[ns(text=t) for t in texts]))
        return outs

    def generate(self, prompts, params, use_tqdm=True):
        ns = types.SimpleNamespace
        ref = self.model.endswith("ref")  # the reference scores every token alike, the policy not
        outs = []
        for p in prompts:
            ids = p["prompt_token_ids"]
            rows = [None] + [{t: ns(logprob=-1.0 if ref else -0.5 - 0.1 * (t % 3))} for t in ids[1:]]
            outs.append(ns(prompt_logprobs=rows, outputs=[]))
        return outs
'''


@pytest.fixture(scope="module")
def fake_vllm_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fakevllm")
    (folder / "vllm").mkdir()
    (folder / "vllm" / "__init__.py").write_text(FAKE_VLLM)
    return folder


@pytest.fixture(scope="module")
def driver(cluster, fake_vllm_dir):
    """This process as the cluster's driver for the tests below; workers find the fake vllm."""
    import os

    log = fake_vllm_dir / "engines.jsonl"
    path = os.pathsep.join([str(fake_vllm_dir), os.environ.get("PYTHONPATH", "")])
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path, "FAKE_VLLM_LOG": str(log)}})
    yield log
    ray.shutdown()


def test_a_worker_killed_mid_chunk_loses_only_that_chunk(cluster, driver, local, tmp_path):
    config = BuildConfig(**sao(tmp_path, delay=0.15), ray=True, ray_address=cluster.address, ray_workers=2)
    thread, box = in_thread(lambda: build(config, tmp_path / "ray"))
    victim = running_chunk()
    victim.kill()  # SIGKILL: the actor's process dies in the middle of its chunk
    thread.join(timeout=120)
    assert "error" not in box, box.get("error")
    df, record = read_dataset(tmp_path / "ray")
    assert df.equals(local)
    assert record.stats["ray"]["retried_chunks"] == 1 and len(record.stats["ray"]["retried"]) == 1


def test_vllm_workers_get_their_gpus_and_the_large_reference_its_own_worker(
        cluster, driver, tmp_path, tiny_model_path, fake_vllm_dir, monkeypatch):
    """Logical GPUs: a node with 2 (the policy, tensor parallel 2) and one with 3 (SELFEE's
    reference, which asks for more GPUs than a policy worker has, on its own worker)."""
    import importlib.util
    import shutil
    import sys

    import selfpref.models.vllm_backend as backend

    two, three = cluster.add_node(num_cpus=1, num_gpus=2), cluster.add_node(num_cpus=1, num_gpus=3)
    cluster.wait_for_nodes()
    try:
        reference = tmp_path / "ref"
        shutil.copytree(tiny_model_path, reference)
        common = dict(method="selfee", backend="vllm", model=str(tiny_model_path),
                      reference_model=str(reference), prompts=prompts_file(tmp_path, ["q1", "q2", "q3"]),
                      chunk_size=2, no_cache=True)  # both builds run their engines
        spec = importlib.util.spec_from_file_location("fake_vllm", fake_vllm_dir / "vllm" / "__init__.py")
        fake = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(fake)
        monkeypatch.setattr(backend, "_vllm", lambda: fake)  # the local build, in this process
        monkeypatch.setenv("FAKE_VLLM_LOG", str(tmp_path / "local.jsonl"))
        build(BuildConfig(**common), tmp_path / "local")
        build(BuildConfig(**common, ray=True, ray_address=cluster.address, ray_gpus_per_worker=2,
                          ray_reference_gpus=3), tmp_path / "ray")
        df, record = read_dataset(tmp_path / "ray")
        assert df.height > 0 and df.equals(read_dataset(tmp_path / "local")[0])
        engines = [json.loads(line) for line in driver.read_text().splitlines()]
        [policy] = [e for e in engines if e["model"] == str(tiny_model_path)]
        [ref] = [e for e in engines if e["model"] == str(reference)]
        assert policy["options"]["tensor_parallel_size"] == 2 and len(policy["gpus"]) == 2
        assert policy["options"]["distributed_executor_backend"] == "mp"
        assert policy["options"]["gpu_memory_utilization"] == 0.9  # the GPUs are the policy's alone
        assert ref["options"]["tensor_parallel_size"] == 3 and len(ref["gpus"]) == 3
        assert (policy["node"], ref["node"]) == (two.node_id, three.node_id) and policy["pid"] != ref["pid"]
        assert {n["node_id"] for n in record.stats["ray"]["nodes"]} == {two.node_id}
        assert "fake_vllm" not in sys.modules
    finally:
        cluster.remove_node(two)
        cluster.remove_node(three)


def test_a_node_removed_mid_chunk_loses_only_that_chunk(cluster, driver, local, tmp_path):
    """The second node goes (raylet and worker) in the middle of a chunk: the head's worker
    takes the chunk over."""
    [second] = [n for n in cluster.list_all_nodes() if n is not cluster.head_node]
    config = BuildConfig(**sao(tmp_path, delay=0.15), ray=True, ray_address=cluster.address, ray_workers=2)
    thread, box = in_thread(lambda: build(config, tmp_path / "ray"))
    running_chunk(where=second.all_processes["raylet"][0].process.pid)
    cluster.remove_node(second)
    thread.join(timeout=120)
    assert "error" not in box, box.get("error")
    df, record = read_dataset(tmp_path / "ray")
    assert df.equals(local)
    assert record.stats["ray"]["retried_chunks"] >= 1
    placed = record.stats["ray"]
    for chunk in placed["retried"]:  # redone on the head, the only node left
        assert placed["nodes"][placed["chunk_nodes"][chunk]]["node_id"] == cluster.head_node.node_id


def test_all_workers_lost_is_one_line_and_the_rerun_resumes(cluster, driver, local, tmp_path, monkeypatch):
    """The head's CPU is taken, the only worker's node is removed after its first chunk: no
    room for a new worker -> one line; the finished part stays and the rerun resumes from it.
    (Runs after the node-removal test: the cluster has only its head now.)"""
    import selfpref.pipelines.ray_runner as runner
    from selfpref import SelfprefError

    monkeypatch.setattr(runner, "ROOM_WAIT_S", 2.0)
    blocker = ray.remote(num_cpus=1, resources={"node:__internal_head__": 0.001})(Blocker).remote()
    ray.get(blocker.ping.remote())
    second = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    config = BuildConfig(**sao(tmp_path, delay=0.15), ray=True, ray_address=cluster.address, ray_workers=1)
    thread, box = in_thread(lambda: build(config, tmp_path / "ray"))
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".ray.parts/*/part-00000.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    running_chunk()
    cluster.remove_node(second)
    thread.join(timeout=120)
    error = box.get("error")
    assert isinstance(error, SelfprefError) and "\n" not in str(error)
    assert "all Ray workers were lost" in str(error) and "rerun the same command" in str(error)
    kept = sorted(p.name for p in tmp_path.glob(".ray.parts/*/part-*.json"))
    assert kept and kept[0] == "part-00000.json" and len(kept) < 4
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.kill(blocker)
    said = []
    build(config, tmp_path / "ray", notify=said.append)
    assert f"resuming: {len(kept)} of 4 chunks already finished" in said
    assert read_dataset(tmp_path / "ray")[0].equals(local)


class Blocker:
    def ping(self):
        return True
