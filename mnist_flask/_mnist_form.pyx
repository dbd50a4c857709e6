# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The MNIST-form check and the model input it gives, in one compiled call.

It runs on every upload that is already a 28x28 digit (MNIST's own, and clients sending the
model's format). As NumPy it took a dozen array operations, each of which releases and retakes
the GIL and pulls its own code back into the CPU caches; under load that, not the arithmetic, was
the cost (docs/performance.md). Here it is two passes over 784 pixels that keep the GIL.
"""

import numpy as np

ctypedef fused pixel:
    unsigned char
    float


def mnist_form_field(const pixel[:, :] gray, Py_ssize_t field_side, Py_ssize_t box, double min_peak):
    """``gray`` scaled to a peak of 1 if it is a digit already in MNIST's form, else None.

    MNIST's form: ``field_side`` square, light on dark (peak at least ``min_peak``, and the ink
    averaging at most 0.35 of the peak: MNIST digits average ~0.13), its box at 0.3 of the peak no larger than ``box`` and at
    least ``box - 4`` on its longer side, and its centre of mass within a pixel of the middle.
    """
    cdef Py_ssize_t r, c, top = field_side, bottom = -1, left = field_side, right = -1
    cdef double value, peak = 0, total = 0, row_moment = 0, column_moment = 0, level, middle = field_side / 2.0
    cdef float scale
    cdef float[:, ::1] scaled
    if gray.shape[0] != field_side or gray.shape[1] != field_side:
        return None
    for r in range(field_side):
        for c in range(field_side):
            value = gray[r, c]
            peak = max(peak, value)
            total += value
            row_moment += r * value
            column_moment += c * value
    if peak < min_peak or total > 0.35 * peak * field_side * field_side:
        return None
    if abs(row_moment / total - middle) > 1 or abs(column_moment / total - middle) > 1:
        return None
    level = 0.3 * peak
    for r in range(field_side):
        for c in range(field_side):
            if gray[r, c] > level:
                top, bottom = min(top, r), max(bottom, r)
                left, right = min(left, c), max(right, c)
    if not box - 4 <= max(bottom - top + 1, right - left + 1) <= box:
        return None
    result = np.empty((field_side, field_side), np.float32)
    scaled = result
    scale = <float>(1.0 / peak)
    for r in range(field_side):
        for c in range(field_side):
            scaled[r, c] = <float>gray[r, c] * scale
    return result
