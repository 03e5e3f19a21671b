"""The Kubernetes deployment (deploy/): the Kubeflow training-operator manifests validate against
the operator's published API models, and the very command they run trains as two local workers.

Schema: the ``kubeflow-training`` SDK (PyPI) ships the operator's OpenAPI models
(``KubeflowOrgV1TFJob``, ``KubeflowOrgV1PyTorchJob``, ... generated from its ``kubeflow.org/v1``
API) and builds on the Kubernetes client's models (``V1PodTemplateSpec`` ...). Every mapping
in a manifest is checked against the model for its place: no field the API does not have, every
value of the declared type, required fields present (the models' client-side validation), plus
the operator's documented rules that the models leave to the server (replica types, restart
and clean-pod policies, the container name it configures).
"""

from __future__ import annotations

import copy
import gzip
import importlib.metadata
import json
import os
import re
import socket
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

yaml = pytest.importorskip("yaml")
kf_models = pytest.importorskip("kubeflow.training.models")
k8s_models = pytest.importorskip("kubernetes.client.models")

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"

ROOT_MODELS = {
    ("kubeflow.org/v1", "TFJob"): "KubeflowOrgV1TFJob",
    ("kubeflow.org/v1", "PyTorchJob"): "KubeflowOrgV1PyTorchJob",
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
}
# The operator's rules that its OpenAPI models do not encode (training-operator API reference).
REPLICA_TYPES = {
    "TFJob": {"Chief", "Master", "PS", "Worker", "Evaluator"},
    "PyTorchJob": {"Master", "Worker"},
}
CONTAINER_NAME = {"TFJob": "tensorflow", "PyTorchJob": "pytorch"}
RESTART_POLICIES = {"Always", "OnFailure", "Never", "ExitCode"}
CLEAN_POD_POLICIES = {"All", "Running", "None"}


class ManifestError(AssertionError):
    pass


def _model_class(name: str) -> Any:
    for module in (kf_models, k8s_models):
        cls = getattr(module, name, None)
        if cls is not None:
            return cls
    raise ManifestError(f"no model {name!r} in the kubeflow-training or kubernetes packages")


def _build(value: Any, type_name: str, path: str) -> Any:
    """Check ``value`` against the OpenAPI type ``type_name``; returns the model object."""
    if type_name == "object":
        return value
    if type_name.startswith("list["):
        if not isinstance(value, list):
            raise ManifestError(f"{path}: expected a list ({type_name}), got {value!r}")
        inner = type_name[5:-1]
        return [_build(v, inner, f"{path}[{i}]") for i, v in enumerate(value)]
    if type_name.startswith("dict("):
        if not isinstance(value, dict):
            raise ManifestError(f"{path}: expected a mapping ({type_name}), got {value!r}")
        inner = re.match(r"dict\(([^,]*), (.*)\)", type_name).group(2)  # type: ignore[union-attr]
        return {k: _build(v, inner, f"{path}.{k}") for k, v in value.items()}
    primitive = {"str": str, "int": int, "bool": bool, "float": (int, float), "datetime": str}
    if type_name in primitive:
        ok = isinstance(value, primitive[type_name]) and not (
            type_name in ("int", "float") and isinstance(value, bool)
        )
        if not ok:
            raise ManifestError(f"{path}: expected {type_name}, got {value!r}")
        return value
    cls = _model_class(type_name)
    if not isinstance(value, dict):
        raise ManifestError(f"{path}: expected a {type_name} mapping, got {value!r}")
    by_json = {v: k for k, v in cls.attribute_map.items()}
    unknown = sorted(set(value) - set(by_json))
    if unknown:
        raise ManifestError(f"{path}: {type_name} has no field(s) {unknown}")
    kwargs = {
        by_json[k]: _build(v, cls.openapi_types[by_json[k]], f"{path}.{k}")
        for k, v in value.items()
    }
    try:
        return cls(**kwargs)  # the models' own checks: required fields, enumerations
    except ValueError as exc:
        raise ManifestError(f"{path}: {exc}") from None


def validate(doc: dict[str, Any]) -> Any:
    """Validate one manifest; returns the model object."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key not in ROOT_MODELS:
        raise ManifestError(f"unsupported apiVersion/kind {key}")
    model = _build(doc, ROOT_MODELS[key], doc["kind"])
    kind = doc["kind"]
    if kind in REPLICA_TYPES:
        spec = doc["spec"]
        run_policy = spec.get("runPolicy", {})
        if run_policy.get("cleanPodPolicy", "None") not in CLEAN_POD_POLICIES:
            raise ManifestError(f"{kind}.spec.runPolicy.cleanPodPolicy not in {CLEAN_POD_POLICIES}")
        replica_specs = spec["tfReplicaSpecs" if kind == "TFJob" else "pytorchReplicaSpecs"]
        for rtype, rspec in replica_specs.items():
            where = f"{kind} replica {rtype}"
            if rtype not in REPLICA_TYPES[kind]:
                raise ManifestError(f"{where}: replica type not in {REPLICA_TYPES[kind]}")
            if rspec.get("restartPolicy", "Never") not in RESTART_POLICIES:
                raise ManifestError(f"{where}: restartPolicy not in {RESTART_POLICIES}")
            names = [c["name"] for c in rspec["template"]["spec"]["containers"]]
            if CONTAINER_NAME[kind] not in names:
                raise ManifestError(f"{where}: no container named {CONTAINER_NAME[kind]!r}")
        if kind == "PyTorchJob" and replica_specs.get("Master", {}).get("replicas", 1) != 1:
            raise ManifestError("PyTorchJob: the Master replica type takes exactly 1 replica")
    return model


def load(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def trainer_container(doc: dict[str, Any], replica: str) -> dict[str, Any]:
    key = "tfReplicaSpecs" if doc["kind"] == "TFJob" else "pytorchReplicaSpecs"
    pod = doc["spec"][key][replica]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == CONTAINER_NAME[doc["kind"]]]
    return container


MANIFESTS = sorted(p.name for p in K8S.glob("*.yaml"))


def test_there_are_a_tfjob_a_pytorchjob_and_their_volume() -> None:
    kinds = sorted(d["kind"] for name in MANIFESTS for d in load(name))
    assert kinds == ["PersistentVolumeClaim", "PyTorchJob", "TFJob"]


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_validates_against_the_operator_api(name: str) -> None:
    for doc in load(name):
        validate(doc)


def _worker(d: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = d["spec"]["tfReplicaSpecs"]["Worker"]
    return spec


BREAKAGES = [
    (lambda d: _worker(d).update(replica=2), r"no field\(s\) \['replica'\]"),
    (lambda d: _worker(d).update(replicas="2"), "expected int"),
    (lambda d: d["spec"].pop("tfReplicaSpecs"), "tf_replica_specs`, must not be `None`"),
    (lambda d: trainer_container(d, "Worker").update(commands=["x"]), "V1Container has no field"),
    (lambda d: trainer_container(d, "Worker").update(name="tf"), "no container named 'tensorflow'"),
    (lambda d: d["spec"]["tfReplicaSpecs"].update(Boss=_worker(d)), "replica type"),
    (lambda d: d["spec"]["runPolicy"].update(cleanPodPolicy="Sometimes"), "cleanPodPolicy"),
]


@pytest.mark.parametrize(("change", "match"), BREAKAGES)
def test_the_validation_refuses_broken_manifests(change: Any, match: str) -> None:
    (doc,) = load("tfjob-keras.yaml")
    broken = copy.deepcopy(doc)
    change(broken)
    with pytest.raises(ManifestError, match=match):
        validate(broken)


def _registered_commands() -> set[str]:
    return {ep.name for ep in importlib.metadata.entry_points(group="qstore.cli")}


@pytest.mark.parametrize(
    ("name", "replicas", "command", "world"),
    [
        ("tfjob-keras.yaml", ("Worker",), "train-keras", 2),
        ("pytorchjob-ddp.yaml", ("Master", "Worker"), "train-torch", 2),
    ],
)
def test_jobs_run_our_command_with_resources_and_the_data_volume(
    name: str, replicas: tuple[str, ...], command: str, world: int
) -> None:
    (doc,) = load(name)
    key = "tfReplicaSpecs" if doc["kind"] == "TFJob" else "pytorchReplicaSpecs"
    specs = doc["spec"][key]
    assert tuple(sorted(specs)) == replicas
    assert sum(s["replicas"] for s in specs.values()) == world
    (pvc,) = load("data-volume.yaml")
    commands = set()
    for replica in replicas:
        pod = specs[replica]["template"]["spec"]
        container = trainer_container(doc, replica)
        commands.add(tuple(container["command"]))
        assert container["command"][:2] == ["qstore", command]
        assert command in _registered_commands()
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        (mount,) = container["volumeMounts"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
        # every path the command names is on the volume
        paths = [a for a in container["command"] if a.startswith("/")]
        assert paths and all(p.startswith(mount["mountPath"] + "/") for p in paths)
    assert len(commands) == 1, "every replica must run the same command"
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]


def test_dockerfile_installs_what_the_command_needs() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert "torch==2.13.0" in text and "download.pytorch.org/whl/cpu" in text
    for path in re.findall(r"\./(packages/[\w-]+)", text):
        assert (REPO / path / "pyproject.toml").is_file(), path
    installed = set(re.findall(r"\./packages/(qstore-[\w-]+)", text))
    assert {"qstore-core", "qstore-tf", "qstore-torch"} <= installed
    for name in MANIFESTS:
        for doc in load(name):
            for key in ("tfReplicaSpecs", "pytorchReplicaSpecs"):
                for spec in doc.get("spec", {}).get(key, {}).values():
                    for c in spec["template"]["spec"]["containers"]:
                        assert c["image"] == "qstore-train:4.0.0a1"
    assert "qstore-train:4.0.0a1" in text


# -- the command of the manifests, as two local workers ------------------------------------------


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(
        ">" + "I" * array.ndim, *array.shape
    )
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(header + array.tobytes())


def fake_fashion_mnist(directory: Path) -> None:
    """Files in the Fashion-MNIST format (60000 + 10000 images of 28x28, labels 0..9): one noisy
    pattern per class, so that the model has something to learn."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    patterns = rng.integers(0, 200, (10, 28, 28), dtype=np.uint8)
    for prefix, n in (("train", 60000), ("t10k", 10000)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = patterns[labels] + rng.integers(0, 40, (n, 28, 28), dtype=np.uint8)
        _write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", images)
        _write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", labels)


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local stand-in for the PersistentVolumeClaim, with the data set in place."""
    root = tmp_path_factory.mktemp("volume")
    fake_fashion_mnist(root / "fashion-mnist")
    return root


def local_command(doc: dict[str, Any], replica: str, volume: Path, *extra: str) -> list[str]:
    """The container's command, run here: ``qstore`` through this interpreter, the volume's
    mount path mapped to ``volume``, and ``extra`` options (a smaller run) at the end."""
    container = trainer_container(doc, replica)
    (mount,) = container["volumeMounts"]
    argv = [
        str(volume) + a[len(mount["mountPath"]) :] if a.startswith(mount["mountPath"] + "/") else a
        for a in container["command"]
    ]
    assert argv[0] == "qstore"
    return [sys.executable, "-m", "qstore.core", *argv[1:], *extra]


def _free_ports(k: int) -> list[int]:
    socks = [socket.socket() for _ in range(k)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _run_all(commands: list[list[str]], envs: list[dict[str, str]]) -> list[str]:
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for cmd, env in zip(commands, envs, strict=True)
    ]
    logs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=300)
            logs.append(out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for i, p in enumerate(procs):
        assert p.returncode == 0, f"worker {i} failed:\n{logs[i][-4000:]}"
    return logs


def _base_env() -> dict[str, str]:
    drop = {"TF_CONFIG", "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    return env


SMALL_RUN = ("--n-train", "160", "--n-test", "40", "--epochs", "1")


@pytest.mark.slow
def test_the_tfjob_command_trains_on_two_local_workers(volume: Path) -> None:
    (doc,) = load("tfjob-keras.yaml")
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    envs = []
    for i in range(2):  # what the operator sets in worker i's pod
        env = _base_env()
        env.update(
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
            TF_NUM_INTEROP_THREADS="1",
            TF_NUM_INTRAOP_THREADS="1",
        )
        envs.append(env)
    cmd = local_command(doc, "Worker", volume, *SMALL_RUN)
    logs = _run_all([cmd, cmd], envs)
    assert "chief of 2 worker(s)" in logs[0] and "worker of 2 worker(s)" in logs[1]
    summary = json.loads((volume / "runs" / "keras" / "summary.json").read_text())
    assert summary["workers"] == 2 and summary["replicas"] == 2
    assert np.isfinite(summary["history"]["loss"]).all()
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert (volume / "runs" / "keras" / "model.keras").is_file()


@pytest.mark.slow
def test_the_pytorchjob_command_trains_on_two_local_processes(volume: Path) -> None:
    (doc,) = load("pytorchjob-ddp.yaml")
    (port,) = _free_ports(1)
    commands, envs = [], []
    for rank, replica in enumerate(("Master", "Worker")):  # what the operator sets in each pod
        env = _base_env()
        env.update(RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        envs.append(env)
        commands.append(local_command(doc, replica, volume, *SMALL_RUN))
    logs = _run_all(commands, envs)
    assert "rank 0 of 2" in logs[0] and "rank 1 of 2" in logs[1]
    summary = json.loads((volume / "runs" / "torch" / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert np.isfinite(summary["history"]["loss"]).all()
    checkpoints = sorted(p.name for p in (volume / "checkpoints" / "torch").iterdir())
    assert checkpoints == ["epoch_0001.pt", "last.pt"]
    assert (volume / "runs" / "torch" / "model.pt").is_file()
