"""The MNIST-form check in NumPy: what ``_mnist_form.pyx`` computes, for a checkout or an install
where no compiler built that module. Same answers; only slower under load (docs/performance.md)."""

from __future__ import annotations

import numpy as np


def mnist_form_field(gray: np.ndarray, field_side: int, box: int, min_peak: float) -> np.ndarray | None:
    """``gray`` scaled to a peak of 1 if it is a digit already in MNIST's form, else None (see the
    compiled module for what MNIST's form is)."""
    if gray.shape != (field_side, field_side):
        return None
    values = gray.astype(np.float64)
    peak, total = values.max(), values.sum()
    if peak < min_peak or total > 0.35 * peak * field_side * field_side:
        return None
    middle, positions = field_side / 2.0, np.arange(field_side)
    if abs(values.sum(axis=1) @ positions / total - middle) > 1 or abs(values.sum(axis=0) @ positions / total - middle) > 1:
        return None
    rows, columns = np.nonzero(values > 0.3 * peak)
    if not box - 4 <= max(rows.max() - rows.min() + 1, columns.max() - columns.min() + 1) <= box:
        return None
    return gray.astype(np.float32) * np.float32(1.0 / peak)
