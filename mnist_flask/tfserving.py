"""TensorFlow Serving's REST API under ``/v1/models/``: predict, status and metadata, for the default
version, a version or a label, in TF Serving's shapes, so its existing clients point here unchanged."""

from __future__ import annotations

import numpy as np
from flasgger import swag_from
from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import BadRequest, NotFound
from werkzeug.routing import BaseConverter

from . import apispec
from .api import chosen
from .metrics import metrics
from .model import Classifier, get_classifier, model_slot, rounded_probabilities
from .preprocessing import FIELD
from .security import token_required

bp = Blueprint("tfserving", __name__)


class ModelName(BaseConverter):
    """A model name has no colon, so ``/v1/models/mnist:predict`` never matches the status route."""

    regex = r"[^/:]+"


@bp.record_once
def register_converter(state) -> None:
    """``<model:name>`` in this blueprint's routes and in ``v2``'s, registered after it."""
    state.app.url_map.converters["model"] = ModelName


@bp.post("/v1/models/<model:name>:predict")
@swag_from(apispec.TFSERVING_PREDICT)
@token_required
def predict(name: str):
    """TensorFlow Serving's REST predict, so its existing clients can point here unchanged."""
    check_model_name(name)
    return predict_with(chosen(model_slot().choose()))


@bp.post("/v1/models/<model:name>/versions/<int:version>:predict")
@swag_from(apispec.TFSERVING_PREDICT_VERSION)
@token_required
def predict_version(name: str, version: int):
    return predict_named(name, version, None)


@bp.post("/v1/models/<model:name>/labels/<model:label>:predict")
@swag_from(apispec.TFSERVING_PREDICT_LABEL)
@token_required
def predict_label(name: str, label: str):
    return predict_named(name, None, label)


def predict_named(name: str, version: int | None, label: str | None):
    check_model_name(name)
    return predict_with(chosen(model_slot().named(version, label)))


def predict_with(classifier: Classifier):
    body = request.get_json(force=True, silent=True)  # as TF Serving: JSON whatever the Content-Type (curl -d)
    if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
        raise BadRequest('send a JSON object with either "instances" or "inputs": a list of 28x28 arrays')
    key = "instances" if "instances" in body else "inputs"
    batch = tensor_batch(body[key])
    with metrics().inference.time():
        probabilities = classifier.predict(batch)
    return jsonify({"predictions" if key == "instances" else "outputs": rounded_probabilities(probabilities)})


def tensor_batch(values) -> np.ndarray:
    """A list of 28x28 (or 28x28x1) arrays of floats in [0, 1], white ink on black, as the model takes."""
    try:
        batch = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise BadRequest("instances must be numbers in nested lists of equal length, shape [N, 28, 28]") from None
    if batch.ndim == 4 and batch.shape[-1] == 1:
        batch = batch[..., 0]
    if batch.ndim != 3 or batch.shape[1:] != (FIELD, FIELD) or len(batch) == 0:
        raise BadRequest(f"expected shape [N, 28, 28] or [N, 28, 28, 1] with N >= 1, got {list(batch.shape)}")
    if len(batch) > current_app.config["MAX_BATCH"]:
        raise BadRequest(f"at most {current_app.config['MAX_BATCH']} instances per request, got {len(batch)}")
    if not np.isfinite(batch).all():
        raise BadRequest("instances must be finite numbers")
    return batch


def named_classifier(name: str) -> Classifier:
    """The default version when ``name`` is the served model; 404 otherwise."""
    check_model_name(name)
    return get_classifier()


def check_model_name(name: str) -> None:
    if name != current_app.config["MODEL_NAME"]:
        raise NotFound(f"no model named {name!r}; this server serves {current_app.config['MODEL_NAME']!r}")


@bp.get("/v1/models/<model:name>")
@swag_from(apispec.MODEL_STATUS)
def model_status(name: str):
    """TensorFlow Serving's model status: every version in the store with its state, newest first:
    AVAILABLE when loaded, END with the error when it failed to load (or was left out by
    MODEL_VERSIONS_LOADED); ``version_labels`` as TF Serving's config names them."""
    check_model_name(name)
    slot = model_slot()
    statuses = version_statuses(slot)
    if not statuses:
        return jsonify(model_version_status=[version_status("", "UNAVAILABLE", slot.problem)])
    answer = {"model_version_status": [statuses[version] for version in sorted(statuses, reverse=True)]}
    if slot.classifier is not None:
        answer["backend"] = slot.classifier.backend
    return jsonify(**answer, version_labels={label: str(version) for label, version in slot.labels.items()})


@bp.get("/v1/models/<model:name>/versions/<int:version>")
@swag_from(apispec.MODEL_STATUS_VERSION)
def model_version_status(name: str, version: int):
    check_model_name(name)
    return one_version_status(model_slot(), version)


@bp.get("/v1/models/<model:name>/labels/<model:label>")
@swag_from(apispec.MODEL_STATUS_LABEL)
def model_label_status(name: str, label: str):
    check_model_name(name)
    slot = model_slot()
    if label not in slot.labels:
        slot.labelled(label)  # the 404 naming the labels there are
    return one_version_status(slot, slot.labels[label])


def one_version_status(slot, version: int):
    statuses = version_statuses(slot)
    if version not in statuses:
        slot.version(version)  # the 404 naming the versions there are
    return jsonify(model_version_status=[statuses[version]])


def version_statuses(slot) -> dict[int, dict]:
    statuses = {version: version_status(version, "AVAILABLE") for version in slot.loaded}
    statuses |= {version: version_status(version, "END", why) for version, why in slot.failures.items()}
    statuses |= {version: version_status(version, "END", why, "OK") for version, why in slot.not_loaded.items()}
    return statuses


def version_status(version, state: str, problem: str | None = None, code: str = "UNKNOWN") -> dict:
    error = {"error_code": code if problem else "OK", "error_message": problem or ""}
    return {"version": str(version), "state": state, "status": error}


@bp.get("/v1/models/<model:name>/metadata")
@swag_from(apispec.MODEL_METADATA)
def model_metadata(name: str):
    """The input/output signature, in TensorFlow Serving's shape, plus the model's own metadata."""
    return metadata_of(named_classifier(name))


@bp.get("/v1/models/<model:name>/versions/<int:version>/metadata")
@swag_from(apispec.MODEL_METADATA_VERSION)
def model_version_metadata(name: str, version: int):
    check_model_name(name)
    return metadata_of(model_slot().version(version))


@bp.get("/v1/models/<model:name>/labels/<model:label>/metadata")
@swag_from(apispec.MODEL_METADATA_LABEL)
def model_label_metadata(name: str, label: str):
    check_model_name(name)
    return metadata_of(model_slot().labelled(label))


def metadata_of(classifier: Classifier):
    signature = {
        "inputs": {"input": {"name": "input", **tensor_info(-1, FIELD, FIELD, 1)}},
        "outputs": {"probabilities": {"name": "probabilities", **tensor_info(-1, 10)}},
        "method_name": "tensorflow/serving/predict",
    }
    return jsonify(
        model_spec={"name": classifier.name, "version": str(classifier.version), "signature_name": ""},
        metadata={"signature_def": {"signature_def": {"serving_default": signature}}, "model": classifier.metadata},
    )


def tensor_info(*dims: int) -> dict:
    return {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": str(size)} for size in dims]}}
