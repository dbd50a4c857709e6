"""The OpenAPI (Swagger 2.0) description flasgger serves at ``/apispec_1.json`` and ``/apidocs/``."""

from .v2_protocol import HEADER_LENGTH, INFERENCE_REQUEST

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "example": "the uploaded file is empty"}},
}

SINGLE_PREDICTION = {
    "type": "object",
    "required": ["prediction", "confidence", "probabilities", "digit_found", "box", "model"],
    "properties": {
        "prediction": {"type": "integer", "minimum": 0, "maximum": 9, "example": 7},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1, "example": 0.998},
        "probabilities": {
            "type": "array",
            "minItems": 10,
            "maxItems": 10,
            "items": {"type": "number", "minimum": 0, "maximum": 1},
            "description": "probability of each digit 0-9, in order",
        },
        "digit_found": {
            "type": "boolean",
            "description": "false when the picture is blank, uniform or noise: the prediction is then meaningless",
        },
        "box": {
            "type": "object",
            "x-nullable": True,
            "required": ["x", "y", "width", "height"],
            "properties": {name: {"type": "integer", "minimum": 0} for name in ("x", "y", "width", "height")},
            "example": {"x": 412, "y": 230, "width": 180, "height": 265},
            "description": "where the digit was found, in pixels of the uploaded picture turned upright "
            "(as its EXIF orientation says); null when no digit was found",
        },
        "model": {"type": "string", "example": "mnist:1", "description": "name:version of the model that answered"},
        "model_input": {
            "type": "string",
            "description": "only with ?model_input=true: the 28x28 image the model saw, as a PNG data URL",
        },
    },
}

BATCH_ITEM = {
    "type": "object",
    "description": "a prediction as above, or for an image that could not be read, its error and status",
    "properties": {**SINGLE_PREDICTION["properties"], "error": {"type": "string"}, "status": {"type": "integer"}},
}

PREDICTION_RESULT = {
    "type": "object",
    "required": ["model"],
    "description": (
        "One image: the fields of a single prediction. Several images (the field repeated): "
        "`predictions`, one entry per image in upload order, and `model`."
    ),
    "properties": {
        **SINGLE_PREDICTION["properties"],
        "predictions": {"type": "array", "items": BATCH_ITEM},
    },
}

TEMPLATE = {
    "swagger": "2.0",
    "info": {
        "title": "mnist_flask",
        "description": "Handwritten digit (MNIST) classifier served by Flask and Gunicorn.",
        "version": "1.0.0",
    },
    "definitions": {"Prediction": PREDICTION_RESULT, "Error": ERROR},
    "securityDefinitions": {
        "bearer": {"type": "apiKey", "name": "Authorization", "in": "header", "description": "Bearer <API_TOKEN>"}
    },
}


def error_response(description: str) -> dict:
    return {"description": description, "schema": {"$ref": "#/definitions/Error"}}


ROOT = {
    "tags": ["prediction"],
    "summary": "Where to send images",
    "description": "A browser (Accept: text/html) gets the upload page; other clients get this hint.",
    "produces": ["application/json", "text/html"],
    "responses": {
        "200": {
            "description": "a hint pointing at POST /prediction and the docs",
            "schema": {
                "type": "object",
                "properties": {"error": {"type": "string"}, "docs": {"type": "string"}},
            },
        }
    },
}

PREDICTION = {
    "tags": ["prediction"],
    "summary": "Classify a picture of one handwritten digit",
    "description": (
        "Send the picture as multipart field `image` (or `file`), or as the raw request body with "
        "`Content-Type: image/*`. PNG, JPEG, GIF, BMP, WebP and TIFF in any size from 8x8 up to the "
        "pixel limit; dark-on-light and light-on-dark both work."
    ),
    "consumes": ["multipart/form-data"],
    "produces": ["application/json"],
    "parameters": [
        {
            "name": "image",
            "in": "formData",
            "type": "file",
            "required": True,
            "description": "the digit picture; repeat the field (up to MAX_BATCH) to classify several at once",
        },
        {
            "name": "model_input",
            "in": "query",
            "type": "boolean",
            "required": False,
            "description": "also return the 28x28 image the model saw, as a PNG data URL",
        },
        {
            "name": "version",
            "in": "query",
            "type": "integer",
            "required": False,
            "description": "answer with this loaded version (default: MODEL_VERSION or the newest, the canary for its share)",
        },
        {"name": "label", "in": "query", "type": "string", "required": False, "description": "answer with the version this label names, e.g. stable"},
    ],
    "responses": {
        "200": {"description": "the predicted digit", "schema": {"$ref": "#/definitions/Prediction"}},
        "400": error_response("no file, an empty file, not an image, or a corrupt image"),
        "401": error_response("API_TOKEN is set and the request has no valid bearer token"),
        "404": error_response("no such version or label (the error names the ones there are)"),
        "413": error_response("the upload or its pixel count is over the configured limit"),
        "415": error_response("the request is neither multipart/form-data nor image/*"),
        "503": error_response("this worker has no model loaded (see /readyz)"),
    },
}

STATUS = {"type": "object", "properties": {"status": {"type": "string"}, "model": {"type": "string"}}}

HEALTHZ = {
    "tags": ["operations"],
    "summary": "Liveness: the process answers",
    "responses": {"200": {"description": "alive", "schema": STATUS}},
}

READYZ = {
    "tags": ["operations"],
    "summary": "Readiness: this worker has its model loaded and warmed up",
    "responses": {
        "200": {"description": "ready", "schema": STATUS},
        "503": {"description": "not ready, with the reason", "schema": {**STATUS, "properties": {**STATUS["properties"], "error": {"type": "string"}}}},
    },
}

METRICS = {
    "tags": ["operations"],
    "summary": "Prometheus metrics, summed over all Gunicorn workers",
    "produces": ["text/plain"],
    "responses": {"200": {"description": "Prometheus text exposition format", "schema": {"type": "string"}}},
}

NAME = {"name": "name", "in": "path", "type": "string", "required": True, "description": "the model's name, e.g. mnist"}

TFSERVING_PREDICT = {
    "tags": ["tensorflow-serving"],
    "summary": "TensorFlow Serving REST predict",
    "description": (
        "The model's input tensor directly: 28x28 floats in [0, 1], white ink on black, already "
        "preprocessed. Row format `instances` answers `predictions`; columnar `inputs` answers `outputs`."
    ),
    "consumes": ["application/json"],
    "parameters": [
        NAME,
        {
            "name": "body",
            "in": "body",
            "required": True,
            "schema": {
                "type": "object",
                "properties": {
                    "instances": {"type": "array", "items": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}},
                    "inputs": {"type": "array", "items": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}},
                },
            },
        },
    ],
    "responses": {
        "200": {
            "description": "ten probabilities per instance",
            "schema": {
                "type": "object",
                "properties": {
                    "predictions": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                    "outputs": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                },
            },
        },
        "400": error_response("not JSON, or not a list of 28x28 arrays (the error names the shape it got)"),
        "401": error_response("API_TOKEN is set and the request has no valid bearer token"),
        "404": error_response("no model by that name"),
        "415": error_response("the body is not JSON"),
        "503": error_response("this worker has no model loaded (see /readyz)"),
    },
}

MODEL_STATUS = {
    "tags": ["tensorflow-serving"],
    "summary": "TensorFlow Serving model status: every version and its state",
    "parameters": [NAME],
    "responses": {
        "200": {"description": "status", "schema": {"type": "object", "properties": {"model_version_status": {"type": "array", "items": {"type": "object"}}}}},
        "404": error_response("no model by that name"),
    },
}

MODEL_METADATA = {
    "tags": ["tensorflow-serving"],
    "summary": "TensorFlow Serving model metadata: the input/output signature",
    "parameters": [NAME],
    "responses": {
        "200": {"description": "signature and metadata", "schema": {"type": "object", "properties": {"model_spec": {"type": "object"}, "metadata": {"type": "object"}}}},
        "404": error_response("no model by that name"),
        "503": error_response("this worker has no model loaded (see /readyz)"),
    },
}

# The Open Inference Protocol (KServe V2): the request schema is the one v2_protocol enforces.

V2_TAG = ["open-inference-protocol"]
VERSION = {"name": "version", "in": "path", "type": "string", "required": True, "description": "the model version, e.g. 3"}

V2_TENSOR = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string", "example": "FP32"},
        "shape": {"type": "array", "items": {"type": "integer"}},
        "parameters": {"type": "object"},
    },
}

V2_LIVE = {
    "tags": V2_TAG,
    "summary": "Server live: the process answers",
    "responses": {"200": {"description": "live", "schema": {"type": "object", "properties": {"live": {"type": "boolean"}}}}},
}

V2_READY = {
    "tags": V2_TAG,
    "summary": "Server ready: this worker has its model loaded and warmed up",
    "responses": {
        "200": {"description": "ready", "schema": {"type": "object", "properties": {"ready": {"type": "boolean"}}}},
        "503": error_response("not ready, with the reason"),
    },
}

V2_SERVER_METADATA = {
    "tags": V2_TAG,
    "summary": "Server metadata: name, version and protocol extensions",
    "responses": {
        "200": {
            "description": "server metadata",
            "schema": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "version": {"type": "string"},
                    "extensions": {"type": "array", "items": {"type": "string"}, "example": ["binary_tensor_data"]},
                },
            },
        }
    },
}

V2_MODEL_METADATA = {
    "tags": V2_TAG,
    "summary": "Model metadata: versions, input and output tensors",
    "description": (
        "The input is `FP32` `[-1, 28, 28, 1]` (`[-1, 28, 28]` is accepted too): floats in [0, 1], white "
        "ink on black, already preprocessed as MNIST. The output is `probabilities`, `FP32` `[-1, 10]`."
    ),
    "parameters": [NAME],
    "responses": {
        "200": {
            "description": "model metadata",
            "schema": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "versions": {"type": "array", "items": {"type": "string"}},
                    "platform": {"type": "string", "example": "litert"},
                    "inputs": {"type": "array", "items": V2_TENSOR},
                    "outputs": {"type": "array", "items": V2_TENSOR},
                },
            },
        },
        "404": error_response("no model by that name (or no such version served)"),
        "503": error_response("this worker has no model loaded (see /v2/health/ready)"),
    },
}

V2_MODEL_READY = {
    "tags": V2_TAG,
    "summary": "Model ready",
    "parameters": [NAME],
    "responses": {
        "200": {
            "description": "ready",
            "schema": {"type": "object", "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}}},
        },
        "404": error_response("no model by that name (or no such version served)"),
        "503": error_response("this worker has no model loaded"),
    },
}

V2_INFER = {
    "tags": V2_TAG,
    "summary": "Inference: a batch of digits, in JSON or with binary tensor data",
    "description": (
        "`inputs`: one tensor `input`, `FP32`, shape `[N, 28, 28, 1]` or `[N, 28, 28]` (N up to MAX_BATCH), "
        "the model's input as floats in [0, 1], white ink on black. JSON `data` (flat, row-major), or binary: "
        "the JSON is followed by the tensor's bytes (little-endian float32), its length is in the "
        f"`{HEADER_LENGTH}` header and the input's `parameters.binary_data_size` says how many bytes follow "
        "(Triton's binary tensor data extension). The answer has `probabilities`, `FP32` `[N, 10]`, as JSON, "
        "or as binary data when the request asks (`binary_data_output`, or `binary_data` on the output)."
    ),
    "consumes": ["application/json", "application/octet-stream"],
    "produces": ["application/json", "application/octet-stream"],
    "parameters": [
        NAME,
        {
            "name": HEADER_LENGTH,
            "in": "header",
            "type": "integer",
            "minimum": 0,
            "required": False,
            "description": "with binary tensor data: the length of the JSON at the start of the body",
        },
        {"name": "body", "in": "body", "required": True, "schema": INFERENCE_REQUEST},
    ],
    "responses": {
        "200": {
            "description": "the ten probabilities per digit; `model_version` names the version that answered",
            "schema": {
                "type": "object",
                "required": ["model_name", "model_version", "outputs"],
                "properties": {
                    "model_name": {"type": "string", "example": "mnist"},
                    "model_version": {"type": "string", "example": "3"},
                    "id": {"type": "string"},
                    "outputs": {
                        "type": "array",
                        "items": {**V2_TENSOR, "properties": {**V2_TENSOR["properties"], "data": {"type": "array", "items": {"type": "number"}}}},
                    },
                },
            },
        },
        "400": error_response("not the protocol's JSON, a wrong shape or datatype, binary sizes that disagree with the body"),
        "401": error_response("API_TOKEN is set and the request has no valid bearer token"),
        "404": error_response("no model by that name (or no such version served)"),
        "413": error_response("the body is over MAX_CONTENT_LENGTH"),
        "415": error_response("a compressed body (Content-Encoding): send it uncompressed"),
        "503": error_response("this worker has no model loaded (see /v2/health/ready)"),
    },
}


def with_version(spec: dict) -> dict:
    return {**spec, "parameters": [*spec["parameters"][:1], VERSION, *spec["parameters"][1:]]}


V2_MODEL_VERSION_METADATA = with_version(V2_MODEL_METADATA)
V2_MODEL_VERSION_READY = with_version(V2_MODEL_READY)
V2_INFER_VERSION = with_version(V2_INFER)


# TensorFlow Serving's routes for one version or one label.
LABEL = {"name": "label", "in": "path", "type": "string", "required": True, "description": "a version label, e.g. stable or canary"}


def with_label(spec: dict) -> dict:
    return {**spec, "parameters": [*spec["parameters"][:1], LABEL, *spec["parameters"][1:]]}


TFSERVING_PREDICT_VERSION = with_version(TFSERVING_PREDICT)
TFSERVING_PREDICT_LABEL = with_label(TFSERVING_PREDICT)
MODEL_STATUS_VERSION = with_version(MODEL_STATUS)
MODEL_STATUS_LABEL = with_label(MODEL_STATUS)
MODEL_METADATA_VERSION = with_version(MODEL_METADATA)
MODEL_METADATA_LABEL = with_label(MODEL_METADATA)
