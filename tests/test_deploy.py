"""The Dockerfile and Kubernetes manifests agree with the app they deploy."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import copy

import kubernetes_validate
import pytest
import yaml

from bench.harness import ROOT
from mnist_flask import create_app

DEPLOY = ROOT / "deploy"
MANIFESTS = DEPLOY / "kubernetes"
# InferenceService.spec.predictor is a PodSpec inline plus KServe's own component settings.
KSERVE_COMPONENT_FIELDS = {
    "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "containerConcurrency", "timeout",
    "canaryTrafficPercent", "logger", "batcher", "labels", "annotations", "deploymentStrategy", "autoScaling",
}  # fmt: skip


def routes() -> set[str]:
    return {rule.rule for rule in create_app().url_map.iter_rules()}


def gunicorn_default_port() -> str:
    return re.search(r"os.environ.get\('PORT', '(\d+)'\)", (ROOT / "gunicorn.conf.py").read_text()).group(1)


def dockerfile() -> dict[str, list[str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    instructions: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            instructions.setdefault(keyword, []).append(rest.strip())
    return instructions


def test_dockerfile_runs_gunicorn_as_non_root_with_a_healthcheck():
    docker = dockerfile()
    assert all(stage.split()[0].endswith("-slim") for stage in docker["FROM"])
    assert docker["CMD"] == ['["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]']
    assert docker["USER"] and docker["USER"][0] not in ("root", "0")
    assert docker["EXPOSE"] == [gunicorn_default_port()]
    assert "/healthz" in docker["HEALTHCHECK"][0] and "/healthz" in routes()
    for copy in docker["COPY"]:
        if copy.startswith("--from="):  # from the build stage, which copied it from here
            continue
        for source in shlex.split(copy)[:-1]:
            assert (ROOT / source).exists(), source


def test_serving_needs_no_tensorflow():
    """The image installs requirements-serve.txt only: the app must serve with TensorFlow absent."""
    script = (
        "import sys; sys.modules['tensorflow'] = sys.modules['keras'] = None\n"
        "from mnist_flask import create_app\n"
        "client = create_app().test_client()\n"
        "assert client.get('/readyz').status_code == 200\n"
        "assert client.post('/v1/models/mnist:predict', json={'instances': [[[0.0] * 28] * 28]}).status_code == 200\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=120)
    packages = [line for line in (ROOT / "requirements-serve.txt").read_text().splitlines() if line[:1].isalpha()]
    assert not [package for package in packages if package.lower().startswith(("tensorflow", "keras"))]


def load(name: str) -> dict:
    return yaml.safe_load((MANIFESTS / name).read_text())


def test_deployment_probes_port_and_command_match_the_app():
    deployment = load("deployment.yaml")
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert str(ports["http"]) == gunicorn_default_port()
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"/readyz", "/healthz", "/metrics"} <= routes()
    assert container["command"] == ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics" and annotations["prometheus.io/port"] == gunicorn_default_port()
    assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    graceful = int(re.search(r"graceful_timeout = (\d+)", (ROOT / "gunicorn.conf.py").read_text()).group(1))
    assert pod["spec"]["terminationGracePeriodSeconds"] > graceful


def test_service_and_autoscaler_point_at_the_deployment():
    deployment, service, hpa = load("deployment.yaml"), load("service.yaml"), load("hpa.yaml")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def manifests() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        found += [(str(path.relative_to(DEPLOY)), doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def checkable(resource: dict) -> dict:
    """What Kubernetes' own schemas can check: the resource, or for KServe's InferenceService (a custom
    resource, with no built-in schema) its predictor as the Pod it becomes."""
    if resource["kind"] != "InferenceService":
        return resource
    assert resource["apiVersion"] == "serving.kserve.io/v1beta1"
    assert set(resource["spec"]) == {"predictor"} and set(resource["metadata"]) == {"name"}
    predictor = resource["spec"]["predictor"]
    pod_spec = {key: value for key, value in predictor.items() if key not in KSERVE_COMPONENT_FIELDS}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": resource["metadata"], "spec": pod_spec}


def validate(resource: dict) -> None:
    """Against the schemas kubernetes-validate ships (offline), strict: an unknown field is an error."""
    kubernetes_validate.validate(checkable(resource), kubernetes_validate.latest_version(), strict=True)


@pytest.mark.parametrize(("path", "resource"), manifests(), ids=[path for path, _ in manifests()])
def test_every_manifest_matches_the_kubernetes_schemas(path, resource):
    validate(resource)


@pytest.mark.parametrize("kind", ["Deployment", "InferenceService"])
def test_schema_check_catches_a_misspelt_field(kind):
    resource = copy.deepcopy(next(doc for _, doc in manifests() if doc["kind"] == kind))
    pod = resource["spec"]["predictor"] if kind == "InferenceService" else resource["spec"]["template"]["spec"]
    pod["containers"][0]["readinesProbe"] = pod["containers"][0].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(resource)


def test_inferenceservice_runs_the_image_as_a_v2_predictor():
    service = yaml.safe_load((DEPLOY / "kserve" / "inferenceservice.yaml").read_text())
    container = service["spec"]["predictor"]["containers"][0]
    deployed = load("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == "kserve-container" and container["image"] == deployed["image"]
    assert container["command"] == deployed["command"] == ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
    env = {variable["name"]: variable["value"] for variable in container["env"]}
    assert env["PROTOCOL"] == "v2"
    (port,) = container["ports"]
    assert env["PORT"] == str(port["containerPort"]) == "8080"  # KServe's default for custom predictors
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": port["containerPort"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": port["containerPort"]}
    assert {"/v2/health/ready", "/v2/health/live", "/v2/models/<model:name>/infer"} <= routes()
    assert container["securityContext"]["runAsNonRoot"] is True
