"""Doctest collection of the package (``--doctest-modules``): skip what needs a missing extra."""

import importlib.util

# skae.onnx imports onnx and skl2onnx, and its examples run onnxruntime (the skae[onnx] extra).
collect_ignore = []
if any(importlib.util.find_spec(name) is None for name in ("onnx", "onnxruntime", "skl2onnx")):
    collect_ignore.append("skae/onnx.py")
