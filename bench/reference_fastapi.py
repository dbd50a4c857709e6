"""The baseline: the FastAPI + uvicorn MNIST app as the usual tutorial writes it.

Kept faithful on purpose (it is what mnist_flask replaces, not a straw man and not an improved
version): Keras' own loader, resize to 28x28 and convert to grey, divide by 255, and an eager
``model(batch)`` inside an ``async def`` route, in one uvicorn process. It serves the same model
file as mnist_flask, so both answer the same requests.

    MODEL_PATH=models/mnist/1/model.keras uvicorn bench.reference_fastapi:app --port 8001
"""

import io
import os

import numpy as np
import tensorflow as tf
from fastapi import FastAPI, File, UploadFile
from PIL import Image

model = tf.keras.models.load_model(os.environ["MODEL_PATH"])
app = FastAPI()


@app.get("/")
async def root():
    return {"error": "use POST /prediction instead of root route"}


@app.post("/prediction")
async def prediction(image: UploadFile = File(...)):
    contents = await image.read()
    img = Image.open(io.BytesIO(contents)).resize((28, 28)).convert("L")
    batch = (np.array(img) / 255).reshape(1, 28, 28, 1)
    probabilities = model(batch).numpy()[0]
    return {"prediction": int(np.argmax(probabilities))}
