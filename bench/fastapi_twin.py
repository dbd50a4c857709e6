"""mnist_flask's work on FastAPI: the same preprocessing module, LiteRT classifier and JSON answer.

    uvicorn bench.fastapi_twin:app --workers 2 --loop uvloop --http httptools

``floor`` is the same app answering a constant after reading the upload (bench.floor_app's twin).

The peer that shows what the web library costs: everything but Flask, Werkzeug and Gunicorn's
worker is mnist_flask's own code (each uvicorn worker loads its own classifier on import).
"""

from fastapi import FastAPI, UploadFile
from fastapi.responses import JSONResponse

from bench.bare_flask_app import CONSTANT
from mnist_flask.config import Defaults
from mnist_flask.model import load_classifier
from mnist_flask.preprocessing import ImageError, prepare_upload

classifier = load_classifier(Defaults.MODEL_DIR, Defaults.MODEL_NAME, Defaults.MODEL_VERSION)
app = FastAPI()


@app.post("/prediction")
async def prediction(image: UploadFile):
    try:
        digit = prepare_upload(await image.read(), Defaults.MAX_IMAGE_PIXELS)
    except ImageError as error:
        return JSONResponse({"error": str(error)}, status_code=error.status)
    return classifier.answers([digit])[0]


floor = FastAPI()


@floor.post("/prediction")
async def constant_answer(image: UploadFile):
    await image.read()
    return CONSTANT
