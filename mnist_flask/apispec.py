"""The OpenAPI (Swagger 2.0) description flasgger serves at ``/apispec_1.json`` and ``/apidocs/``."""

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "example": "the uploaded file is empty"}},
}

PREDICTION_RESULT = {
    "type": "object",
    "required": ["prediction", "confidence", "probabilities", "digit_found", "model"],
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
        "model": {"type": "string", "example": "mnist:1", "description": "name:version of the model that answered"},
        "model_input": {
            "type": "string",
            "description": "only with ?model_input=true: the 28x28 image the model saw, as a PNG data URL",
        },
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
        {"name": "image", "in": "formData", "type": "file", "required": True, "description": "the digit picture"},
        {
            "name": "model_input",
            "in": "query",
            "type": "boolean",
            "required": False,
            "description": "also return the 28x28 image the model saw, as a PNG data URL",
        },
    ],
    "responses": {
        "200": {"description": "the predicted digit", "schema": {"$ref": "#/definitions/Prediction"}},
        "400": error_response("no file, an empty file, not an image, or a corrupt image"),
        "413": error_response("the upload or its pixel count is over the configured limit"),
        "415": error_response("the request is neither multipart/form-data nor image/*"),
    },
}
