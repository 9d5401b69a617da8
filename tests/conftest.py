import numpy as np
import pytest
from sklearn.datasets import load_digits


@pytest.fixture(scope="session")
def digits():
    """400 digits images scaled to [0, 1], with their labels."""
    X, y = load_digits(return_X_y=True)
    return (X / 16.0)[:400], y[:400]


@pytest.fixture
def X_small():
    return np.random.RandomState(0).uniform(size=(60, 5))


@pytest.fixture
def pipeline(digits):
    """Scaler, a small VAE and a classifier, fitted on ``digits``: a pipeline to deploy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from skae import VAETransformer

    from .helpers import tiny

    X, y = digits
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("reduce", tiny(VAETransformer, n_components=3)),
            ("classify", LogisticRegression(max_iter=200)),
        ]
    ).fit(X, y)
