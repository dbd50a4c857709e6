"""The framework floor: mnist_flask with decoding and inference taken out, answering a constant.

    gunicorn -c gunicorn.conf.py bench.floor_app:app

Everything else is mnist_flask itself (blueprints, metrics, request IDs, security headers, access
log), and ``POST /prediction`` still reads the upload: what mnist_flask costs on top of this is
exactly decoding, preprocessing and inference.
"""

from flask import jsonify, request

from bench.bare_flask_app import CONSTANT
from mnist_flask import create_app


def constant_answer():
    request.files["image"].read()
    return jsonify(CONSTANT)


app = create_app()
app.view_functions["api.prediction"] = constant_answer
