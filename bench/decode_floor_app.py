"""The decoding floor: mnist_flask that reads each upload's pixels, then answers a constant.

    gunicorn -c gunicorn.conf.py bench.decode_floor_app:app

It decodes exactly as ``POST /prediction`` does (``read_upright``: libjpeg-turbo or Pillow, DCT
scaling, EXIF rotation, luminance) and skips only the search for the digit and the model call. No
way of finding the digit can serve a style faster than this app serves it, so its throughput on a
style, against mnist_flask's own on the 28x28 JPEG, is the ceiling of issue 15's "each real style
>= 0.4x the 28x28 JPEG" for this decoder (docs/performance.md, "What decoding leaves").
"""

from flask import current_app, jsonify, request

from bench.bare_flask_app import CONSTANT
from mnist_flask import create_app
from mnist_flask.preprocessing import read_upright


def decoded_then_constant():
    read_upright(request.files["image"].read(), current_app.config["MAX_IMAGE_PIXELS"])
    return jsonify(CONSTANT)


app = create_app()
app.view_functions["api.prediction"] = decoded_then_constant
