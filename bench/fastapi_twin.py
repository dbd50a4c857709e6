"""mnist_flask's work on FastAPI: the same preprocessing module, LiteRT classifier and JSON answer.

    uvicorn bench.fastapi_twin:app --workers 2 --loop uvloop --http httptools --no-access-log

``app`` answers in a plain ``def`` route, which FastAPI runs in its thread pool; ``async_app`` in an
``async def`` route, on the event loop. bench.workers measures both; ``app`` is the faster on real
pictures (their decoding releases the GIL, so a worker's threads overlap it, where an ``async``
route blocks the loop), so ``make bench`` runs it (docs/performance.md). ``floor`` is the same app answering a constant after reading the upload
(bench.floor_app's twin).

The peer that shows what the web library costs: everything but Flask, Werkzeug and Gunicorn's
worker is mnist_flask's own code (each uvicorn worker loads its own classifier on import).
"""

from fastapi import FastAPI, UploadFile
from fastapi.responses import JSONResponse

from bench.bare_flask_app import CONSTANT
from bench.same_work import answer_uploads, served_classifier

classifier = served_classifier()
app = FastAPI()
async_app = FastAPI()


def answer(data: bytes):
    body, status = answer_uploads(classifier, [data])[0]
    return body if status == 200 else JSONResponse(body, status_code=status)


@app.post("/prediction")
def prediction(image: UploadFile):
    return answer(image.file.read())


@async_app.post("/prediction")
async def prediction_on_the_loop(image: UploadFile):
    return answer(await image.read())


floor = FastAPI()


@floor.post("/prediction")
async def constant_answer(image: UploadFile):
    await image.read()
    return CONSTANT
