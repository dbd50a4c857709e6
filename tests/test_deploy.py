"""The Dockerfile and Kubernetes manifests agree with the app they deploy."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import yaml

from bench.harness import ROOT
from mnist_flask import create_app

MANIFESTS = ROOT / "deploy" / "kubernetes"


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
