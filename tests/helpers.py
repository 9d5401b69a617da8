"""Small, fast estimator instances and measures shared by the tests."""

import importlib.util
from pathlib import Path

import numpy as np

from skae import AutoencoderTransformer, VAETransformer

ESTIMATORS = [AutoencoderTransformer, VAETransformer]


def tiny(cls, **params):
    """A small, fast, reproducible instance of ``cls`` for tests."""
    defaults = dict(hidden_layer_sizes=(16,), max_iter=5, random_state=0, device="cpu")
    defaults.update(params)
    return cls(**defaults)


def reconstruction_mse(estimator, X):
    """Mean squared error of ``inverse_transform(transform(X))`` against ``X``."""
    return float(np.mean((estimator.inverse_transform(estimator.transform(X)) - X) ** 2))


def load_benchmark(name):
    """The module ``benchmarks/<name>.py``, whose measurements some tests reuse."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
