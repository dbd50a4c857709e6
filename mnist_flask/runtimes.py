"""The inference runtimes a worker can serve a version with, and how a 28x28 field becomes a model's input.

Every runtime is wrapped as a :class:`Runner`: a function from a batch in the model's own input
shape to its raw outputs, and that input shape. What the model expects beyond the shape (pixel
convention, probabilities or logits) is recorded in the version's metadata when it is added and
applied around the runner by :func:`adapter`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .preprocessing import FIELD

# Model input shapes without the batch axis, by the layout name the metadata records.
LAYOUTS = {
    "NHW": (FIELD, FIELD),  # Keras Flatten(input_shape=(28, 28)), the lecture's MLP
    "NHWC": (FIELD, FIELD, 1),  # Keras and TensorFlow convolutions
    "NCHW": (1, FIELD, FIELD),  # PyTorch convolutions
    "flat": (FIELD * FIELD,),  # a dense network on 784 pixels
}

# Pixel conventions: what the model was trained on, from the server's field (ink 1.0 on 0.0 paper).
CONVENTIONS = {
    "unit": "x / 255: values in [0, 1], white ink on black (Keras' MNIST examples)",
    "bytes": "raw 0..255 values, white ink on black",
    "standardized": "(x / 255 - 0.1307) / 0.3081: MNIST's mean and deviation (PyTorch's MNIST example)",
}
OUTPUT_KINDS = ("probabilities", "logits")


class UnsupportedModel(ValueError):
    """A model this server cannot feed 28x28 digits to, or whose answer is not ten scores."""


@dataclass
class Runner:
    run: Callable[[np.ndarray], np.ndarray]
    input_shape: tuple  # with the batch axis first; None where the model leaves a size open
    output_shape: tuple


def layout_of(input_shape: tuple) -> str:
    """The layout whose shape the model's input has (after the batch axis)."""
    for name, shape in LAYOUTS.items():
        if tuple(input_shape[1:]) == shape:
            return name
    accepted = ", ".join(f"[N,{','.join(map(str, shape))}]" for shape in LAYOUTS.values())
    raise UnsupportedModel(
        f"the model takes input {shape_text(input_shape)}; a 28x28 grey digit classifier takes one of {accepted}"
    )


def check_outputs(output_shape: tuple) -> None:
    if len(output_shape) != 2 or output_shape[1] != 10:
        raise UnsupportedModel(
            f"the model answers with shape {shape_text(output_shape)}; a digit classifier answers [N,10] (ten scores)"
        )


def shape_text(shape: tuple) -> str:
    return "[" + ",".join("N" if size in (None, -1) else str(size) for size in shape) + "]"


def convert_pixels(fields: np.ndarray, convention: str) -> np.ndarray:
    """Fields (float32, ink 1.0 on 0.0) in the pixel convention the model was trained with."""
    if convention == "unit":
        return fields
    if convention == "bytes":
        return fields * np.float32(255)
    if convention == "standardized":
        return (fields - np.float32(0.1307)) / np.float32(0.3081)
    raise UnsupportedModel(f"unknown pixel convention {convention!r}; known: {', '.join(CONVENTIONS)}")


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def adapter(runner: Runner, convention: str = "unit", output_kind: str = "probabilities"):
    """``fields [N,28,28] -> probabilities [N,10]`` through ``runner``, in the model's layout and convention."""
    sample_shape = LAYOUTS[layout_of(runner.input_shape)]
    check_outputs(runner.output_shape)
    if output_kind not in OUTPUT_KINDS:
        raise UnsupportedModel(f"unknown output kind {output_kind!r}; known: {', '.join(OUTPUT_KINDS)}")
    finish = softmax if output_kind == "logits" else (lambda outputs: outputs)

    def predict(fields: np.ndarray) -> np.ndarray:
        batch = convert_pixels(np.ascontiguousarray(fields, dtype=np.float32), convention)
        return finish(runner.run(batch.reshape(-1, *sample_shape)))

    return predict


def per_digit_when_fixed(run: Callable[[np.ndarray], np.ndarray], batch_size) -> Callable[[np.ndarray], np.ndarray]:
    """A model exported with a fixed batch of one (``torch.onnx.export`` without dynamic axes) is
    called once per digit; any other batch goes through in one call."""
    if batch_size != 1:
        return run
    return lambda batch: np.concatenate([run(batch[index : index + 1]) for index in range(len(batch))])


def litert_runner(path: Path) -> Runner:
    """A LiteRT interpreter: no TensorFlow runtime between the call and the model, and no TensorFlow
    import in the worker (docs/performance.md)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    model_input, model_output = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    input_index, allocated_shape = model_input["index"], tuple(model_input["shape"])
    output_index = model_output["index"]
    lock = threading.Lock()  # one interpreter, so threaded workers take turns

    def run(batch: np.ndarray) -> np.ndarray:
        nonlocal allocated_shape
        with lock:
            if allocated_shape != batch.shape:
                interpreter.resize_tensor_input(input_index, batch.shape)
                interpreter.allocate_tensors()
                allocated_shape = batch.shape
            interpreter.set_tensor(input_index, batch)
            interpreter.invoke()
            return interpreter.get_tensor(output_index)  # a copy, safe to use after the lock

    signature = tuple(model_input.get("shape_signature", model_input["shape"]))
    return Runner(run, (None, *signature[1:]), (None, *tuple(model_output["shape"])[1:]))


def onnx_runner(path: Path) -> Runner:
    """ONNX Runtime, one thread per session like LiteRT: a worker is one core's worth of work."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise UnsupportedModel(f"the model takes {len(inputs)} inputs; a digit classifier takes one image tensor")
    if inputs[0].type != "tensor(float)":
        raise UnsupportedModel(f"the model takes {inputs[0].type}; mnist_flask sends tensor(float)")
    input_name, output_name = inputs[0].name, outputs[0].name
    dims = [size if isinstance(size, int) else None for size in inputs[0].shape]
    out_dims = [size if isinstance(size, int) else None for size in outputs[0].shape]

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run([output_name], {input_name: batch})[0]

    return Runner(per_digit_when_fixed(run, dims[0] if dims else None), (None, *dims[1:]), (None, *out_dims[1:]))


def keras_runner(path: Path) -> Runner:
    """The Keras model itself (TensorFlow in the worker), traced once instead of eager calls."""
    import keras
    import tensorflow as tf

    model = keras.saving.load_model(path, compile=False)
    shape = tuple(model.inputs[0].shape)
    traced = tf.function(
        lambda x: model(x, training=False), input_signature=[tf.TensorSpec([None, *shape[1:]], tf.float32)]
    )
    return Runner(lambda batch: traced(batch).numpy(), (None, *shape[1:]), (None, *tuple(model.outputs[0].shape)[1:]))


# Runtime name -> how to load it and the file it serves, in the order `auto` prefers them.
RUNTIMES: dict[str, tuple[Callable[[Path], Runner], str]] = {
    "litert": (litert_runner, "model.tflite"),
    "onnxruntime": (onnx_runner, "model.onnx"),
    "keras": (keras_runner, "model.keras"),
}
