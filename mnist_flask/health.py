"""Operational endpoints: liveness, readiness and Prometheus metrics. Cheap, and never behind auth."""

from __future__ import annotations

from flasgger import swag_from
from flask import Blueprint, jsonify

from . import apispec, metrics
from .model import model_slot

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@swag_from(apispec.HEALTHZ)
def healthz():
    """The process answers: restart it if this fails, nothing else."""
    return jsonify(status="ok")


@bp.get("/readyz")
@swag_from(apispec.READYZ)
def readyz():
    """This worker has its model and a warm-up prediction succeeded: send it traffic. Newer versions
    that failed to load are named with why, while the version before them serves."""
    slot = model_slot()
    failed = {str(version): why for version, why in slot.failures.items()}
    if slot.classifier is None:
        return jsonify(status="not ready", error=slot.problem, failed_versions=failed), 503
    answer = {"status": "ready", "model": slot.classifier.label, "backend": slot.classifier.backend}
    return jsonify({**answer, "failed_versions": failed} if failed else answer)


@bp.get("/metrics")
@swag_from(apispec.METRICS)
def prometheus_metrics():
    return metrics.exposition()
