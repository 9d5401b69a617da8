"""Settings for the docstring examples that pytest runs (``--doctest-modules``)."""

import importlib.util

import pytest

# skae.onnx imports onnx and skl2onnx, and its examples run onnxruntime (the skae[onnx] extra).
collect_ignore = []
if any(importlib.util.find_spec(name) is None for name in ("onnx", "onnxruntime", "skl2onnx")):
    collect_ignore.append("skae/onnx.py")


def pytest_collection_modifyitems(items):
    # The examples train a few epochs to stay fast, so they stop at max_iter on purpose.
    expected = pytest.mark.filterwarnings(
        "ignore:Maximum iterations:sklearn.exceptions.ConvergenceWarning"
    )
    for item in items:
        if isinstance(item, pytest.DoctestItem):
            item.add_marker(expected)
