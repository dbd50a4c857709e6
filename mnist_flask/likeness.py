"""How much a shape found in a photo looks like a handwritten digit, learnt from photos of paper.

The photo's search (:mod:`mnist_flask.preprocessing`) ranks the shapes it finds by rules: ink mass,
proportions, not a solid blob, on the sheet, clear of the edge. A shadow's narrow wedge or a
comb's end passes all of them and reads as a confident "1". This small convolutional network
(56,000 weights, run in NumPy: no model runtime, about 0.1 ms for four shapes) looks at each
of the best few shapes as the model would see it, in MNIST's 28x28 form, and weighs its score.

It belongs to the preprocessing, not to the served model: it is the same for every model a user
serves. ``python -m bench.digit_likeness`` (``make digit-likeness``) trains it on the shapes the
search finds in the generated photos of paper, from ``x_train`` digits only, and writes
``digit_likeness.npz`` beside this module.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

WEIGHTS = Path(__file__).with_name("digit_likeness.npz")
LAYERS = ("conv1", "conv2", "dense", "out")  # as bench.digit_likeness builds them
STRIDE = 2  # both convolutions


def convolve_relu(fields: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """A 'valid' convolution with stride 2 and ReLU, as Keras' Conv2D: ``fields`` (N, H, W, C),
    ``kernel`` (kh, kw, C, F)."""
    kh, kw, channels, filters = kernel.shape
    patches = sliding_window_view(fields, (kh, kw), axis=(1, 2))[:, ::STRIDE, ::STRIDE]  # N, oh, ow, C, kh, kw
    patches = patches.transpose(0, 1, 2, 4, 5, 3).reshape(*patches.shape[:3], kh * kw * channels)
    return np.maximum(patches @ kernel.reshape(-1, filters) + bias, 0)


class DigitLikeness:
    """The network's weights, and its forward pass on a batch of 28x28 fields."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.weights = {name: np.asarray(value, np.float32) for name, value in weights.items()}

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> DigitLikeness:
        with np.load(path) as stored:
            return cls({name: stored[name] for name in stored.files})

    def __call__(self, fields: np.ndarray) -> np.ndarray:
        """The chance (0..1) that each field (N, 28, 28; 0..1, ink bright) is a digit."""
        w = self.weights
        hidden = convolve_relu(np.asarray(fields, np.float32)[..., None], w["conv1_kernel"], w["conv1_bias"])
        hidden = convolve_relu(hidden, w["conv2_kernel"], w["conv2_bias"]).reshape(len(fields), -1)
        hidden = np.maximum(hidden @ w["dense_kernel"] + w["dense_bias"], 0)
        logits = (hidden @ w["out_kernel"] + w["out_bias"])[:, 0]
        return 1 / (1 + np.exp(-logits))


@functools.cache
def shipped() -> DigitLikeness:
    """The network shipped with the package, loaded once per process."""
    return DigitLikeness.load()
