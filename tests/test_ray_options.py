"""The --ray GPU options without a cluster: validation, the up-front room check, and the vLLM
options a Ray worker adds, checked against vLLM's source snapshot."""

import json
import types
from pathlib import Path

import pytest

from selfpref import SelfprefError
from selfpref.pipelines.config import BuildConfig
from selfpref.pipelines.ray_runner import (
    _check_room,
    separate_reference,
    vllm_parallel,
    worker_count,
)


def test_gpu_flags_need_ray_and_vllm():
    with pytest.raises(SelfprefError, match="--ray-gpus-per-worker: .*add --ray --backend vllm"):
        BuildConfig(method="sao", ray_gpus_per_worker=2)
    with pytest.raises(SelfprefError, match="--ray-gpus-per-worker 0: must be at least 1"):
        BuildConfig(method="sao", ray=True, backend="vllm", ray_gpus_per_worker=0)
    with pytest.raises(SelfprefError, match="--ray-reference-gpus: .*selfee, --reference-model"):
        BuildConfig(method="sao", ray=True, backend="vllm", ray_reference_gpus=4)


def selfee(**kw):
    return BuildConfig(method="selfee", backend="vllm", ray=True, reference_model="ref", model="m", **kw)


def test_the_reference_gets_its_own_worker_only_when_it_needs_more_gpus():
    assert not separate_reference(selfee(ray_gpus_per_worker=2, ray_reference_gpus=2))
    assert separate_reference(selfee(ray_gpus_per_worker=1, ray_reference_gpus=4))
    cluster = types.SimpleNamespace(cluster_resources=lambda: {"GPU": 8}, nodes=lambda: [])
    # 8 GPUs - 4 for the reference = 4 policy GPUs = 2 workers of 2
    assert worker_count(selfee(ray_gpus_per_worker=2, ray_reference_gpus=4), cluster, pending=10) == 2
    assert worker_count(selfee(ray_gpus_per_worker=2), cluster, pending=10) == 4


def test_a_cluster_without_the_gpus_is_refused_before_anything_waits_for_them():
    cluster = types.SimpleNamespace(cluster_resources=lambda: {"GPU": 4})
    _check_room(selfee(ray_gpus_per_worker=2, ray_reference_gpus=2), cluster)  # fits beside the policy
    with pytest.raises(SelfprefError, match=r"has 4 GPUs, the build needs at least 6: 2 per worker "
                                            r"\(--ray-gpus-per-worker\) \+ 4 for the reference"):
        _check_room(selfee(ray_gpus_per_worker=2, ray_reference_gpus=4), cluster)


def test_the_workers_vllm_options_exist_in_vllms_source():
    snapshot = json.loads((Path(__file__).parent / "data" / "vllm_api_snapshot.json").read_text())
    assert vllm_parallel(1) == {"tensor_parallel_size": 1}
    assert vllm_parallel(4) == {"tensor_parallel_size": 4, "distributed_executor_backend": "mp"}
    for version, api in snapshot["versions"].items():
        accepted = set(api["LLM"]["methods"]["__init__"]["parameters"]) | set(api["EngineArgs"]["fields"])
        assert set(vllm_parallel(4)) <= accepted, version
