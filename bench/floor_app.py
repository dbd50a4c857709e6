"""The framework floor: the same Gunicorn/Flask setup, parsing the same upload, answering a constant.

    gunicorn -c gunicorn.conf.py bench.floor_app:app

What mnist_flask adds on top of this (decoding, preprocessing, inference) is the cost to minimise.
"""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/prediction")
def prediction():
    request.files["image"].read()
    return jsonify(prediction=0, confidence=1.0, probabilities=[0.0] * 10, digit_found=True, model="floor:0")


@app.get("/")
def root():
    return jsonify(error="use POST /prediction instead of root route")
