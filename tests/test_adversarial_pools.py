"""The adversarial pools' teacher transforms (experiments/pools/), checked against hand-computed
rows: the same arg-max as the honest teacher, and the defect they are meant to have."""

import importlib.util
from pathlib import Path

import numpy as np

POOLS = Path(__file__).resolve().parents[1] / "experiments" / "pools"


def load(name):
    spec = importlib.util.spec_from_file_location(name, POOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reranking_keeps_the_top_class_and_reverses_the_others():
    soft_liars = load("soft_liars")
    logits = np.array([[0.1, 3.0, 2.0, -1.0], [5.0, 4.0, 0.0, 1.0]], np.float32)
    # Row 1: top class 1 (3.0) stays; by decreasing logit the others are 2 (2.0), 0 (0.1), 3 (-1.0),
    # and receive -1.0, 0.1, 2.0. Row 2: top 0 stays; 1 (4.0), 3 (1.0), 2 (0.0) receive 0.0, 1.0, 4.0.
    want = np.array([[0.1, 3.0, -1.0, 2.0], [5.0, 0.0, 4.0, 1.0]], np.float32)
    np.testing.assert_array_equal(soft_liars.reverse_non_top_ranking(logits), want)


def test_inverted_calibration_sharpens_the_least_confident_row_and_flattens_the_most():
    miscalibrated = load("miscalibrated")
    logits = np.array([[2.0, 0.0, 0.0], [0.5, 0.0, 0.4], [0.0, 6.0, 1.0]], np.float32)
    # Softmax confidences: row 0 0.787, row 1 0.376, row 2 0.991: ranks 1, 0, 2 of 0..2, so the
    # factors are 4 (least confident), 4 ** 0 = 1 (the middle, log-linear), 0.25 (most confident).
    out = miscalibrated.inverted_calibration(logits)
    np.testing.assert_allclose(out, logits * np.array([[1.0], [4.0], [0.25]]), rtol=1e-6)
    assert (out.argmax(1) == logits.argmax(1)).all()
    confidence = lambda z: np.exp(z).max(1) / np.exp(z).sum(1)  # noqa: E731
    assert confidence(out)[1] > confidence(logits)[1] and confidence(out)[2] < confidence(logits)[2]
