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
