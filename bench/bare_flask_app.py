"""Flask alone under the same Gunicorn settings: one route that reads the upload and answers a
constant, with none of mnist_flask's metrics, logs or headers. Shows what those cost.

    gunicorn -c gunicorn.conf.py bench.bare_flask_app:app
"""

from flask import Flask, jsonify, request

CONSTANT = {"prediction": 0, "confidence": 1.0, "probabilities": [0.0] * 10, "digit_found": True, "model": "floor:0"}

app = Flask(__name__)


@app.post("/prediction")
def constant_answer():
    request.files["image"].read()
    return jsonify(CONSTANT)


@app.get("/")
def root():
    return jsonify(error="use POST /prediction instead of root route")
